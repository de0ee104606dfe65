import Foundation
import GuestImage
import Kernels
import TestBuilds
@testable import LabRuntime
@testable import Scenarios
import Testing
import Topology

/// What `--bisect` makes of a guest crash: during the scenario it is the kernel's failure
/// (exit 1, a bad revision); before it, the cell could not run (125, skip).
@Suite struct GuestCrashVerdictTests {
    static let oops = ConsoleAlert(kind: .oops, line: "Oops: general protection fault, probably for non-canonical address 0xdead")
    static let warning = ConsoleAlert(kind: .warning, line: "WARNING: CPU: 0 PID: 1 at drivers/dax/bus.c:100")

    static func passing() -> ScenarioOutcome {
        Fixtures.outcome(drivers: ["device_dax"], fsdev: .real, rounds: [[OrderResult(order: ["device_dax"], observations: [], seconds: 1, error: nil)]])
    }

    @Test func aCrashDuringTheScenarioIsAFailureWithTheCrashAsEvidence() {
        let crashed = Self.passing().addingGuestCrashes([Self.warning, Self.oops], console: ["[ 12.3] RIP: 0010:dax_bus_probe"])
        #expect(crashed.verdict == .fail)
        #expect(crashed.verdict.exitStatus(bisect: true) == 1)
        let crash = crashed.cases.last
        #expect(crash?.name == ScenarioOutcome.guestCrashCase)
        #expect(crash?.message?.contains("general protection fault") == true)
        #expect(crash?.evidence.contains("[ 12.3] RIP: 0010:dax_bus_probe") == true)
        // What the scenario saw before the crash stays.
        #expect(crashed.cases.count == Self.passing().cases.count + 1)
    }

    @Test func aCrashThatEndedTheScenarioWithAnErrorIsStillAFailure() {
        let ended = ScenarioOutcome(scenario: "driver-order", cases: [], rounds: 0, subjects: 1, notApplicable: [],
                                    error: "the agent's channel closed", guestSeconds: 1, facts: [], detail: .none)
        #expect(ended.verdict.exitStatus(bisect: true) == 125)
        let panicked = ended.addingGuestCrashes([ConsoleAlert(kind: .panic, line: "Kernel panic - not syncing: Fatal exception")], console: [])
        #expect(panicked.verdict == .fail)
        #expect(panicked.verdict.exitStatus(bisect: true) == 1)
        #expect(ended.addingGuestCrashes([ConsoleAlert(kind: .hungTask, line: "INFO: task modprobe:231 blocked for more than 120 seconds.")],
                                         console: []).verdict == .fail)
    }

    @Test func warningsAloneAndCrashesBeforeTheScenarioAreNotFailures() {
        #expect(Self.passing().addingGuestCrashes([Self.warning], console: []).verdict == .pass)
        let boot = CellOutcome.couldNotRun("driver-order", failure: OutcomeError(LabError(.guestPanicked, "lab x: the guest kernel panicked: Kernel panic")),
                                           kernel: nil, topology: "t")
        #expect(boot.verdict.exitStatus(bisect: true) == 125)
    }

    /// A guest that goes away in the middle of a round: the orders it finished and what the
    /// order under way observed stay in the outcome (they were all dropped).
    @Test func aRoundCutShortKeepsWhatItObserved() async throws {
        let full = try String(contentsOfFile: ScenarioTranscriptTests.folder + "/v9-standin-6.12-nvdimm.jsonl", encoding: .utf8)
        let lines = full.split(separator: "\n", omittingEmptySubsequences: false)
        let cut = lines.prefix(lines.count * 6 / 10).joined(separator: "\n")
        let agent = try TranscriptAgent(jsonLines: cut)
        let plan = DriverOrderScenario.Plan(fsdev: .standIn(automatch: true), drivers: ScenarioTranscriptTests.allDrivers,
                                            parameters: ["fsdev_dax": ["automatch=1"]])
        let file = ScenarioTranscriptTests.topologies + "/nvdimm-single.yaml"
        let machine = try Topology.load(yaml: String(contentsOfFile: file, encoding: .utf8), file: file, capabilities: .qemu10)
        let outcome = await DriverOrderScenario(drivers: plan.drivers, standInSource: "")
            .run(plan, on: agent, machine: GuestMachine(topology: machine, features: LabPreparation.features(of: machine)))
        #expect(outcome.error != nil)
        #expect(outcome.cases.count >= 3, "the finished orders and the one under way: \(outcome.cases.map(\.name))")
        #expect(outcome.cases.contains { $0.verdict == .fail }, "V9's failures seen before the cut stay")
        #expect(outcome.cases.last?.verdict == .error)
    }
}

/// An outcome keeps why it could not run as a layer and a code, to the store and the reports.
@Suite struct OutcomeErrorTests {
    @Test func caughtErrorsKeepTheirLayerAndCode() {
        let emulator = OutcomeError(LabError(.emulatorDied, "lab x: QEMU itself died", console: "line 1\nline 2"))
        #expect(emulator.layer == .emulator && emulator.code == "emulator-died" && emulator.evidence == ["line 1", "line 2"])
        #expect(OutcomeError(LabError(.bootFailed, "no agent")).layer == .guest)
        #expect(OutcomeError(LabError(.labExists, "taken")).layer == .input)
        #expect(OutcomeError(LabError(.diskFull, "full")).layer == .host)
        #expect(OutcomeError(KernelStoreError.notCached("x")).layer == .kernel)
        #expect(OutcomeError(ModuleBuildError.noHeaders("build:/x")).layer == .build)
        #expect(OutcomeError(RecipeError(file: "r.yaml", message: "bad")).layer == .input)
        #expect(OutcomeError(CocoaError(.fileNoSuchFile)).layer == .host)
    }

    @Test func theFailureTravelsThroughTheStoreAndOldRowsStillRead() throws {
        let outcome = CellOutcome.couldNotRun("driver-order", failure: OutcomeError(LabError(.emulatorDied, "QEMU died")), kernel: nil, topology: "t")
        let data = try JSONEncoder().encode(outcome)
        let back = try JSONDecoder().decode(CellOutcome.self, from: data)
        #expect(back.outcome.failure?.code == "emulator-died")
        #expect(back.outcome.error == "QEMU died")
        // A row written before outcomes had a typed failure: no "failure" key.
        var object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        var inner = try #require(object["outcome"] as? [String: Any])
        inner.removeValue(forKey: "failure")
        object["outcome"] = inner
        let old = try JSONDecoder().decode(CellOutcome.self, from: try JSONSerialization.data(withJSONObject: object))
        #expect(old.outcome.failure == nil && old.outcome.error == "QEMU died" && old.verdict == .error)
        #expect(outcome.rendered().contains("could not be done (emulator emulator-died)"))
    }
}

/// A cell's console evidence holds the lines that judged it, even when a long trace after a
/// panic pushed them out of the console's tail.
@Suite struct ConsoleEvidenceTests {
    @Test func alertLinesPushedOutOfTheTailLeadTheEvidence() {
        let panic = ConsoleAlert(kind: .panic, line: "Kernel panic - not syncing: cxllab drill")
        let trace = (1...40).map { "[  9.\($0)] frame \($0)" }.joined(separator: "\n")
        let evidence = CellRunner.evidence(tail: trace, alerts: [panic, panic])
        #expect(evidence.first == panic.line)
        #expect(evidence.count == 42)
        #expect(evidence.last == "[  9.40] frame 40")
    }

    @Test func alertLinesInTheTailAreNotRepeated() {
        let oops = ConsoleAlert(kind: .oops, line: "Oops: 0002 [#1] SMP")
        let tail = "[  1.0] before\n[  1.1] Oops: 0002 [#1] SMP\n[  1.2] after"
        #expect(CellRunner.evidence(tail: tail, alerts: [oops]) == ["[  1.0] before", "[  1.1] Oops: 0002 [#1] SMP", "[  1.2] after"])
    }
}
