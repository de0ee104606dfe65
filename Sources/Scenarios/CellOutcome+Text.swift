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
        var heading = "\(outcome.scenario): \(topology) on \(kernelLabel) (\(accelerator))"
        func deviceLine(_ devices: [ScenarioDevice]) {
            if !devices.isEmpty {
                lines.append("devices: " + devices.map { "\($0.name) (\($0.role.rawValue), \($0.source) \($0.parent))" }.joined(separator: ", "))
            }
        }
        if case .driverOrder(let report) = outcome.detail {
            heading += ", drivers \(report.drivers.joined(separator: ", "))"
            lines.append(heading)
            lines.append("fsdev_dax: \(report.fsdev)")
            deviceLine(report.devices)
        } else if case .race(let report) = outcome.detail {
            lines.append(heading + ", drivers \(report.drivers.joined(separator: ", "))")
            lines.append("fsdev_dax: \(report.fsdev)")
            deviceLine(report.devices)
        } else {
            lines.append(heading)
            for fact in outcome.facts { lines.append("\(fact.name): \(fact.value)") }
        }
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
        if case .race(let report) = outcome.detail {
            // Rounds by the dozen say less than their rates: the summary, then the evidence.
            lines += report.rendered()
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
        if case .suite(let report) = outcome.detail {
            lines.append("")
            lines += report.summary()
        }
        if case .driverOrder(let report) = outcome.detail {
            lines += report.stepSummary()
            let failures = report.failedOrders.filter { $0.error == nil }
            if !failures.isEmpty {
                lines.append("")
                lines.append("Violations:")
                for result in failures {
                    for observation in result.observations where observation.verdict == .fail {
                        lines.append("  order \(result.label), \(observation.device), \(observation.step.rawValue): "
                                     + "expected \(observation.expected ?? "any driver but fsdev_dax"), got \(observation.actual ?? "no driver")"
                                     + (observation.registered.map { $0.isEmpty ? "" : " (registered \($0.joined(separator: " < ")))" } ?? ""))
                        if let note = observation.note { lines.append("    \(note)") }
                        for message in observation.dmesg.suffix(8) { lines.append("    | \(message)") }
                    }
                }
            }
        }
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
