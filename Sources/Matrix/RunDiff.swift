import Foundation
import Scenarios

/// What changed between two runs, cell by cell. Cells pair by their key (their inputs less
/// the pinned kernel), so a suite alias that moved between the runs is said once, up front,
/// and its cells are still compared.
public enum RunDiff {
    public static func lines(_ before: [CellResult], _ after: [CellResult]) -> [String] {
        var lines: [String] = []
        let kernelsBefore = MatrixPlan.pins(of: before)
        let kernelsAfter = MatrixPlan.pins(of: after)
        for name in Set(kernelsBefore.keys).intersection(kernelsAfter.keys).sorted() {
            let (a, b) = (kernelsBefore[name]!, kernelsAfter[name]!)
            if a.release != b.release || a.imageSHA256 != b.imageSHA256 {
                lines.append("KERNEL       \(name): \(a.release) in A, \(b.release) in B; the runs tested different kernels")
            }
        }
        let old = Dictionary(before.map { ($0.cell.key, $0) }, uniquingKeysWith: { a, _ in a })
        let new = Dictionary(after.map { ($0.cell.key, $0) }, uniquingKeysWith: { a, _ in a })
        for key in Set(old.keys).union(new.keys).sorted() {
            switch (old[key], new[key]) {
            case (let a?, let b?):
                let rateA = a.scenario.failureRate
                let rateB = b.scenario.failureRate
                if case .race(let raceA) = a.scenario.detail, case .race(let raceB) = b.scenario.detail {
                    lines += raceLines(b.cell.label, raceA, raceB, verdicts: (a.verdict, b.verdict))
                } else if let change = verdictLine(b.cell.label, a.verdict, b.verdict) {
                    lines.append(change)
                } else if rateA.trials > 0, rateB.trials > 0, abs(rateA.rate - rateB.rate) > 1e-9 {
                    lines.append(String(format: "RATE         %@: %.0f%% -> %.0f%% failed", b.cell.label, rateA.rate * 100, rateB.rate * 100))
                }
            case (nil, let b?): lines.append("ONLY IN B    \(b.cell.label): \(b.verdict.rawValue)")
            case (let a?, nil): lines.append("ONLY IN A    \(a.cell.label): \(a.verdict.rawValue)")
            case (nil, nil): break
            }
        }
        return lines
    }

    /// NEW FAILURE, FIXED or CHANGED when the verdict moved; nil when it did not.
    static func verdictLine(_ label: String, _ before: Verdict, _ after: Verdict) -> String? {
        guard before != after else { return nil }
        let kind = after == .fail ? "NEW FAILURE" : before == .fail && after == .pass ? "FIXED" : "CHANGED"
        return "\(kind.padding(toLength: 12, withPad: " ", startingAt: 0)) \(label): \(before.rawValue) -> \(after.rawValue)"
    }

    /// A race's failure rate per kind, with both intervals; a change whose intervals do not
    /// overlap is called significant, one within them is only a difference.
    static func raceLines(_ label: String, _ a: RaceReport, _ b: RaceReport, verdicts: (Verdict, Verdict)) -> [String] {
        var lines = verdictLine(label, verdicts.0, verdicts.1).map { [$0] } ?? []
        let before = Dictionary(a.summaries.map { ($0.kind, $0.rate) }, uniquingKeysWith: { first, _ in first })
        for summary in b.summaries {
            guard let old = before[summary.kind], old.trials > 0, summary.rate.trials > 0 else { continue }
            let new = summary.rate
            guard abs(old.rate - new.rate) > 1e-9 else { continue }
            let significant = old.upper < new.lower || new.upper < old.lower
            lines.append(String(format: "RATE         %@, %@: %.0f%% [%.0f–%.0f] -> %.0f%% [%.0f–%.0f] failed%@", label, summary.kind.rawValue,
                                old.rate * 100, old.lower * 100, old.upper * 100, new.rate * 100, new.lower * 100, new.upper * 100,
                                significant ? " (significant: the 95% intervals do not overlap)" : " (within the 95% intervals)"))
        }
        return lines
    }
}
