import Foundation

extension DriverOrderReport {
    /// The report for people: one line per order, then every violation with its evidence.
    public func rendered(accelerator: String) -> String {
        var lines: [String] = []
        lines.append("driver-order: \(topology) on \(kernel) (\(accelerator)), drivers \(drivers.joined(separator: ", "))")
        lines.append("fsdev_dax: \(fsdev)")
        if !devices.isEmpty {
            lines.append("devices: " + devices.map { "\($0.name) (\($0.role.rawValue), \($0.source) \($0.parent))" }.joined(separator: ", "))
        }
        for note in notApplicable { lines.append("not applicable: \(note)") }
        if verdict == "n/a" {
            lines.append("")
            lines.append("NOT APPLICABLE: this kernel made no dax device from this topology; no invariant was checked.")
            return lines.joined(separator: "\n")
        }
        if let error {
            lines.append("")
            lines.append("The run could not be done: \(error)")
            return lines.joined(separator: "\n")
        }
        let runs = orderRuns
        let width = max(5, runs.map(\.label.count).max() ?? 0) + 2
        lines.append("")
        for (round, results) in rounds.enumerated() {
            if rounds.count > 1 { lines.append("round \(round + 1)") }
            for result in results {
                let verdict = result.error != nil ? "ERROR" : result.failed ? "FAIL" : "pass"
                var summary = ""
                if let error = result.error {
                    summary = error
                } else if let first = result.observations.first(where: { $0.verdict == .fail }) {
                    summary = "\(first.device) \(first.step.rawValue): \(first.note ?? "")"
                }
                lines.append("  " + result.label.padding(toLength: width, withPad: " ", startingAt: 0)
                             + verdict.padding(toLength: 6, withPad: " ", startingAt: 0)
                             + String(format: "%5.1f s  ", result.seconds) + summary)
            }
        }
        let failures = failedOrders.filter { $0.error == nil }
        if !failures.isEmpty {
            lines.append("")
            lines.append("Violations:")
            for result in failures {
                for observation in result.observations where observation.verdict == .fail {
                    lines.append("  order \(result.label), \(observation.device), \(observation.step.rawValue): "
                                 + "expected \(observation.expected ?? "any driver but fsdev_dax"), got \(observation.actual ?? "no driver")")
                    if let note = observation.note { lines.append("    \(note)") }
                    for message in observation.dmesg.suffix(8) { lines.append("    | \(message)") }
                }
            }
        }
        lines.append("")
        let rate = failureRate
        var closing = "\(runs.count) order run(s), \(failedOrders.count) failed"
        if rounds.count > 1 { closing += "; failure rate " + rate.description }
        closing += String(format: ". %.1f s in the guest.", seconds)
        lines.append(closing)
        return lines.joined(separator: "\n")
    }
}
