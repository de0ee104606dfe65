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

    /// A sequential order in which fsdev_dax registers before device_dax (never the udev one).
    static func fsdevFirst(_ name: String) -> Bool {
        let order = name.components(separatedBy: " < ")
        guard let fsdev = order.firstIndex(of: "fsdev_dax"), let dax = order.firstIndex(of: "device_dax") else { return false }
        return fsdev < dax
    }

    /// The failing cases of one step: the orders in which some device failed it.
    static func failing(_ step: ProbeStep, in report: DriverOrderReport) -> Set<String> {
        Set(report.orderRuns.filter { $0.observations.contains { $0.step == step && $0.verdict == .fail } }.map(\.label))
    }

    /// V9 fails in every order: on registering (load, hot-add, re-probes) exactly where it
    /// comes before device_dax, and through the late load in all of them, the udev order too;
    /// reloading it alone, the thread's procedure, hides it.
    @Test func theV9StandInFailsEveryOrderAndOnRegisteringWhereFsdevComesFirst() async throws {
        let plan = DriverOrderScenario.Plan(fsdev: .standIn(automatch: true), drivers: Self.allDrivers, parameters: ["fsdev_dax": ["automatch=1"]])
        let (outcome, agent) = try await replay("v9-standin-6.12-nvdimm.jsonl", plan: plan)
        #expect(agent.consumed == agent.count, "the scenario stopped after \(agent.consumed) of \(agent.count) recorded requests")
        #expect(outcome.error == nil, "\(outcome.error ?? "")")
        #expect(outcome.verdict == .fail)
        #expect(outcome.cases.count == 7)
        #expect(outcome.failedCases.count == 7)
        guard let report = outcome.detail.report(as: DriverOrderReport.self) else { Issue.record("no driver-order detail"); return }
        let fsdevFirst = Set(outcome.cases.map(\.name).filter(Self.fsdevFirst))
        #expect(fsdevFirst.count == 3)
        for step in [ProbeStep.load, .hotAdd, .driversProbe, .recreate] {
            #expect(Self.failing(step, in: report) == fsdevFirst, "\(step.rawValue)")
        }
        #expect(Self.failing(.lateLoad, in: report).count == 7)
        #expect(Self.failing(.reloadFsdev, in: report).isEmpty, "the thread's reload hides V9")
        #expect(Self.failing(.autoload, in: report).isEmpty, "udev's modprobe registers device_dax first here")
        let udev = try #require(report.orderRuns.first { $0.coldplug != nil })
        #expect(udev.registered == ["device_dax", "kmem", "fsdev_dax"], "modules.alias order")
        #expect(udev.coldplug?.count == 2 && udev.coldplug?.allSatisfy { $0.modalias == "dax:t0" && $0.status == 0 } == true)
        // Each failing observation has fsdev_dax on a device nobody asked it to take, and says
        // in what order the drivers had registered.
        for observation in report.orderRuns.flatMap(\.observations) where observation.verdict == .fail {
            #expect(observation.step.isAutomatic && observation.actual == "fsdev_dax" && observation.registered?.isEmpty == false)
        }
    }

    @Test func theFixedStandInHoldsEveryInvariant() async throws {
        let plan = DriverOrderScenario.Plan(fsdev: .standIn(automatch: false), drivers: Self.allDrivers, parameters: ["fsdev_dax": ["automatch=0"]])
        let (outcome, agent) = try await replay("fixed-standin-6.12-nvdimm.jsonl", plan: plan)
        #expect(agent.consumed == agent.count)
        #expect(outcome.verdict == .pass, "\(outcome.failedCases.map { "\($0.name): \($0.message ?? "")" })")
        guard let report = outcome.detail.report(as: DriverOrderReport.self) else { Issue.record("no driver-order detail"); return }
        // The explicit bind and the give-back were judged in every order.
        #expect(report.orderRuns.allSatisfy { run in run.observations.contains { $0.step == .explicitFsdev && $0.verdict == .pass } })
        #expect(report.orderRuns.allSatisfy { run in run.observations.contains { $0.step == .giveBack && $0.actual == "device_dax" } })
        // Every step was taken in every order (but devdax-mode: no kmem-type device here), for
        // both devices, the explicit round trip included; hot-add once per order.
        for step in ProbeStep.allCases where step != .devdaxMode && step != .systemRAM && step != .hotAdd {
            let counted = report.orderRuns.flatMap(\.observations).filter { $0.step == step }.count
            #expect(counted == (step == .load || step == .autoload ? (step == .load ? 12 : 2) : 14), "\(step.rawValue): \(counted)")
        }
        #expect(report.orderRuns.flatMap(\.observations).filter { $0.step == .hotAdd }.count == 7)
        // Who wins a re-probe with fsdev_dax's id left in place depends on the list order.
        let winners = Set(report.orderRuns.flatMap(\.observations).filter { $0.step == .keptID }.compactMap(\.actual))
        #expect(winners == ["device_dax", "fsdev_dax"])
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
        #expect(outcome.verdict == .fail && outcome.failedCases.count == 7)
        guard let report = outcome.detail.report(as: DriverOrderReport.self) else { Issue.record("no driver-order detail"); return }
        #expect(Self.failing(.load, in: report) == Set(outcome.cases.map(\.name).filter(Self.fsdevFirst)))
        let kmemType = try #require(report.devices.first { $0.role == .kmemType })
        #expect(kmemType.source == "cxl-ram")
        #expect(report.devices.contains { $0.role == .devdax && $0.source == "cxl-pmem" })
        for run in report.orderRuns {
            let seen = run.observations.filter { $0.device == kmemType.name }
            #expect(seen.filter { $0.step.isAutomatic && $0.expected == "kmem" }.allSatisfy { $0.actual == "kmem" && $0.verdict == .pass }, "\(run.label)")
            #expect(seen.contains { $0.step == .devdaxMode && $0.actual == "device_dax" }, "\(run.label)")
            #expect(seen.contains { $0.step == .explicitFsdev && $0.actual == "fsdev_dax" }, "\(run.label): the round trip reaches it on device_dax")
            #expect(seen.contains { $0.step == .systemRAM && $0.actual == "kmem" }, "\(run.label)")
            #expect(!seen.contains { $0.step.isAutomatic && $0.actual == "fsdev_dax" })
        }
        // No NVDIMM to hot-add on: every order says so rather than passing silently.
        #expect(report.orderRuns.allSatisfy { $0.skipped.contains { $0.step == .hotAdd && $0.reason.contains("CXL") } })
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
