import Foundation
import HostSupport

/// Everything a race found: its rounds, and per race kind the failure rate with its 95%
/// Wilson interval, the registration orders seen and how often each failed, and for each
/// failing order the sequential `cxllab run` that replays it deterministically.
public struct RaceReport: Sendable, Codable {
    public let drivers: [String]
    public let fsdev: FsdevDriver
    public let devices: [ScenarioDevice]
    public let kinds: [RaceKind]
    public let seed: UInt64
    public let maximumDelayMicroseconds: Int
    /// The guest's vCPUs (two at least, so the operations run side by side).
    public let vcpus: Int
    public let rounds: [RaceRoundResult]
    /// `cxllab run TOPOLOGY --kernel K --module ... --drivers ...`, without `--orders`.
    public let reproBase: [String]

    /// A registration order seen in a kind's rounds.
    public struct OrderSeen: Sendable, Codable, Hashable {
        public let order: [String]
        public let rounds: Int
        public let failures: Int
    }

    public struct KindSummary: Sendable, Codable, Hashable {
        public let kind: RaceKind
        public let rate: FailureRate
        /// Rounds that could not be judged (an operation failed, the deadline came).
        public let errors: Int
        public let orders: [OrderSeen]
    }

    /// One case per round and kind, named by the kind.
    public var cases: [CaseResult] {
        rounds.map { CaseResult(name: $0.kind.caseName, round: $0.round, verdict: $0.verdict, seconds: $0.seconds, message: $0.problem, evidence: $0.evidence) }
    }

    public var summaries: [KindSummary] {
        kinds.map { kind in
            let mine = rounds.filter { $0.kind == kind }
            let judged = mine.filter { $0.verdict != .error }
            var counts: [[String]: (rounds: Int, failures: Int)] = [:]
            for round in judged {
                let previous = counts[round.order] ?? (0, 0)
                counts[round.order] = (previous.rounds + 1, previous.failures + (round.verdict == .fail ? 1 : 0))
            }
            let orders = counts.map { OrderSeen(order: $0.key, rounds: $0.value.rounds, failures: $0.value.failures) }
                .sorted { ($0.rounds, $0.order.joined()) > ($1.rounds, $1.order.joined()) }
            return KindSummary(kind: kind, rate: FailureRate(failures: judged.filter { $0.verdict == .fail }.count, trials: judged.count),
                               errors: mine.count - judged.count, orders: orders)
        }
    }

    /// The command that replays a registration order sequentially.
    public func reproCommand(order: [String]) -> String {
        (reproBase + ["--orders", RaceJudge.replayOrder(registered: order, drivers: drivers).joined(separator: ",")]).map(shellQuoted).joined(separator: " ")
    }

    /// For every report: per kind, the rate, the orders and the repro of each failing order.
    public func summary() -> [String] {
        var lines = [String(format: "Race: %d round(s) of %@ on %d vCPUs, delays 0-%.0f ms from seed %llu; registration order from %@",
                            rounds.map(\.round).max().map { $0 + 1 } ?? 0, kinds.map(\.rawValue).joined(separator: ", "), vcpus,
                            Double(maximumDelayMicroseconds) / 1000, seed, Set(rounds.map(\.registrationSource)).sorted().joined(separator: "; "))]
        for summary in summaries {
            lines.append("")
            lines.append("\(summary.kind.caseName)")
            lines.append("  " + summary.rate.description + (summary.errors > 0 ? "; \(summary.errors) round(s) could not be judged" : ""))
            for seen in summary.orders {
                let order = seen.order.isEmpty ? "(nothing registered)" : seen.order.joined(separator: " < ")
                lines.append("  " + order.padding(toLength: max(36, order.count + 2), withPad: " ", startingAt: 0)
                             + "\(seen.rounds) round(s), \(seen.failures) failed")
            }
            for seen in summary.orders where seen.failures > 0 {
                lines.append("  replay \(seen.order.joined(separator: " < ")) in order: \(reproCommand(order: seen.order))")
                if seen.failures < seen.rounds {
                    // The same registration order passed too: the drivers' probes raced each
                    // other after registering, so the order alone may not bring it back.
                    lines.append("    (this order also passed \(seen.rounds - seen.failures) time(s): the failure hung on timing within it, "
                                 + "so a sequential replay may pass)")
                }
            }
        }
        return lines
    }

    /// The text report's body: the summary, then the first failing rounds with their evidence.
    public func rendered() -> [String] {
        var lines = summary()
        let failing = rounds.filter { $0.verdict != .pass }
        if !failing.isEmpty {
            lines.append("")
            lines.append("Rounds that failed or could not be judged (\(failing.count); the first 3):")
            for round in failing.prefix(3) {
                lines.append("  round \(round.round + 1), \(round.kind.rawValue): \(round.verdict == .error ? "ERROR" : "FAIL"): \(round.problem ?? "")")
                for line in round.evidence { lines.append("    " + line) }
            }
        }
        return lines
    }
}
