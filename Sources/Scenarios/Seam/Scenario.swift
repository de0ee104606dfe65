import Foundation
import GuestImage
import HostSupport
import LabRuntime
import Topology
import Kernels

/// What a scenario is to a cell, the matrix, the store and every report: it decides, from the
/// kernel, what the guest image must carry; then it runs against a guest's agent and returns
/// an immutable outcome. It never throws from `run`: whatever goes wrong is the outcome's
/// error.
public protocol Scenario: Sendable {
    associatedtype Setup: ScenarioSetup
    /// driver-order, race, ndctl-suite, ...
    var name: String { get }
    /// Before the lab boots: modules, features and facts for this kernel.
    func setup(for kernel: KernelUnderTest, cache: CacheDirectory, progress: @escaping @Sendable (String) -> Void) async throws -> Setup
    /// In the booted lab, on the machine it was booted as.
    func run(_ setup: Setup, on guest: some GuestAgent, machine: GuestMachine, progress: @escaping @Sendable (String) -> Void) async -> ScenarioOutcome
}

/// What a scenario knows of the lab it runs in: the validated topology (what devices exist,
/// their serials and windows) and the image's features (nvdimm, cxl, legacy-pmem, ...).
public struct GuestMachine: Sendable {
    public let topology: Topology
    public let features: Set<String>

    public init(topology: Topology, features: Set<String>) {
        self.topology = topology
        self.features = features
    }
}

/// What a scenario needs in the guest image, decided before the lab boots.
public protocol ScenarioSetup: Sendable {
    /// Module arguments for the image: paths of built or given modules and in-tree names.
    var imageModules: [String] { get }
    /// Module groups of the recipe the image must have besides the topology's.
    var imageFeatures: Set<String> { get }
    /// What reports should state about the run (what fsdev_dax is, which drivers, ...).
    var facts: [Fact] { get }
    /// vCPUs the guest needs at least, whatever the topology says (a race needs two).
    var minimumVCPUs: Int { get }
    /// Files besides the recipe's (a test suite's build), with their libraries.
    var imagePayload: [ImagePayload] { get }
}

extension ScenarioSetup {
    public var minimumVCPUs: Int { 1 }
    public var imagePayload: [ImagePayload] { [] }
}

public enum Verdict: String, Sendable, Codable, CaseIterable {
    case pass, fail
    /// The kernel cannot make what the topology is about (in its own words): nothing checked.
    case notApplicable = "n/a"
    /// The run could not be done.
    case error

    /// 0 pass, 1 fail, 2 not applicable or could not run.
    public var exitStatus: Int32 {
        switch self {
        case .pass: 0
        case .fail: 1
        case .notApplicable, .error: 2
        }
    }

    public var isFailure: Bool { self == .fail || self == .error }

    /// For `git bisect run`: 125 ("this commit cannot be tested", so bisect skips it) where
    /// the run was not applicable or could not be done; a 2 would count the commit as bad.
    public func exitStatus(bisect: Bool) -> Int32 {
        bisect && (self == .notApplicable || self == .error) ? 125 : exitStatus
    }
}

/// A named fact about a run, for reports.
public struct Fact: Sendable, Codable, Hashable {
    public let name: String
    public let value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// One judged unit of a scenario: an order of the driver set, a race round, a test of a
/// suite. Reports show cases by name (a heatmap column) and round.
public struct CaseResult: Sendable, Codable, Hashable {
    public let name: String
    /// 0-based round of `--repeat`.
    public let round: Int
    /// pass, fail or error.
    public let verdict: Verdict
    public let seconds: Double
    /// The first problem, in words.
    public let message: String?
    /// Every violation with the kernel's words.
    public let evidence: [String]

    /// Evidence kept per case: a guest that floods its log must not flood the store and the
    /// reports. What is cut is said where it was.
    public static let evidenceLines = 200
    public static let evidenceLineLength = 1000

    public init(name: String, round: Int, verdict: Verdict, seconds: Double, message: String?, evidence: [String]) {
        self.name = name
        self.round = round
        self.verdict = verdict
        self.seconds = seconds
        self.message = message.map { VisibleText.capped($0, limit: Self.evidenceLineLength) }
        var kept = evidence.prefix(Self.evidenceLines).map { VisibleText.capped($0, limit: Self.evidenceLineLength) }
        if evidence.count > Self.evidenceLines { kept.append("[… \(evidence.count - Self.evidenceLines) more lines of evidence cut]") }
        self.evidence = kept
    }

    public var failed: Bool { verdict.isFailure }
}

/// What a scenario found, whatever the scenario: the cases, what was not applicable, and one
/// verdict computed here, once.
public struct ScenarioOutcome: Sendable, Codable {
    public let scenario: String
    public let verdict: Verdict
    public let cases: [CaseResult]
    public let rounds: Int
    /// Parts of the topology the kernel could not turn into what the scenario needs, in its
    /// own words.
    public let notApplicable: [String]
    /// Why the run could not be done, when it could not, in words (`failure`'s message).
    public let error: String?
    /// The same, typed: the layer that failed, its code and evidence. Nil in results stored
    /// before it existed.
    public let failure: OutcomeError?
    /// Seconds of guest work.
    public let guestSeconds: Double
    public let facts: [Fact]
    public let detail: ScenarioDetail

    /// `subjects`: how many things the scenario had to judge (dax devices, tests); with none,
    /// the outcome is not applicable when the kernel said why, else an error.
    public init(scenario: String, cases: [CaseResult], rounds: Int, subjects: Int, notApplicable: [String], failure: OutcomeError?,
                guestSeconds: Double, facts: [Fact], detail: ScenarioDetail) {
        let verdict: Verdict
        if subjects == 0 && !notApplicable.isEmpty {
            verdict = .notApplicable
        } else if failure != nil || subjects == 0 {
            verdict = .error
        } else {
            verdict = cases.contains(where: \.failed) ? .fail : .pass
        }
        self.init(scenario: scenario, verdict: verdict, cases: cases, rounds: rounds, notApplicable: notApplicable, failure: failure,
                  guestSeconds: guestSeconds, facts: facts, detail: detail)
    }

    /// The same with the scenario's own reason in words.
    public init(scenario: String, cases: [CaseResult], rounds: Int, subjects: Int, notApplicable: [String], error: String?,
                guestSeconds: Double, facts: [Fact], detail: ScenarioDetail) {
        self.init(scenario: scenario, cases: cases, rounds: rounds, subjects: subjects, notApplicable: notApplicable,
                  failure: error.map(OutcomeError.scenario), guestSeconds: guestSeconds, facts: facts, detail: detail)
    }

    /// A run that could not be done at all.
    public static func couldNotRun(_ scenario: String, failure: OutcomeError, facts: [Fact] = []) -> ScenarioOutcome {
        ScenarioOutcome(scenario: scenario, cases: [], rounds: 0, subjects: 0, notApplicable: [], failure: failure, guestSeconds: 0,
                        facts: facts, detail: .none)
    }

    /// The name of the case a guest crash adds.
    public static let guestCrashCase = "guest-crash"

    /// The same outcome judged with the guest's crashes during the scenario: a panic, oops,
    /// BUG or hung task the kernel reported while the scenario ran is a failure of the kernel
    /// under test (exit 1, a bad revision for `git bisect`), never "could not run", even when
    /// it also ended the scenario with an error. The crash lines and the console's last lines
    /// are its evidence; what the scenario observed before stays. Warnings are not crashes.
    public func addingGuestCrashes(_ alerts: [ConsoleAlert], console: [String]) -> ScenarioOutcome {
        let crashes = alerts.filter { $0.kind != .warning }
        guard let first = crashes.first else { return self }
        let crash = CaseResult(name: Self.guestCrashCase, round: 0, verdict: .fail, seconds: 0,
                               message: "the guest kernel crashed during the scenario (\(first.kind.rawValue)): \(first.line)",
                               evidence: crashes.map(\.description) + ["--- console (last lines) ---"] + console)
        return ScenarioOutcome(scenario: scenario, verdict: .fail, cases: cases + [crash], rounds: rounds, notApplicable: notApplicable,
                               failure: failure, guestSeconds: guestSeconds, facts: facts, detail: detail)
    }

    /// The same outcome with more said about its error (the disk filled, libvirtd went away).
    public func addingToError(_ words: String) -> ScenarioOutcome {
        guard let failure else { return self }
        return ScenarioOutcome(scenario: scenario, verdict: verdict, cases: cases, rounds: rounds, notApplicable: notApplicable,
                               failure: failure.adding(words), guestSeconds: guestSeconds, facts: facts, detail: detail)
    }

    private init(scenario: String, verdict: Verdict, cases: [CaseResult], rounds: Int, notApplicable: [String], failure: OutcomeError?,
                 guestSeconds: Double, facts: [Fact], detail: ScenarioDetail) {
        self.scenario = scenario
        self.verdict = verdict
        self.cases = cases
        self.rounds = rounds
        self.notApplicable = notApplicable
        self.error = failure?.message
        self.failure = failure
        self.guestSeconds = guestSeconds
        self.facts = facts
        self.detail = detail
    }

    public var failedCases: [CaseResult] { cases.filter(\.failed) }
    public var failureRate: FailureRate { FailureRate(failures: failedCases.count, trials: cases.count) }
    public var exitStatus: Int32 { verdict.exitStatus }
    public func fact(_ name: String) -> String? { facts.first { $0.name == name }?.value }
}

/// A failure rate with its 95% Wilson score interval: honest for small samples and for
/// rates near 0 or 1, where the normal approximation claims certainty it does not have.
public struct FailureRate: Sendable, Hashable, Codable, CustomStringConvertible {
    public let failures: Int
    public let trials: Int
    public let rate: Double
    public let lower: Double
    public let upper: Double

    public init(failures: Int, trials: Int, z: Double = 1.959963984540054) {
        self.failures = failures
        self.trials = trials
        guard trials > 0 else {
            rate = 0
            lower = 0
            upper = 1
            return
        }
        let n = Double(trials)
        let p = Double(failures) / n
        let z2 = z * z
        let center = (p + z2 / (2 * n)) / (1 + z2 / n)
        let half = z * ((p * (1 - p) / n + z2 / (4 * n * n)).squareRoot()) / (1 + z2 / n)
        rate = p
        lower = max(0, center - half)
        upper = min(1, center + half)
    }

    public var description: String {
        String(format: "%d of %d failed (%.1f%%, 95%% CI %.1f%%–%.1f%%)", failures, trials, rate * 100, lower * 100, upper * 100)
    }
}
