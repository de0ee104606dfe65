import AgentProtocol
import Foundation
@testable import LabRuntime
@testable import Scenarios
import Testing
import Topology

/// The driver-order scenario's logic on recorded sessions, with no VM: each transcript is a
/// real run (`cxllab run ... --transcript FILE`, see Transcripts/README.md), whose requests the
/// scenario must send again in the same order and whose replies it must judge as it did then.
@Suite struct ScenarioTranscriptTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Transcripts").path
    static let allDrivers = ["device_dax", "kmem", "fsdev_dax"]

    static let topologies = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("topologies").path

    /// A recorded session replayed on the machine it was recorded on (a shipped topology, or
    /// one beside the transcripts).
    func replay(_ name: String, plan: DriverOrderScenario.Plan, topology: String = "nvdimm-single") async throws
        -> (outcome: ScenarioOutcome, agent: TranscriptAgent) {
        let agent = try TranscriptAgent(file: Self.folder + "/" + name)
        let local = Self.folder + "/\(topology).yaml"
        let file = FileManager.default.fileExists(atPath: local) ? local : Self.topologies + "/\(topology).yaml"
        let machine = try Topology.load(yaml: String(contentsOfFile: file, encoding: .utf8), file: file, capabilities: .qemu10)
        let outcome = await DriverOrderScenario(drivers: plan.drivers, standInSource: "")
            .run(plan, on: agent, machine: GuestMachine(topology: machine, features: LabPreparation.features(of: machine)))
        return (outcome, agent)
    }

    static func fsdevFirst(_ name: String) -> Bool {
        let order = name.components(separatedBy: " < ")
        return order.firstIndex(of: "fsdev_dax")! < order.firstIndex(of: "device_dax")!
    }

    @Test func theV9StandInFailsExactlyWhereFsdevRegistersFirst() async throws {
        let plan = DriverOrderScenario.Plan(fsdev: .standIn(automatch: true), drivers: Self.allDrivers, parameters: ["fsdev_dax": ["automatch=1"]])
        let (outcome, agent) = try await replay("v9-standin-6.12-nvdimm.jsonl", plan: plan)
        #expect(agent.consumed == agent.count, "the scenario stopped after \(agent.consumed) of \(agent.count) recorded requests")
        #expect(outcome.error == nil, "\(outcome.error ?? "")")
        #expect(outcome.verdict == .fail)
        #expect(outcome.cases.count == 6)
        #expect(Set(outcome.failedCases.map(\.name)) == Set(outcome.cases.map(\.name).filter(Self.fsdevFirst)))
        guard case .driverOrder(let report) = outcome.detail else { Issue.record("no driver-order detail"); return }
        // Each failing order has fsdev_dax on a device that nobody asked it to take.
        for order in report.failedOrders {
            #expect(order.observations.contains { $0.step.isAutomatic && $0.actual == "fsdev_dax" && $0.verdict == .fail })
        }
        #expect(outcome.failedCases.allSatisfy { $0.evidence.contains { $0.contains("got fsdev_dax") } })
    }

    @Test func theFixedStandInHoldsEveryInvariant() async throws {
        let plan = DriverOrderScenario.Plan(fsdev: .standIn(automatch: false), drivers: Self.allDrivers, parameters: ["fsdev_dax": ["automatch=0"]])
        let (outcome, agent) = try await replay("fixed-standin-6.12-nvdimm.jsonl", plan: plan)
        #expect(agent.consumed == agent.count)
        #expect(outcome.verdict == .pass, "\(outcome.failedCases.map { "\($0.name): \($0.message ?? "")" })")
        guard case .driverOrder(let report) = outcome.detail else { Issue.record("no driver-order detail"); return }
        // The explicit bind and the give-back were judged in every order.
        #expect(report.orderRuns.allSatisfy { run in run.observations.contains { $0.step == .explicitFsdev && $0.verdict == .pass } })
        #expect(report.orderRuns.allSatisfy { run in run.observations.contains { $0.step == .giveBack && $0.actual == "device_dax" } })
        #expect(report.devices.contains { $0.role == .systemRAM })
    }

    /// The same replies judged as if the stand-in had been the fixed one: the judging, not the
    /// recording, decides; fsdev_dax on its own is a failure whatever the module claims.
    @Test func judgingDependsOnWhatBoundNotOnWhatWasExpected() async throws {
        let plan = DriverOrderScenario.Plan(fsdev: .standIn(automatch: false), drivers: Self.allDrivers, parameters: ["fsdev_dax": ["automatch=1"]])
        let (outcome, _) = try await replay("v9-standin-6.12-nvdimm.jsonl", plan: plan)
        #expect(outcome.verdict == .fail)
    }

    /// V9 on CXL: the pmem region's devdax device is taken exactly where fsdev_dax registers
    /// first; the RAM region's kmem-type device ends on kmem through every automatic step,
    /// goes to device_dax and back when asked, and fsdev_dax never has it.
    @Test func theV9StandInTakesCXLDevdaxButNeverAKmemTypeDevice() async throws {
        let plan = DriverOrderScenario.Plan(fsdev: .standIn(automatch: true), drivers: Self.allDrivers, parameters: ["fsdev_dax": ["automatch=1"]])
        let (outcome, agent) = try await replay("v9-standin-6.12-cxl-pmem-ram.jsonl", plan: plan, topology: "cxl-pmem-ram")
        #expect(agent.consumed == agent.count, "the scenario stopped after \(agent.consumed) of \(agent.count) recorded requests")
        #expect(outcome.error == nil, "\(outcome.error ?? "")")
        #expect(outcome.notApplicable.isEmpty, "\(outcome.notApplicable)")
        #expect(outcome.verdict == .fail)
        #expect(Set(outcome.failedCases.map(\.name)) == Set(outcome.cases.map(\.name).filter(Self.fsdevFirst)))
        guard case .driverOrder(let report) = outcome.detail else { Issue.record("no driver-order detail"); return }
        let kmemType = try #require(report.devices.first { $0.role == .kmemType })
        #expect(kmemType.source == "cxl-ram")
        #expect(report.devices.contains { $0.role == .devdax && $0.source == "cxl-pmem" })
        for run in report.orderRuns {
            let seen = run.observations.filter { $0.device == kmemType.name }
            #expect(seen.filter(\.step.isAutomatic).allSatisfy { $0.actual == "kmem" && $0.verdict == .pass }, "\(run.label)")
            #expect(seen.contains { $0.step == .devdaxMode && $0.actual == "device_dax" }, "\(run.label)")
            #expect(seen.contains { $0.step == .systemRAM && $0.actual == "kmem" }, "\(run.label)")
            #expect(!seen.contains { $0.actual == "fsdev_dax" })
        }
    }

    @Test func aKernelThatRefusesCXLRegionsIsNotApplicableInItsOwnWords() async throws {
        let plan = DriverOrderScenario.Plan(fsdev: .standIn(automatch: false), drivers: Self.allDrivers, parameters: ["fsdev_dax": ["automatch=0"]])
        let (outcome, agent) = try await replay("cxl-refused-6.12.jsonl", plan: plan, topology: "cxl-hypervisor-bit")
        #expect(agent.consumed == agent.count)
        #expect(outcome.verdict == .notApplicable)
        #expect(outcome.notApplicable.contains { $0.contains("Failed to synchronize CPU cache state") }, "\(outcome.notApplicable)")
    }

    /// A scenario whose steps changed no longer matches its recording: the replay says which
    /// request differs, and the outcome is an error, not a pass.
    @Test func aChangedScenarioDoesNotMatchItsRecording() async throws {
        let plan = DriverOrderScenario.Plan(fsdev: .standIn(automatch: true), drivers: ["device_dax", "fsdev_dax"], parameters: ["fsdev_dax": ["automatch=1"]])
        let (outcome, _) = try await replay("v9-standin-6.12-nvdimm.jsonl", plan: plan)
        #expect(outcome.verdict == .fail || outcome.verdict == .error)
        let errors = [outcome.error].compactMap { $0 } + outcome.cases.compactMap(\.message)
        #expect(errors.contains { $0.contains("differs") }, "\(errors)")
    }

    @Test func transcriptsRoundTrip() throws {
        let recorder = SessionTranscript()
        recorder.sent(AgentRequest(id: 1, method: .info))
        recorder.received(id: 1, .success(["kernel": "6.12", "uptime": .double(1.5), "modules": []]))
        recorder.sent(AgentRequest(id: 2, method: .unloadModule, params: ["name": "kmem"]))
        recorder.received(id: 2, .failure(AgentError(.failed, "rmmod: ERROR: Module kmem is not currently loaded")))
        let agent = try TranscriptAgent(jsonLines: recorder.jsonLines)
        #expect(agent.count == 2)
        #expect(recorder.errorReplies == 1)
    }
}
