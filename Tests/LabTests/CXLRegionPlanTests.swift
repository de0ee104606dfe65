import Foundation
import GuestImage
@testable import Scenarios
import Testing
import Topology

/// Which CXL regions the driver-order scenario makes from each shipped topology, decided on
/// the host: kinds, ways and interleave positions.
@Suite struct CXLRegionPlanTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func plan(_ name: String) throws -> (CXLRegionPlan, Topology) {
        let file = root.appendingPathComponent("topologies/\(name).yaml").path
        let topology = try Topology.load(yaml: String(contentsOfFile: file, encoding: .utf8), file: file, capabilities: .qemu10)
        return (CXLRegionPlan(topology: topology), topology)
    }

    static func serial(_ id: String, in topology: Topology) -> UInt64? {
        topology.cxl.memoryDevices.first { $0.id == id }?.serial
    }

    @Test func oneDeviceGivesOneOneWayRegionOfItsKind() throws {
        let (plan, _) = try Self.plan("cxl-pmem-single")
        #expect(plan.regions.map(\.kind) == [.pmem])
        #expect(plan.regions.map(\.ways) == [1])
        #expect(plan.unused.isEmpty)
    }

    /// RAM first: a device's volatile partition lies below its persistent one.
    @Test func bothKindsMakeTheRAMRegionFirst() throws {
        let (plan, _) = try Self.plan("cxl-pmem-ram")
        #expect(plan.regions.map(\.kind) == [.ram, .pmem])
        #expect(plan.regions.map(\.deviceIDs) == [["mem1"], ["mem0"]])
    }

    /// Position p sits below the window's target p mod ways: hb0's device first.
    @Test func anInterleaveAcrossHostBridgesFollowsTheWindowsTargets() throws {
        let (plan, topology) = try Self.plan("cxl-interleave-2hb")
        let region = try #require(plan.regions.first)
        #expect(plan.regions.count == 1 && region.kind == .pmem && region.ways == 2)
        #expect(region.deviceIDs == ["mem0", "mem1"])
        #expect(region.serials == ["mem0", "mem1"].compactMap { Self.serial($0, in: topology) })
    }

    @Test func aSwitchGivesOneFourWayRegion() throws {
        let (plan, _) = try Self.plan("cxl-switch-4")
        #expect(plan.regions.map(\.ways) == [4])
        #expect(Set(plan.regions[0].deviceIDs) == ["mem0", "mem1", "mem2", "mem3"])
    }

    /// 512 MiB of volatile memory: the region takes one unit, the other is room to hot-add.
    @Test func volatileOnlyGivesARAMRegionAndRoomForAnother() throws {
        let (plan, _) = try Self.plan("cxl-volatile")
        #expect(plan.regions.map(\.kind) == [.ram])
        #expect(plan.regions.map(\.size) == [256 << 20])
        #expect(plan.spares.map(\.deviceIDs) == [["mem0"]] && plan.spares.map(\.kind) == [.ram] && plan.spares[0].ways == 1)
    }

    /// The default CXL machine leaves no room: its orders say so instead of hot-adding.
    @Test func onePmemAndOneRAMDeviceLeaveNoRoom() throws {
        let (plan, _) = try Self.plan("cxl-pmem-ram")
        #expect(plan.spares.isEmpty)
        #expect(try Self.plan("cxl-switch-4").0.regions.map(\.size) == [1 << 30])
    }

    @Test func topologiesWithoutCXLPlanNothing() throws {
        let (plan, _) = try Self.plan("nvdimm-single")
        #expect(plan.regions.isEmpty && plan.unused.isEmpty)
    }

    /// Three devices under one host bridge cannot all interleave (3 ways is allowed, but a
    /// fourth is left over from 5): what is left out is said.
    @Test func devicesLeftOverAreNamed() throws {
        let text = """
            cxl:
              host_bridges: [{id: hb0}]
              root_ports: [{id: rp0, host_bridge: hb0}]
              switches: [{id: sw0, port: rp0, downstream_ports: [p0, p1, p2, p3, p4]}]
              memory_devices:
            \((0..<5).map { "    - {id: m\($0), port: p\($0), volatile: 256M}" }.joined(separator: "\n"))
              windows: [{targets: [hb0], size: 8G}]
            """
        let plan = CXLRegionPlan(topology: try Topology.load(yaml: text, file: "five.yaml", capabilities: .qemu10))
        #expect(plan.regions.map(\.ways) == [4])
        #expect(plan.unused.count == 1 && plan.unused[0].contains("m4"), "\(plan.unused)")
        // The device left out could make a 1-way region, but the host bridge has one root
        // port, so a single pass-through decoder: no room for a second region.
        #expect(plan.spares.isEmpty)
        let twoPorts = text.replacingOccurrences(of: "root_ports: [{id: rp0, host_bridge: hb0}]",
                                                 with: "root_ports: [{id: rp0, host_bridge: hb0}, {id: rp9, host_bridge: hb0}]")
        let roomy = CXLRegionPlan(topology: try Topology.load(yaml: twoPorts, file: "five.yaml", capabilities: .qemu10))
        #expect(roomy.spares.map(\.deviceIDs) == [["m4"]])
    }

    /// A 2-way window with a device below only one of its host bridges makes no region.
    @Test func aWindowMissingAHostBridgesDeviceSaysSo() throws {
        let text = """
            cxl:
              host_bridges: [{id: hb0}, {id: hb1}]
              root_ports: [{id: rp0, host_bridge: hb0}, {id: rp1, host_bridge: hb1}]
              memory_devices: [{id: mem0, port: rp0, persistent: 256M}]
              windows: [{targets: [hb0, hb1], size: 4G}]
            """
        let plan = CXLRegionPlan(topology: try Topology.load(yaml: text, file: "half.yaml", capabilities: .qemu10))
        #expect(plan.regions.isEmpty)
        #expect(plan.unused.first?.contains("hb1") == true, "\(plan.unused)")
        #expect(plan.spares.isEmpty, "a 2-way window takes no 1-way region")
    }
}

/// A recipe names the recipe that replaces it for CXL RAM regions; cxllab loads both.
@Suite struct RecipeAlternativeTests {
    @Test func theDefaultRecipeHandsCXLRAMLabsToTrixieTools() throws {
        let recipe = try ImageRecipe.load(path: CXLRegionPlanTests.root.appendingPathComponent("images/default.yaml").path)
        #expect(recipe.forLab(needsCXLRAM: false).name == "default")
        #expect(recipe.forLab(needsCXLRAM: true).name == "trixie-tools")
    }

    @Test func aMissingOrChainedAlternativeIsAClearError() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("recipes-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let base = "binaries: [/bin/busybox]\nmodules: {boot: []}\n"
        try ("name: a\ncxl_ram_recipe: b\n" + base).write(to: folder.appendingPathComponent("a.yaml"), atomically: true, encoding: .utf8)
        #expect { try ImageRecipe.load(path: folder.appendingPathComponent("a.yaml").path) } throws: { "\($0)".contains("b.yaml: cannot be read") }
        try ("name: b\ncxl_ram_recipe: a\n" + base).write(to: folder.appendingPathComponent("b.yaml"), atomically: true, encoding: .utf8)
        #expect { try ImageRecipe.load(path: folder.appendingPathComponent("a.yaml").path) } throws: { "\($0)".contains("must not name one of its own") }
        try ("name: c\ncxl_ram_recipe: ../x\n" + base).write(to: folder.appendingPathComponent("c.yaml"), atomically: true, encoding: .utf8)
        #expect { try ImageRecipe.load(path: folder.appendingPathComponent("c.yaml").path) } throws: { "\($0)".contains("is not a recipe name") }
    }
}
