import Foundation
import GuestImage
import HostSupport
@testable import LabRuntime
@testable import Scenarios
import Libvirt
import Testing
import TestSupport

/// The race scenario in real guests: 14 rounds of each of the three kinds (42 rounds) per
/// cell, on two vCPUs under TCG.
@Suite(.tags(.vm, .network), .needsHost) struct RaceScenarioTests {
    let context = LabContext.forTests()
    static var root: String { LabSessionTests.root }
    static let rounds = 14

    func race(kernel: String, modules: [String] = []) async throws -> (CellOutcome, RaceReport) {
        let cellID = String(UUID().uuidString.prefix(6)).lowercased()
        let scenario = RaceScenario(modules: modules, standInSource: Self.root + "/images/modules/fsdev_dax", rounds: Self.rounds, seed: 1)
        let outcome = await ScenarioCell(
            kernel: kernel, topology: Self.root + "/topologies/nvdimm-single.yaml",
            recipe: try ImageRecipe.load(path: Self.root + "/images/default.yaml"), scenario: scenario, runID: "test", cellID: cellID
        ).run(context: context)
        #expect(try RunningLabs.domains(cell: cellID, run: "test").isEmpty, "the cell's lab is torn down")
        guard let report = outcome.outcome.detail.report(as: RaceReport.self) else {
            Issue.record("no race report: \(outcome.rendered())")
            throw CancellationError()
        }
        #expect(report.vcpus == 2, "a race runs on two vCPUs at least")
        #expect(report.rounds.count == 3 * Self.rounds, "\(outcome.rendered())")
        #expect(report.rounds.allSatisfy { $0.registrationSource == "kprobe on bus_add_driver" })
        return (outcome, report)
    }

    @Test func theV9StandInLosesSomeRacesAndTheLossReplaysInOrder() async throws {
        let (outcome, report) = try await race(kernel: "debian:bookworm-backports", modules: ["\(Self.root)/images/modules/fsdev_dax:automatch=1"])
        let failures = report.rounds.filter { $0.verdict == .fail }
        #expect(outcome.outcome.exitStatus == 1)
        #expect(!failures.isEmpty && failures.count < report.rounds.count, "both outcomes: \(failures.count) of \(report.rounds.count) failed")
        #expect(report.rounds.allSatisfy { $0.verdict != .error }, "\(outcome.rendered())")
        // Every loss is fsdev_dax on a device, with the timeline as evidence.
        #expect(failures.allSatisfy { $0.bindings.contains { $0.driver == "fsdev_dax" } && $0.evidence.contains { $0.hasPrefix("registered (kprobe") } })
        // Coldplug's modprobes of one alias load device_dax first: that path cannot lose.
        #expect(report.summaries.first { $0.kind == .coldplug }?.rate.failures == 0)
        // A registration order that always lost, replayed sequentially by `cxllab run --orders`.
        let lost = try #require(report.summaries.flatMap(\.orders).first { $0.failures == $0.rounds && $0.order.first == "fsdev_dax" })
        let command = report.reproCommand(order: lost.order)
        #expect(outcome.rendered().contains(command))
        let replay = DriverOrderScenario(modules: [ModuleSpec(parsing: "\(Self.root)/images/modules/fsdev_dax:automatch=1")],
                                         standInSource: Self.root + "/images/modules/fsdev_dax",
                                         selection: try #require(OrderSelection(argument: command.components(separatedBy: "--orders ").last ?? "")))
        let replayed = await ScenarioCell(
            kernel: "debian:bookworm-backports", topology: Self.root + "/topologies/nvdimm-single.yaml",
            recipe: try ImageRecipe.load(path: Self.root + "/images/default.yaml"), scenario: replay, runID: "test",
            cellID: String(UUID().uuidString.prefix(6)).lowercased()
        ).run(context: context)
        guard let orders = replayed.outcome.detail.report(as: DriverOrderReport.self) else { Issue.record("no replay report"); return }
        let sequential = try #require(orders.orderRuns.first { $0.label == lost.order.joined(separator: " < ") })
        #expect(sequential.observations.contains { $0.step == .load && $0.actual == "fsdev_dax" }, "\(replayed.rendered())")
    }

    @Test func withoutAutomatchNoRoundIsLost() async throws {
        let (outcome, report) = try await race(kernel: "debian:bookworm-backports", modules: ["\(Self.root)/images/modules/fsdev_dax:automatch=0"])
        #expect(outcome.outcome.exitStatus == 0, "\(outcome.rendered())")
        #expect(report.rounds.allSatisfy { $0.verdict == .pass })
        let rate = outcome.outcome.failureRate
        #expect(rate.failures == 0 && rate.trials == 3 * Self.rounds && rate.upper < 0.1)
        #expect(outcome.rendered().contains("0 of \(Self.rounds) failed (0.0%, 95% CI 0.0%–"))
        // The race was real: the drivers registered in more than one order.
        #expect(Set(report.rounds.map(\.order)).count > 1)
    }

    @Test func debian73sRealFsdevNeverBindsOnItsOwn() async throws {
        let (outcome, report) = try await race(kernel: "debian:trixie-backports")
        #expect(report.fsdev == .real)
        #expect(outcome.outcome.exitStatus == 0, "\(outcome.rendered())")
        #expect(report.rounds.allSatisfy { round in round.bindings.allSatisfy { $0.driver == "device_dax" } })
        #expect(Set(report.rounds.map(\.order)).count > 1)
    }
}
