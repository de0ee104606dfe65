import Foundation
import Scenarios

/// The matrix's results for people: a line per cell, the counts, and how to reproduce each
/// failure.
public enum MatrixSummary {
    public static func counts(_ results: [CellResult]) -> String {
        let count: (Verdict) -> Int = { verdict in results.filter { $0.verdict == verdict }.count }
        return "\(results.count) cells: \(count(.pass)) pass, \(count(.fail)) fail, \(count(.notApplicable)) not applicable, "
            + "\(count(.error)) could not run."
    }

    /// One line for a finished cell.
    public static func line(_ result: CellResult, width: Int) -> String {
        let cases = result.cases
        let detail = cases.isEmpty ? (result.scenario.notApplicable.first ?? result.scenario.error ?? "")
            : "\(cases.filter(\.failed).count)/\(cases.count) failed"
        // How the lab came up, when the result says: a restored lab took seconds, a booted one tens.
        let start = result.outcome.labStart.map { "  (lab \($0.how) in \(String(format: "%.1f", $0.seconds)) s)" } ?? ""
        return result.cell.label.padding(toLength: width, withPad: " ", startingAt: 0)
            + result.verdict.rawValue.uppercased().padding(toLength: 7, withPad: " ", startingAt: 0)
            + String(format: "%6.1f s  ", result.seconds) + detail + start
    }

    /// How the cells held up against the matrix's expectations.
    public static func expectationCounts(_ judgements: [Judgement]) -> String {
        let expected = judgements.filter(\.asExpected)
        let failures = expected.filter(\.expectedFailure).count
        let deviations = judgements.filter { !$0.asExpected && !$0.couldNotRun }.count
        return "\(expected.count) as expected (\(failures) known failure\(failures == 1 ? "" : "s")), \(deviations) deviation\(deviations == 1 ? "" : "s"), "
            + "\(judgements.filter(\.couldNotRun).count) could not run."
    }

    public static func text(_ judgements: [Judgement], runID: String, junit: String?) -> String {
        let results = judgements.map(\.result)
        let width = (results.map(\.cell.label.count).max() ?? 10) + 2
        var lines = judgements.map { judgement in
            line(judgement.result, width: width) + (judgement.expectedFailure ? "  (expected)" : judgement.asExpected || judgement.couldNotRun ? "" : "  DEVIATION")
        }
        let deviating = judgements.filter { !$0.asExpected }
        if !deviating.isEmpty {
            lines.append("")
            lines += deviating.map(\.message)
        }
        lines.append("")
        lines.append(counts(results) + " Run \(runID).")
        lines.append("Expectations: " + expectationCounts(judgements))
        let kernels = MatrixPlan.pins(of: results).sorted { $0.key < $1.key }
        if !kernels.isEmpty {
            lines.append("Kernels: " + kernels.map { "\($0.key) = \($0.value.release)" }.joined(separator: ", "))
        }
        if let junit { lines.append("JUnit: \(junit)") }
        let failed = deviating.map(\.result)
        if !failed.isEmpty {
            lines.append("Reproduce:")
            for result in failed { lines.append("  \(result.cell.command)") }
        }
        return lines.joined(separator: "\n")
    }
}
