import AgentProtocol
import Foundation
import Kernels
import HostSupport
import LabRuntime

/// What a race round releases at once, after each operation's own seeded delay.
public enum RaceKind: String, Sendable, Codable, CaseIterable, Hashable {
    /// The driver set loaded in parallel, one `modprobe NAME` each, devices present and unbound.
    case load
    /// Coldplug as udev does it: one `modprobe -b MODALIAS` per dax device (per worker).
    case coldplug
    /// Devices re-created while the drivers load: `ndctl enable-namespace` released with the
    /// drivers' modprobes.
    case create

    /// The case name in every report (a heatmap column).
    public var caseName: String {
        switch self {
        case .load: "race load: one modprobe per driver at once"
        case .coldplug: "race coldplug: modprobe $MODALIAS per device at once"
        case .create: "race create: namespaces enabled while the drivers load"
        }
    }

    public static func parse(list: String) -> [RaceKind]? {
        let kinds = list.split(separator: ",").map { RaceKind(rawValue: $0.trimmingCharacters(in: .whitespaces)) }
        guard !kinds.isEmpty, kinds.allSatisfy({ $0 != nil }) else { return nil }
        return kinds.compactMap { $0 }
    }
}

/// The race scenario: driver registration racing device probes, for real. Each round starts
/// from a known state (devices unbound, drivers unloaded, namespaces disabled for `create`),
/// then the agent releases the round's operations together, each after a delay drawn from the
/// seed, on a guest with at least two vCPUs so they run side by side. The kernel's own trace
/// says in which order the drivers registered; the bus says what each device bound to. The
/// invariants are driver-order's for a device probed automatically: fsdev_dax never, devdax
/// devices on device_dax, kmem-type devices on kmem.
public struct RaceScenario: Scenario {
    public var drivers: [String]
    public var modules: [ModuleSpec]
    /// The `--module` arguments as given, for the repro command.
    public var moduleArguments: [String]
    public var standInSource: String
    public var kinds: [RaceKind]
    public var rounds: Int
    public var seed: UInt64
    /// Coldplug's modprobes at once; nil: one per dax device, as udev runs one worker per event.
    public var workers: Int?
    /// Delays are drawn uniformly from 0 to this: under TCG a modprobe takes tens of
    /// milliseconds to reach its init function, so 20 ms lets either driver go first.
    public var maximumDelayMicroseconds = 20_000
    /// What the agent gives a round before it kills what is left.
    public var roundTimeoutSeconds = 30

    public static let defaultRounds = 40
    /// The rounds of each kind and coldplug's workers a race takes, written once for the
    /// command line and matrix files.
    public static let roundsRange = 1...10_000
    public static let workersRange = 1...64

    /// What is wrong with a race's settings as a user gave them (`kinds`, `rounds`, `workers`
    /// and `drivers` of a matrix file, or `cxllab race`'s options), or nil: the one rule of
    /// both, so both refuse the same value in the same words.
    public static func problem(kinds: [String]?, rounds: Int?, workers: Int?, drivers: [String]) -> String? {
        if let kinds {
            // As RaceKind.parse(list:) reads them: an entry may itself be a comma-separated list.
            let names = kinds.joined(separator: ",").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            let unknown = names.filter { RaceKind(rawValue: $0) == nil }
            if names.isEmpty || !unknown.isEmpty {
                let named = unknown.isEmpty ? "none" : "'\(unknown.joined(separator: ", "))'"
                return "kinds names \(named); the race kinds are load, coldplug and create"
            }
        }
        if let rounds, !roundsRange.contains(rounds) {
            return "rounds \(rounds) is out of range; give \(roundsRange.lowerBound) to \(roundsRange.upperBound)"
        }
        if let workers, !workersRange.contains(workers) {
            return "workers \(workers) is out of range; give \(workersRange.lowerBound) to \(workersRange.upperBound)"
        }
        // A race draws its orders from the driver list: the list must be one orders can be drawn from.
        return DriverOrders.problem(orders: "1", drivers: drivers)
    }

    public init(drivers: [String]? = nil, modules: [String] = [], standInSource: String, kinds: [RaceKind] = RaceKind.allCases,
                rounds: Int = defaultRounds, seed: UInt64 = 1, workers: Int? = nil) {
        self.drivers = drivers ?? DriverOrderScenario.defaultDrivers
        self.moduleArguments = modules
        self.modules = modules.map(ModuleSpec.init(parsing:))
        self.standInSource = standInSource
        self.kinds = kinds.isEmpty ? RaceKind.allCases : kinds
        self.rounds = max(1, rounds)
        self.seed = seed
        self.workers = workers
    }

    /// Driver-order's plan (what fsdev_dax is, modules, parameters), on two vCPUs at least.
    public struct Plan: ScenarioSetup {
        public let base: DriverOrderScenario.Plan
        /// The kernel exactly, for repro commands.
        public let kernelReference: String
        public var imageModules: [String] { base.imageModules }
        public var imageFeatures: Set<String> { base.imageFeatures }
        public var facts: [Fact] { base.facts }
        public var minimumVCPUs: Int { 2 }
    }

    public func setup(for kernel: KernelUnderTest, cache: CacheDirectory, progress: @escaping @Sendable (String) -> Void) async throws -> Plan {
        let base = try await DriverOrderSetup(cache: cache, standInSource: standInSource).plan(kernel: kernel, drivers: drivers, specs: modules, progress: progress)
        return Plan(base: base, kernelReference: kernel.pinned.exactReference)
    }

    /// The seeded delays of one round's operations, in microseconds: the same seed, kind and
    /// round always give the same interleaving to replay.
    public static func delays(count: Int, seed: UInt64, kind: RaceKind, round: Int, maximum: Int) -> [Int] {
        let kindSalt = UInt64(RaceKind.allCases.firstIndex(of: kind) ?? 0) &+ 1
        var generator = SeededGenerator(seed: seed &* 0x2545_F491_4F6C_DD1D &+ UInt64(round) &* 0x9E37_79B9_7F4A_7C15 &+ kindSalt)
        return (0..<count).map { _ in Int.random(in: 0...max(0, maximum), using: &generator) }
    }

    public func run(_ plan: Plan, on guest: some GuestAgent, machine: GuestMachine,
                    progress: @escaping @Sendable (String) -> Void = { _ in }) async -> ScenarioOutcome {
        var results: [RaceRoundResult] = []
        // The devices driver-order makes, from the same topology.
        let run = await DaxDeviceRun.run(on: guest, drivers: plan.base.drivers, machine: machine, progress: progress) { operations, devices in
            let runner = try await RaceRound.Runner.make(plan: plan.base, devices: devices, guest: operations, workers: workers,
                                                         maximumDelay: maximumDelayMicroseconds, timeout: roundTimeoutSeconds)
            var consecutiveErrors = 0
            for round in 0..<rounds {
                for kind in kinds {
                    progress("round \(round + 1)/\(rounds), \(kind.rawValue)" + Self.tally(results))
                    let delays = { (count: Int) in Self.delays(count: count, seed: seed, kind: kind, round: round, maximum: maximumDelayMicroseconds) }
                    let result = await runner.run(kind, round: round, delays: delays)
                    results.append(result)
                    consecutiveErrors = result.verdict == .error ? consecutiveErrors + 1 : 0
                    if result.guestStoppedAnswering {
                        return OutcomeError(layer: .guest, code: "stopped-answering", message: "the guest stopped answering in round \(round + 1) (\(kind.rawValue)); the rounds after it were not run")
                    }
                    if consecutiveErrors >= 3 {
                        return .scenario("three rounds in a row could not be run; the last: \(result.problem ?? "no reason given")")
                    }
                }
            }
            return nil
        }
        let report = RaceReport(drivers: plan.base.drivers, fsdev: plan.base.fsdev, devices: run.devices, kinds: kinds, seed: seed,
                                maximumDelayMicroseconds: maximumDelayMicroseconds, vcpus: machine.topology.machine.vcpus, rounds: results,
                                reproBase: reproBase(plan: plan, topologyFile: machine.topology.file))
        return ScenarioOutcome(scenario: name, cases: report.cases, rounds: results.map(\.round).max().map { $0 + 1 } ?? 0,
                               subjects: run.devices.count, notApplicable: run.notApplicable, failure: run.failure,
                               guestSeconds: run.seconds, facts: plan.facts, detail: ScenarioDetail(report))
    }

    /// `cxllab run` with this race's topology, kernel, modules and drivers; a failing round's
    /// registration order goes after it as `--orders`.
    func reproBase(plan: Plan, topologyFile: String) -> [String] {
        var words = ["cxllab", "run", topologyFile, "--kernel", plan.kernelReference]
        for module in moduleArguments { words += ["--module", module] }
        return words + ["--drivers", plan.base.drivers.joined(separator: ",")]
    }

    private static func tally(_ results: [RaceRoundResult]) -> String {
        results.isEmpty ? "" : " (\(results.filter { $0.verdict.isFailure }.count) of \(results.count) failed so far)"
    }
}
