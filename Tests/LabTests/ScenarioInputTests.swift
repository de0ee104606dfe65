import Foundation
import HostSupport
@testable import LabRuntime
@testable import Scenarios
import Testing

/// Inputs `run`, `race` and `suite` cannot use are refused before anything is fetched or
/// built, with exit 2 even under `--bisect`: with 125, `git bisect run` skipped every commit
/// for a typo. The runs here have an empty cache of their own, which must stay empty.
@Suite struct ScenarioInputTests {
    struct Run {
        let result: ProcessResult
        /// What the command left in its cache: nothing, when it refused its inputs at once.
        let cacheEntries: [String]
    }

    static func cxllab(_ arguments: [String]) async throws -> Run {
        let executable = try AgentBinary.locateForTests().replacingOccurrences(of: "cxllab-agent", with: "cxllab")
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("cxllab-inputs-\(UUID().uuidString.prefix(6))").path
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let result = try await ProcessRunner.run(executable, arguments + ["--cache-dir", cache], currentDirectory: LabSessionTests.root,
                                                 timeout: .seconds(120))
        return Run(result: result, cacheEntries: (try? FileManager.default.contentsOfDirectory(atPath: cache)) ?? [])
    }

    static let topology = "topologies/nvdimm-single.yaml"

    @Test(arguments: [
        (["run", "topologies/no-such.yaml"], "topology topologies/no-such.yaml: no such file"),
        (["run", topology, "--kernel", "debain:bookworm"], "unknown kind 'debain'"),
        (["run", topology, "--kernel", "make:/no/such/tree"], "/no/such/tree is not a folder"),
        (["run", topology, "--module", "/no/such/fsdev_dax:automatch=1"], "--module /no/such/fsdev_dax: no such file or folder"),
        (["run", topology, "--module", "images/modules"], "has no Kbuild or Makefile"),
        (["run", topology, "--drivers", "device_dax,kmme"], "'kmme' is neither a dax driver"),
        (["run", topology, "--recipe", "no-such-recipe"], "--recipe no-such-recipe"),
        (["run", topology, "--orders", "0"], "orders '0'"),
        (["race", "topologies/no-such.yaml"], "topology topologies/no-such.yaml: no such file"),
        (["race", topology, "--drivers", "device_dax,kmem,fsdev-dax!"], "'fsdev-dax!' cannot be a module's name"),
        (["suite", "ndctl", "--topology", "topologies/no-such.yaml"], "topology topologies/no-such.yaml: no such file"),
        (["suite", "ndctl", "--kernel", "debian:"], "is empty after its colon"),
    ])
    func anUnusableInputExitsTwoEvenUnderBisect(arguments: [String], says: String) async throws {
        for bisect in [true, false] {
            let run = try await Self.cxllab(arguments + (bisect ? ["--bisect"] : []))
            let words = run.result.errorOutput
            // A setting refused without --bisect is argument-parser's usage error (64), as before.
            let isSetting = arguments.contains("--orders")
            #expect(run.result.status == (isSetting && !bisect ? 64 : 2), "\(arguments) bisect \(bisect): \(run.result.status) \(words)")
            #expect(words.contains(says), "\(arguments): \(words)")
            #expect(!run.cacheEntries.contains("kernels") && !run.cacheEntries.contains("modules"), "\(arguments): \(run.cacheEntries)")
        }
    }

    /// Every problem is said at once: one run to fix them all, not one per typo.
    @Test func everyProblemIsSaidAtOnce() async throws {
        let run = try await Self.cxllab(["run", "topologies/no-such.yaml", "--kernel", "debain:x", "--module", "./no-such", "--bisect"])
        #expect(run.result.status == 2)
        #expect(run.result.errorOutput.contains("3 inputs cannot be used (nothing was fetched or built)"), "\(run.result.errorOutput)")
    }

    /// A module's own name counts as a driver (`--drivers` may order a driver of your own).
    @Test func aDriverGivenWithModuleIsKnown() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("cxllab-mydax-\(UUID().uuidString.prefix(6))").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try "obj-m += my-dax.o\n".write(toFile: folder + "/Kbuild", atomically: true, encoding: .utf8)
        let run = try await Self.cxllab(["run", "topologies/no-such.yaml", "--module", folder, "--drivers", "device_dax,my_dax", "--bisect"])
        #expect(run.result.status == 2)
        #expect(!run.result.errorOutput.contains("my_dax") && run.result.errorOutput.contains("no-such.yaml"), "\(run.result.errorOutput)")
    }

    /// A cell that never reached its lab says so in its heading, not "(n/a)", which reads like
    /// the not-applicable verdict; results stored with "n/a" read the same way.
    @Test func aCellThatStoppedEarlyNamesNoAccelerator() {
        let failure = OutcomeError(layer: .build, code: "x", message: "building failed")
        let early = CellOutcome.couldNotRun("driver-order", failure: failure, kernel: nil, topology: "nvdimm-single")
        #expect(early.accelerator == "unknown")
        let heading = early.rendered().split(separator: "\n").first.map(String.init) ?? ""
        #expect(heading == "driver-order: nvdimm-single on an unresolved kernel (accelerator not chosen)", "\(heading)")
        let stored = CellOutcome.couldNotRun("driver-order", failure: failure, kernel: nil, topology: "nvdimm-single", accelerator: "n/a")
        #expect(!stored.rendered().contains("(n/a)"))
        let ran = CellOutcome.couldNotRun("driver-order", failure: failure, kernel: nil, topology: "nvdimm-single", accelerator: "TCG")
        #expect(ran.rendered().hasPrefix("driver-order: nvdimm-single on an unresolved kernel (TCG)"))
    }
}
