import Foundation
import GuestImage
import HostSupport
@testable import Matrix
@testable import Scenarios
import Synchronization
@testable import LabRuntime
@testable import Kernels

/// Values the pure tests build cells and outcomes from, without a kernel on disk.
enum Fixtures {
    static func kernel(_ release: String, version: String? = "1", digest: String? = nil) -> Kernel {
        Kernel(release: release, origin: version == nil ? "build:/src/\(release)" : "debian:\(release)", packageVersion: version,
               suite: nil, imageSHA256: digest ?? String(repeating: "a", count: 64), folder: "/nonexistent/\(release)")
    }

    static func pinned(_ reference: String = "debian:x", release: String = "6.12.95+deb12-amd64") -> PinnedKernel {
        PinnedKernel(reference: reference, kernel: kernel(release))
    }

    /// The default matrix's three kernels as Debian has them: 6.1 (no driver types), 6.12
    /// (no fsdev_dax), 7.3 (its own fsdev_dax).
    static var defaultKernels: [String: MatrixPlan.PlannedKernel] {
        let kernels: [String: KernelUnderTest] = [
            "debian:bookworm": KernelUnderTest(kernel: kernel("6.1.0-56-amd64"), config: KernelConfig(text: ""), reference: "debian:bookworm"),
            "debian:bookworm-backports": KernelUnderTest(kernel: kernel("6.12.95+deb12-amd64"), config: KernelConfig(text: ""),
                                                         reference: "debian:bookworm-backports"),
            "debian:trixie-backports": KernelUnderTest(kernel: kernel("7.3.4+deb13-amd64"), config: KernelConfig(text: "CONFIG_DEV_DAX_FSDEV=m\n"),
                                                       reference: "debian:trixie-backports"),
        ]
        return kernels.mapValues(MatrixPlan.PlannedKernel.init)
    }

    static func cell(kernel: String = "debian:x", drivers: [String] = ["device_dax", "fsdev_dax"], seed: UInt64 = 1,
                     variant: String = "v", pinned: PinnedKernel? = nil) -> MatrixCell {
        MatrixCell(DriverOrderScenario.self, kernel: kernel, pinned: pinned ?? Self.pinned(kernel), topology: "topologies/t.yaml", variant: variant,
                   settings: DriverOrderScenario.Settings(drivers: drivers, seed: seed))
    }

    static let device = ScenarioDevice(name: "dax0.0", role: .devdax, parent: "namespace0.0", source: "nvdimm")

    static func violation(_ note: String = "fsdev_dax bound on its own (load)") -> Observation {
        Observation(device: "dax0.0", step: .load, expected: "device_dax", actual: "fsdev_dax", verdict: .fail, note: note,
                    dmesg: ["fsdev_dax stand-in: automatch=1"])
    }

    /// A driver-order outcome from its rounds, judged as the scenario judges it.
    static func outcome(drivers: [String], fsdev: FsdevDriver = .standIn(automatch: true), devices: [ScenarioDevice] = [device],
                        rounds: [[OrderResult]], notApplicable: [String] = []) -> ScenarioOutcome {
        let report = DriverOrderReport(drivers: drivers, fsdev: fsdev, devices: devices, rounds: rounds, seed: 1)
        let plan = DriverOrderScenario.Plan(fsdev: fsdev, drivers: drivers)
        return ScenarioOutcome(scenario: "driver-order", cases: report.cases, rounds: rounds.count, subjects: devices.count,
                               notApplicable: notApplicable, error: nil, guestSeconds: 2, facts: plan.facts, detail: ScenarioDetail(report))
    }

    static func result(_ cell: MatrixCell, _ outcome: ScenarioOutcome, imageKey: String? = nil, seconds: Double = 3,
                       finished: Date = Date()) -> CellResult {
        CellResult(cell: cell, outcome: CellOutcome(outcome: outcome, kernel: cell.pinned, topology: "t", accelerator: "TCG", imageKey: imageKey,
                                                    console: [], keptLab: nil),
                   seconds: seconds, finished: finished)
    }

    /// One passing and one V9-failing order of two drivers.
    static var v9Rounds: [[OrderResult]] {
        [[OrderResult(order: ["device_dax", "fsdev_dax"], observations: [], seconds: 1, error: nil),
          OrderResult(order: ["fsdev_dax", "device_dax"], observations: [violation()], seconds: 1, error: nil)]]
    }
}

/// A Debian archive whose suite alias moves on after the first look-up: as if the daily
/// refresh landed in the middle of a matrix.
final class MovingArchive: KernelResolving {
    private let lookups = Mutex(0)
    let releases: [String]

    init(releases: [String]) { self.releases = releases }

    var count: Int { lookups.withLock { $0 } }

    func kernel(_ reference: KernelReference, progress: @escaping @Sendable (String) -> Void) async throws -> Kernel {
        let index = lookups.withLock { count in
            defer { count += 1 }
            return count
        }
        let release: String
        if case .debianRelease(let exact) = reference { release = exact } else { release = releases[min(index, releases.count - 1)] }
        // One release, one image: its hash follows from its name.
        return Fixtures.kernel(release, digest: FileDigest.sha256(of: Data(release.utf8)))
    }
}

extension Fixtures {
    /// A lab prepared as `cxllab up` prepares one: the kernel resolved once, then the image.
    static func prepare(_ topology: String, kernel: KernelReference = .debianSuite("bookworm-backports"),
                        context: LabContext = .forTests()) async throws -> PreparedLab {
        try await prepare(topologyFile: LabSessionTests.root + "/topologies/\(topology).yaml", kernel: kernel, context: context)
    }

    static func prepare(topologyFile: String, kernel: KernelReference = .debianSuite("bookworm-backports"),
                        context: LabContext = .forTests()) async throws -> PreparedLab {
        let resolved = try await KernelStore(cache: context.cache).kernel(kernel)
        return try await LabPreparation(context: context).prepare(
            topologyFile: topologyFile, kernel: resolved, recipe: try ImageRecipe.load(path: LabSessionTests.root + "/images/default.yaml"))
    }

    /// A copy of a shipped topology whose guest memory no shipped topology has: a saved
    /// machine of a key no other test uses, so a test may remove its copies while others run.
    static func privateTopology(_ topology: String, memory: String, in folder: String) throws -> String {
        let path = folder + "/\(topology)-\(memory).yaml"
        let shipped = try String(contentsOfFile: LabSessionTests.root + "/topologies/\(topology).yaml", encoding: .utf8)
        guard shipped.contains("memory: 2G") else { throw DrillError("topologies/\(topology).yaml has no 'memory: 2G' to change") }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try shipped.replacingOccurrences(of: "memory: 2G", with: "memory: \(memory)").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}

extension Fixtures {
    static func moduleArgument(_ entry: String, projectRoot: String) -> String {
        ScenarioProject(root: projectRoot, standInSource: "").moduleArgument(entry)
    }
}

/// The settings tests read of cells, by scenario.
extension MatrixCell {
    var drivers: [String] {
        settings(as: DriverOrderScenario.Settings.self)?.drivers ?? settings(as: RaceScenario.Settings.self)?.drivers ?? []
    }

    var seed: UInt64 {
        get { settings.randomSeed ?? 0 }
        set {
            if var driverOrder = settings(as: DriverOrderScenario.Settings.self) {
                driverOrder.seed = newValue
                settings = driverOrder
            } else if var race = settings(as: RaceScenario.Settings.self) {
                race.seed = newValue
                settings = race
            }
        }
    }

    var suite: NdctlSuiteScenario.Settings? { settings(as: NdctlSuiteScenario.Settings.self) }
}

extension MatrixFile.Scenario {
    var race: RaceScenario.Entry? { entry as? RaceScenario.Entry }
}
