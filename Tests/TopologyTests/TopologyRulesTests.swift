import Foundation
import Testing
@testable import Topology
import HostSupport

@Suite struct ByteSizeTests {
    @Test(arguments: [
        ("512M", 512 * ByteSize.mib), ("1G", ByteSize.gib), ("256MiB", 256 * ByteSize.mib), ("4096", 4096),
        ("1g", ByteSize.gib), ("128 K", 128 * ByteSize.kib), ("128KiB", 128 * ByteSize.kib), ("1024B", 1024),
        ("2T", 2 * ByteSize.tib), ("0", 0), (" 3m ", 3 * ByteSize.mib),
    ])
    func parses(_ text: String, _ bytes: UInt64) {
        #expect(ByteSize.parse(text) == .success(bytes))
    }

    @Test func refusesWithReasons() {
        #expect(ByteSize.parse("") == .failure(.empty))
        #expect(ByteSize.parse("abc") == .failure(.notANumber("abc")))
        #expect(ByteSize.parse("1.5G") == .failure(.fraction("1.5G")))
        #expect(ByteSize.parse("512MB") == .failure(.decimalUnit("512MB")))
        #expect(ByteSize.parse("12Q") == .failure(.unknownUnit("12Q")))
        #expect(ByteSize.parse("99999999999999999999") == .failure(.tooLarge("99999999999999999999")))
        #expect(ByteSize.parse("1024T") == .failure(.tooLarge("1024T")))
        #expect(ByteSize.parse("16777216T") == .failure(.tooLarge("16777216T")))
        #expect(ByteSize.parse("-1G") == .failure(.notANumber("-1G")))
        if case .failure(let problem) = ByteSize.parse("512MB") { #expect(problem.fix.contains("512M (or 512MiB)")) }
    }

    @Test func formats() {
        #expect(ByteSize.describe(ByteSize.gib) == "1 GiB")
        #expect(ByteSize.describe(ByteSize.gib + 2 * ByteSize.mib) == "1026 MiB")
        #expect(ByteSize.describe(128 * ByteSize.kib) == "128 KiB")
        #expect(ByteSize.describe(300) == "300 B")
        #expect(ByteSize.qemu(4 * ByteSize.gib) == "4G")
        #expect(ByteSize.qemu(1_075_838_976) == "1026M")
        #expect(ByteSize.qemu(256) == "256")
        #expect(ByteSize.alignUp(128 * ByteSize.kib, to: 2 * ByteSize.mib) == 2 * ByteSize.mib)
        #expect(ByteSize.alignUp(UInt64.max - 1, to: 2 * ByteSize.mib) == nil)
    }
}

/// Builds YAML for `count` host bridges, one root port and one persistent device each, and
/// one window over the first `ways` of them.
func interleavedTopology(hostBridges count: Int, ways: Int, size: String, granularity: String? = nil) -> String {
    var text = "cxl:\n  host_bridges:\n"
    for index in 0..<count { text += "    - {id: hb\(index)}\n" }
    text += "  root_ports:\n"
    for index in 0..<count { text += "    - {id: rp\(index), host_bridge: hb\(index)}\n" }
    text += "  memory_devices:\n"
    for index in 0..<count { text += "    - {id: mem\(index), port: rp\(index), persistent: 256M}\n" }
    text += "  windows:\n    - targets: [\((0..<max(ways, 1)).map { "hb\($0)" }.joined(separator: ", "))]\n      size: \(size)\n"
    if ways < count { text += "    - targets: [\((ways..<count).map { "hb\($0)" }.joined(separator: ", "))]\n      size: \(4 * (count - ways))G\n" }
    if let granularity { text += "      granularity: \(granularity)\n" }
    return text
}

@Suite struct InterleaveRulesTests {
    @Test(arguments: 1...16)
    func waysAreTheCXLOnes(_ ways: Int) {
        let text = interleavedTopology(hostBridges: ways, ways: ways, size: "\(ways * 256)M")
        let result = Result { try Topology.load(yaml: text, file: "w.yaml", capabilities: .qemu10) }
        let allowed = [1, 2, 3, 4, 6, 8, 12, 16].contains(ways)
        switch result {
        case .success(let topology):
            #expect(allowed)
            #expect(topology.cxl.windows[0].ways == ways)
            #expect(topology.qemuArguments(Fixture.lab("w")).last!.contains("cxl-fmw.0.targets.\(ways - 1)=hb\(ways - 1)"))
        case .failure(let error):
            #expect(!allowed)
            #expect("\(error)".contains("\(ways)-way interleave, which CXL does not have"))
        }
    }

    @Test(arguments: [(2, "512M", true), (2, "768M", false), (3, "768M", true), (3, "1G", false), (4, "1G", true), (1, "300M", false), (1, "0", false)])
    func windowSizeIs256MiBPerWay(_ ways: Int, _ size: String, _ valid: Bool) {
        let text = interleavedTopology(hostBridges: ways, ways: ways, size: size)
        let loaded = (try? Topology.load(yaml: text, file: "w.yaml", capabilities: .qemu10)) != nil
        #expect(loaded == valid)
    }

    @Test(arguments: [("128", false), ("256", true), ("512", true), ("1K", true), ("2K", true), ("4K", true), ("8K", true), ("16K", true),
                      ("32K", false), ("3K", false), ("384", false)])
    func granularityIsAPowerOfTwoFrom256To16K(_ granularity: String, _ valid: Bool) {
        let text = interleavedTopology(hostBridges: 1, ways: 1, size: "4G", granularity: granularity)
        let loaded = (try? Topology.load(yaml: text, file: "g.yaml", capabilities: .qemu10)) != nil
        #expect(loaded == valid)
    }
}

@Suite struct LayoutTests {
    @Test func hostBridgesGetFixedSlotsAndPackedBuses() throws {
        let text = interleavedTopology(hostBridges: 16, ways: 16, size: "4G")
        let topology = try Topology.load(yaml: text, file: "l.yaml", capabilities: .qemu10)
        #expect(topology.cxl.hostBridges.map(\.pciSlot) == Array(0x10...0x1e) + [0x0f])
        // Each needs 2 buses (its own and its root port's), packed from 12.
        #expect(topology.cxl.hostBridges.map(\.busNumber) == stride(from: 12, to: 44, by: 2).map { $0 })
        #expect(topology.cxl.rootPorts.map(\.slot) == Array(2..<18))
        #expect(Set(topology.cxl.rootPorts.map(\.chassis)) == [0])
    }

    @Test func tooManyHostBridges() {
        let text = interleavedTopology(hostBridges: 17, ways: 16, size: "4G")
        #expect(throws: TopologyError.self) { try Topology.load(yaml: text, file: "l.yaml", capabilities: .qemu10) }
    }

    @Test func explicitNumbersAreKeptAndOthersFlowAroundThem() throws {
        let text = """
            cxl:
              host_bridges:
                - {id: a}
                - {id: b, bus_nr: 13}
                - {id: c}
              root_ports:
                - {id: a0, host_bridge: a}
                - {id: b0, host_bridge: b, number: 3, slot: 2}
                - {id: b1, host_bridge: b}
                - {id: c0, host_bridge: c, chassis: 0}
            """
        let topology = try Topology.load(yaml: text, file: "n.yaml", capabilities: .qemu10)
        let bridges = Dictionary(uniqueKeysWithValues: topology.cxl.hostBridges.map { ($0.id, $0) })
        #expect(bridges["b"]!.busRange == 13...15)
        #expect(bridges["a"]!.busRange == 16...17)  // 12-13 would overlap b
        #expect(bridges["c"]!.busRange == 18...19)
        let ports = Dictionary(uniqueKeysWithValues: topology.cxl.rootPorts.map { ($0.id, $0) })
        #expect(ports["b0"]!.number == 3 && ports["b1"]!.number == 0 && ports["a0"]!.number == 0)
        #expect(ports["b0"]!.slot == 2 && ports["a0"]!.slot == 3 && ports["b1"]!.slot == 4 && ports["c0"]!.slot == 5)
    }

    /// The same file gives the same numbers however often it is loaded, and adding a device
    /// at the end does not move what was there.
    @Test func assignmentIsDeterministicAndStable() throws {
        let base = interleavedTopology(hostBridges: 3, ways: 3, size: "3G")
        let first = try Topology.load(yaml: base, file: "d.yaml", capabilities: .qemu10)
        for _ in 0..<5 {
            #expect(try Topology.load(yaml: base, file: "d.yaml", capabilities: .qemu10) == first)
        }
        let extended = base.replacingOccurrences(of: "  memory_devices:\n", with: "    - {id: rpx, host_bridge: hb2}\n  memory_devices:\n")
        let second = try Topology.load(yaml: extended, file: "d.yaml", capabilities: .qemu10)
        #expect(second.cxl.hostBridges.map(\.pciSlot) == first.cxl.hostBridges.map(\.pciSlot))
        #expect(Array(second.cxl.hostBridges.map(\.busNumber).prefix(2)) == Array(first.cxl.hostBridges.map(\.busNumber).prefix(2)))
        #expect(Array(second.cxl.rootPorts.prefix(3)) == first.cxl.rootPorts)
    }

    @Test func switchPortsAndMailboxFollowTheEmulator() throws {
        let text = """
            cxl:
              host_bridges: [{id: hb0}]
              root_ports: [{id: rp0, host_bridge: hb0}]
              switches:
                - {id: sw0, port: rp0, downstream_ports: [p0, {id: p1, number: 6}, p2]}
            """
        let topology = try Topology.load(yaml: text, file: "s.yaml", capabilities: .qemu10)
        let device = try #require(topology.cxl.switches.first)
        #expect(device.downstreamPorts.map(\.number) == [0, 6, 1])
        #expect(device.number == 2)
        #expect(device.mailbox)
        #expect(topology.cxl.hostBridges[0].busRange == 12...17)  // root bus, rp0, switch bus, 3 ports
        let without = try Topology.load(yaml: text, file: "s.yaml", capabilities: try #require(.qemu10(without: "no-switch-mailbox")))
        #expect(!without.cxl.switches[0].mailbox)
        #expect(!without.qemuArguments(Fixture.lab("s")).contains { $0.hasPrefix("cxl-switch-mailbox-cci") })
    }

    @Test(arguments: [(UInt64(0), UInt64(0)), (128 * ByteSize.kib, 2 * ByteSize.mib), (2 * ByteSize.mib, 2 * ByteSize.mib), (3 * ByteSize.mib, 4 * ByteSize.mib)])
    func nvdimmDeviceSizeAddsAlignedLabelRoom(_ label: UInt64, _ room: UInt64) {
        let nvdimm = Topology.NVDIMM(id: "p", size: ByteSize.gib, labelSize: label, numaNode: 0, shared: true)
        #expect(nvdimm.deviceSize == ByteSize.gib + room)
        #expect(nvdimm.deviceSize % Topology.nvdimmAlignment == 0)
    }

    @Test func legacyPMemMustBeGuestRAM() {
        func load(_ memory: String, _ memmap: String) -> Bool {
            (try? Topology.load(yaml: "machine: {memory: \(memory), kernel_cmdline: \"memmap=\(memmap)\"}", file: "m.yaml", capabilities: .qemu10)) != nil
        }
        #expect(load("2G", "512M!1G"))
        #expect(!load("2G", "512M!4G"))
        #expect(!load("2G", "512M!1800M"))  // runs past the end of RAM
        #expect(!load("2G", "256M!128M"))  // where the kernel and initramfs load
        #expect(load("4G", "1G!4G"))  // q35 puts RAM past 2 GiB at 4 GiB once it reaches 2.75 GiB
        #expect(!load("4G", "1G!2G"))
        #expect(!load("2G", "1537M!1G"))
        #expect(!load("1G", "512M!0x40000000"))
    }

    @Test func defaultsMakeAMinimalMachine() throws {
        let topology = try Topology.load(yaml: "description: nothing else\n", file: "dir/minimal.yaml", capabilities: .qemu10)
        #expect(topology.name == "minimal")
        #expect(topology.machine.vcpus == 2 && topology.machine.memory == 2 * ByteSize.gib)
        #expect(topology.machine.numaNodes == [Topology.NUMANode(id: 0, cpus: [0, 1], memory: 2 * ByteSize.gib, distances: nil)])
        #expect(topology.memoryHotplug == nil && topology.nvdimms.isEmpty && topology.cxl.isEmpty)
        #expect(topology.qemuArguments(Fixture.lab("m")).isEmpty)
    }

    @Test func nearestSpellings() {
        #expect(Spelling.nearest(to: "bus", in: ["id", "bus_nr", "numa_node"]) == "bus_nr")
        #expect(Spelling.nearest(to: "host-bridges", in: CXLDraft.keys) == "host_bridges")
        #expect(Spelling.nearest(to: "lable_size", in: NVDIMMDraft.keys) == "label_size")
        #expect(Spelling.nearest(to: "zzzzzz", in: NVDIMMDraft.keys) == nil)
    }

    @Test func commasInLabPathsAreEscapedForQEMU() throws {
        let text = try Repository.shipped("cxl-volatile").text
        var lab = Fixture.lab("c")
        lab.labDirectory = "/tmp/a,b"
        let arguments = try Topology.load(yaml: text, file: "c.yaml", capabilities: .qemu10).qemuArguments(lab)
        #expect(arguments.contains { $0.contains("mem-path=/tmp/a,,b/cxl-mem0-vmem.img,size=512M") })
    }
}
