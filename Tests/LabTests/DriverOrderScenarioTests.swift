import Foundation
import GuestImage
import HostSupport
@testable import LabRuntime
@testable import Scenarios
@testable import Matrix
@testable import Bench
import Libvirt
import Testing
import TestSupport
import Kernels
import TestBuilds

/// The driver-order scenario in real guests, against the behaviour measured on this machine
/// and described in the fsdev V9 review thread.
@Suite(.tags(.vm, .network), .needsHost) struct DriverOrderScenarioTests {
    let context = LabContext.forTests()
    static var root: String { LabSessionTests.root }

    /// What a cell found, with the driver-order report's fields at hand.
    struct Found {
        let cell: CellOutcome
        var report: DriverOrderReport? { cell.outcome.detail.report(as: DriverOrderReport.self) }
        var fsdev: FsdevDriver? { report?.fsdev }
        var drivers: [String] { report?.drivers ?? [] }
        var devices: [ScenarioDevice] { report?.devices ?? [] }
        var orderRuns: [OrderResult] { report?.orderRuns ?? [] }
        var failedOrders: [OrderResult] { report?.failedOrders ?? [] }
        var exitStatus: Int32 { cell.outcome.exitStatus }
        var verdict: Verdict { cell.verdict }
        var notApplicable: [String] { cell.outcome.notApplicable }
        var seconds: Double { cell.outcome.guestSeconds }
        func rendered(accelerator: String) -> String { cell.rendered() }
    }

    /// One cell, exactly as `cxllab run` and the matrix run it.
    func run(_ topology: String, kernel: String, modules: [String] = [], drivers: [String]? = nil) async throws -> Found {
        let cellID = String(UUID().uuidString.prefix(6)).lowercased()
        let scenario = DriverOrderScenario(drivers: drivers, modules: modules.map(ModuleSpec.init(parsing:)),
                                           standInSource: Self.root + "/images/modules/fsdev_dax")
        let outcome = await ScenarioCell(
            kernel: kernel, topology: Self.root + "/topologies/\(topology).yaml",
            recipe: try ImageRecipe.load(path: Self.root + "/images/default.yaml"), scenario: scenario, runID: "test", cellID: cellID
        ).run(context: context)
        #expect(try RunningLabs.domains(cell: cellID, run: "test").isEmpty, "the cell's lab is torn down")
        return Found(cell: outcome)
    }

    /// Orders in which fsdev_dax registers before device_dax.
    static func fsdevFirst(_ order: [String]) -> Bool {
        (order.firstIndex(of: "fsdev_dax") ?? .max) < (order.firstIndex(of: "device_dax") ?? .max)
    }

    /// The orders in which some device failed this step.
    /// By label: udev's order registers like one of the six, but is a case of its own.
    static func failing(_ step: ProbeStep, _ report: Found) -> Set<String> {
        Set(report.orderRuns.filter { $0.observations.contains { $0.step == step && $0.verdict == .fail } }.map(\.label))
    }

    static func labels(_ orders: [[String]]) -> Set<String> { Set(orders.map { $0.joined(separator: " < ") }) }

    @Test func standInWithAutomatchReproducesV9() async throws {
        let report = try await run("nvdimm-single", kernel: "debian:bookworm-backports", modules: ["\(Self.root)/images/modules/fsdev_dax:automatch=1"])
        #expect(report.fsdev == .standIn(automatch: true))
        #expect(report.exitStatus == 1)
        // Six orders and the udev one; every one fails through the late load.
        #expect(report.orderRuns.count == 7)
        #expect(report.failedOrders.count == 7)
        #expect(Self.failing(.lateLoad, report).count == 7, "\(report.rendered(accelerator: "TCG"))")
        // On registering, exactly where fsdev_dax comes before device_dax.
        let expected = Self.labels(DriverOrders.all(report.drivers).filter(Self.fsdevFirst))
        #expect(Self.failing(.load, report) == expected, "failing orders: \(Self.failing(.load, report))")
        #expect(Self.failing(.hotAdd, report) == expected)
        #expect(Self.failing(.reloadFsdev, report).isEmpty, "the thread's reload hides it")
        #expect(report.failedOrders.allSatisfy { $0.observations.contains { $0.actual == "fsdev_dax" && $0.step.isAutomatic } })
        #expect(report.seconds < 240)
    }

    @Test func standInWithoutAutomatchHoldsEveryInvariant() async throws {
        let report = try await run("nvdimm-single", kernel: "debian:bookworm-backports", modules: ["\(Self.root)/images/modules/fsdev_dax:automatch=0"])
        #expect(report.fsdev == .standIn(automatch: false))
        #expect(report.exitStatus == 0, "\(report.rendered(accelerator: "TCG"))")
        #expect(report.orderRuns.count == 7)
        // The explicit bind and the give-back were checked in every order, udev's included.
        #expect(report.orderRuns.allSatisfy { result in result.observations.contains { $0.step == .explicitFsdev && $0.verdict == .pass } })
        #expect(report.orderRuns.allSatisfy { result in result.observations.contains { $0.step == .systemRAM && $0.actual == "kmem" } })
    }

    @Test func trixieRealFsdevBindsOnlyWhenAsked() async throws {
        let report = try await run("nvdimm-single", kernel: "debian:trixie-backports")
        #expect(report.fsdev == .real)
        #expect(report.exitStatus == 0, "\(report.rendered(accelerator: "TCG"))")
        let explicit = report.orderRuns.flatMap(\.observations).filter { $0.step == .explicitFsdev }
        let back = report.orderRuns.flatMap(\.observations).filter { $0.step == .giveBack }
        // Both devices, in all 7 orders; autoload by modalias too.
        #expect(explicit.count == 14 && explicit.allSatisfy { $0.actual == "fsdev_dax" })
        #expect(back.count == 14 && back.allSatisfy { $0.actual == "device_dax" })
        #expect(report.orderRuns.flatMap(\.observations).filter { $0.step == .autoload }.allSatisfy { $0.actual == "device_dax" })
    }

    @Test func bookwormHasNoFsdevAndSaysWhy() async throws {
        let report = try await run("nvdimm-single", kernel: "debian:bookworm")
        guard case .absent(let reason) = report.fsdev else {
            Issue.record("expected fsdev_dax absent, got \(report.fsdev)")
            return
        }
        #expect(reason.contains("no stand-in"))
        #expect(report.exitStatus == 0)
        #expect(report.drivers == ["device_dax", "kmem"])
    }

    @Test func cxlRegionOn61BindsDeviceDax() async throws {
        let report = try await run("cxl-pmem-single", kernel: "debian:bookworm")
        #expect(report.devices.contains { $0.source == "cxl-pmem" })
        #expect(report.exitStatus == 0, "\(report.rendered(accelerator: "TCG"))")
    }

    /// CXL on 6.12 with the hypervisor bit off: the V9 stand-in takes the pmem region's devdax
    /// device exactly where it registers first, and never the RAM region's kmem-type device,
    /// which ends on kmem through every automatic step (the image's cxl tool is trixie's,
    /// chosen for the RAM region).
    @Test func cxlPmemAndRamOn612ReproduceV9OnTheDevdaxDeviceOnly() async throws {
        let report = try await run("cxl-pmem-ram", kernel: "debian:bookworm-backports", modules: ["\(Self.root)/images/modules/fsdev_dax:automatch=1"])
        #expect(report.notApplicable.isEmpty, "\(report.notApplicable)")
        #expect(report.exitStatus == 1, "\(report.rendered(accelerator: "TCG"))")
        #expect(Self.failing(.load, report) == Self.labels(DriverOrders.all(report.drivers).filter(Self.fsdevFirst)))
        let kmemType = try #require(report.devices.first { $0.role == .kmemType })
        let seen = report.orderRuns.flatMap(\.observations).filter { $0.device == kmemType.name }
        let judged = seen.filter { $0.step.isAutomatic && $0.expected == "kmem" }
        #expect(judged.count >= 7 * 6 && judged.allSatisfy { $0.actual == "kmem" })
        #expect(seen.filter { $0.step == .devdaxMode }.allSatisfy { $0.actual == "device_dax" })
        #expect(report.devices.contains { $0.role == .devdax && $0.source == "cxl-pmem" })
    }

    /// cxl-volatile has 512 MiB: one unit makes the RAM region, the other is hot-added as a
    /// second RAM region in every order, its kmem-type device landing on kmem, then destroyed.
    @Test func cxlRoomIsHotAddedAsARegionInEveryOrder() async throws {
        let report = try await run("cxl-volatile", kernel: "debian:bookworm-backports", modules: ["\(Self.root)/images/modules/fsdev_dax:automatch=0"])
        #expect(report.exitStatus == 0, "\(report.rendered(accelerator: "TCG"))")
        let added = report.orderRuns.flatMap(\.observations).filter { $0.step == .hotAdd }
        #expect(added.count == 7 && added.allSatisfy { $0.actual == "kmem" && $0.verdict == .pass }, "\(added.map { $0.actual ?? "none" })")
        #expect(report.devices.count == 1, "the hot-added region is gone after each order")
    }

    /// Debian's 7.3 with its own fsdev_dax on a CXL pmem region: every invariant holds.
    @Test func cxlOn73HoldsWithTheRealFsdev() async throws {
        let report = try await run("cxl-pmem-single", kernel: "debian:trixie-backports")
        #expect(report.fsdev == .real)
        #expect(report.exitStatus == 0, "\(report.rendered(accelerator: "TCG"))")
        #expect(report.devices.map(\.source) == ["cxl-pmem"])
        #expect(report.orderRuns.flatMap(\.observations).filter { $0.step == .explicitFsdev }.allSatisfy { $0.actual == "fsdev_dax" })
    }

    @Test func aUsersPrebuiltModuleReplacesTheDriverOfItsName() async throws {
        // The stand-in built once, then handed over as a prebuilt .ko: it must be the one used.
        let kernel = try await KernelStore(cache: context.cache).kernel(.debianSuite("bookworm-backports"))
        let built = try await ModuleBuilder(cache: context.cache).build(source: Self.root + "/images/modules/fsdev_dax", for: kernel)
        let copy = FileManager.default.temporaryDirectory.path + "/cxllab-user-\(UUID().uuidString.prefix(6))/fsdev_dax.ko"
        try FileManager.default.createDirectory(atPath: (copy as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: (copy as NSString).deletingLastPathComponent) }
        try FileManager.default.copyItem(atPath: built[0], toPath: copy)
        let report = try await run("nvdimm-single", kernel: "debian:bookworm-backports", modules: ["\(copy):automatch=1"],
                                   drivers: ["device_dax", "fsdev_dax"])
        #expect(report.fsdev == .user(copy))
        #expect(report.exitStatus == 1)
        #expect(Self.failing(.load, report) == ["fsdev_dax < device_dax"])
        #expect(report.failedOrders.count == 3, "two orders and udev's, all through the late load")
    }
}
