import Foundation
import HostSupport

extension CellOutcome {
    /// The report for people: what ran where, one line per case, then every violation with
    /// its evidence. Guest text in it (kernel lines, device names) shows its control
    /// characters as text: a console's escape sequences never reach the terminal.
    public func rendered() -> String {
        VisibleText.of(renderedLines())
    }

    private func renderedLines() -> String {
        var lines: [String] = []
        let kernelLabel = kernel?.label ?? "an unresolved kernel"
        let heading = "\(outcome.scenario): \(topology) on \(kernelLabel) (\(acceleratorLabel))"
        let report = outcome.detail.report
        lines += report?.headingLines(heading, facts: outcome.facts) ?? [heading] + outcome.facts.map { "\($0.name): \($0.value)" }
        if let labStart { lines.append("lab: \(labStart)") }
        for note in outcome.notApplicable { lines.append("not applicable: \(note)") }
        switch outcome.verdict {
        case .notApplicable:
            lines.append("")
            lines.append("NOT APPLICABLE: this kernel made nothing this scenario could check from this topology; no invariant was checked.")
            return lines.joined(separator: "\n")
        case .error where outcome.cases.isEmpty:
            lines.append("")
            lines.append("The run could not be done\(outcome.failure.map { " (\($0.kind))" } ?? ""): \(outcome.error ?? "no reason given")")
            return lines.joined(separator: "\n")
        default:
            break
        }
        let width = max(5, outcome.cases.map(\.name.count).max() ?? 0) + 2
        lines.append("")
        if let caseLines = report?.caseLines {
            lines += caseLines
        } else {
            for round in 0..<max(outcome.rounds, 1) {
                let cases = outcome.cases.filter { $0.round == round }
                if outcome.rounds > 1 { lines.append("round \(round + 1)") }
                for result in cases {
                    let verdict = result.verdict == .error ? "ERROR" : result.failed ? "FAIL" : result.verdict == .notApplicable ? "skip" : "pass"
                    lines.append("  " + result.name.padding(toLength: width, withPad: " ", startingAt: 0)
                                 + verdict.padding(toLength: 6, withPad: " ", startingAt: 0)
                                 + String(format: "%5.1f s  ", result.seconds) + (result.message ?? ""))
                }
            }
        }
        lines += report?.closingLines ?? []
        if let crash = outcome.cases.first(where: { $0.name == ScenarioOutcome.guestCrashCase }) {
            lines.append("")
            lines.append("guest-crash: \(crash.message ?? "the guest kernel crashed during the scenario")")
            for line in crash.evidence.prefix(30) { lines.append("    | \(line)") }
        }
        if let error = outcome.error {
            lines.append("")
            lines.append("The run stopped early: \(error)")
        }
        lines.append("")
        var closing = "\(outcome.cases.count) case(s), \(outcome.failedCases.count) failed"
        let skipped = outcome.cases.filter { $0.verdict == .notApplicable }.count
        if skipped > 0 { closing += ", \(skipped) skipped" }
        if outcome.rounds > 1 { closing += "; failure rate " + outcome.failureRate.description }
        closing += String(format: ". %.1f s in the guest.", outcome.guestSeconds)
        lines.append(closing)
        return lines.joined(separator: "\n")
    }
}
