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
        return result.cell.label.padding(toLength: width, withPad: " ", startingAt: 0)
            + result.verdict.rawValue.uppercased().padding(toLength: 7, withPad: " ", startingAt: 0)
            + String(format: "%6.1f s  ", result.seconds) + detail
    }

    public static func text(_ results: [CellResult], runID: String, junit: String?) -> String {
        let sorted = results.sorted { $0.cell.label < $1.cell.label }
        let width = (sorted.map(\.cell.label.count).max() ?? 10) + 2
        var lines = sorted.map { line($0, width: width) }
        lines.append("")
        lines.append(counts(results) + " Run \(runID).")
        let kernels = MatrixPlan.pins(of: results).sorted { $0.key < $1.key }
        if !kernels.isEmpty {
            lines.append("Kernels: " + kernels.map { "\($0.key) = \($0.value.release)" }.joined(separator: ", "))
        }
        if let junit { lines.append("JUnit: \(junit)") }
        let failed = sorted.filter { $0.verdict.isFailure }
        if !failed.isEmpty {
            lines.append("Reproduce:")
            for result in failed { lines.append("  \(result.cell.command)") }
        }
        return lines.joined(separator: "\n")
    }
}
