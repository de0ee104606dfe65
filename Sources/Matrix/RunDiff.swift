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
                if let earlier = a.scenario.detail.report,
                   let own = b.scenario.detail.report?.diffLines(label: b.cell.label, earlier: earlier, verdicts: (a.verdict, b.verdict)) {
                    lines += own
                } else if let change = Verdict.changeLine(b.cell.label, a.verdict, b.verdict) {
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
}
