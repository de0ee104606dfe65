import Foundation
import Testing
@testable import Bench

/// The bench's table says each figure beside its target, met or MISSED, from the figures
/// alone: the rows for saved machines (boot against restore, the warm matrix) and the
/// interactive commands.
@Suite struct BenchTableTests {
    static func figures(warmSeconds: Double, restored: Int, exec: Double) -> BenchFigures {
        var figures = BenchFigures()
        figures.labStart = LabStartBenchmark.Figures(topology: "nvdimm-single", booting: [9.8, 10.4, 9.6], restoring: [1.2, 1.0, 1.4])
        figures.interactive = InteractiveBenchmark.Figures(topology: "nvdimm-single.yaml", upBooting: [9.1, 9.4], upRestoring: [1.6, 1.8, 1.7],
                                                           exec: [exec, exec, exec], down: [0.3, 0.2, 0.3])
        figures.matrix = [BenchFigures.MatrixRun(jobs: 1, cells: 8, seconds: 340, peakResidentBytes: 60 << 20, verdicts: [:]),
                          BenchFigures.MatrixRun(jobs: 2, cells: 8, seconds: 200, peakResidentBytes: 62 << 20, verdicts: [:]),
                          BenchFigures.MatrixRun(jobs: 2, savedMachines: true, cells: 8, restored: restored, seconds: warmSeconds,
                                                 peakResidentBytes: 63 << 20, verdicts: [:])]
        figures.matrix[2].savingRunSeconds = 230
        figures.summarize()
        return figures
    }

    static func row(_ table: String, _ start: String) -> String {
        table.split(separator: "\n").map(String.init).first { $0.trimmingCharacters(in: .whitespaces).hasPrefix(start) } ?? ""
    }

    @Test func savedMachineRowsSayTheirFiguresAndTargets() {
        let table = Self.figures(warmSeconds: 140, restored: 7, exec: 0.2).table(matrixFile: "matrices/default.yaml")
        #expect(Self.row(table, "lab start, booting").contains("9.80 s"), "\(table)")
        #expect(Self.row(table, "lab start, restoring").contains("1.20 s") && Self.row(table, "lab start, restoring").contains("8.2x faster"), "\(table)")
        let warm = Self.row(table, "matrix, --jobs 2, warm (restoring)")
        #expect(warm.contains("140.0 s") && warm.contains("7 restored") && warm.hasSuffix("met (the run that saved them: 230.0 s)"), "\(warm)")
        #expect(Self.row(table, "speed-up --jobs 2 / --jobs 1, cold").contains("1.70x"), "the speed-up compares the cold runs: \(table)")
        #expect(Self.row(table, "cxllab up, restoring").contains("1.70 s") && Self.row(table, "cxllab up, restoring").hasSuffix("target < 2.0 s: met"), "\(table)")
        #expect(Self.row(table, "cxllab up, booting").contains("9.40 s") && Self.row(table, "cxllab up, booting").hasSuffix("target < 5.0 s: MISSED"), "\(table)")
        #expect(Self.row(table, "cxllab exec").hasSuffix("met"), "\(table)")
        #expect(Self.row(table, "cxllab down").hasSuffix("met"), "\(table)")
    }

    @Test func aSlowWarmMatrixOrTooFewRestoresIsMissed() {
        #expect(Self.row(Self.figures(warmSeconds: 151, restored: 8, exec: 0.2).table(matrixFile: "m"), "matrix, --jobs 2, warm").contains("MISSED"))
        #expect(Self.row(Self.figures(warmSeconds: 120, restored: 5, exec: 0.2).table(matrixFile: "m"), "matrix, --jobs 2, warm").contains("MISSED"))
        #expect(Self.row(Self.figures(warmSeconds: 120, restored: 6, exec: 0.2).table(matrixFile: "m"), "matrix, --jobs 2, warm").contains(": met"))
        #expect(Self.row(Self.figures(warmSeconds: 120, restored: 6, exec: 0.4).table(matrixFile: "m"), "cxllab exec").hasSuffix("MISSED"))
    }

    @Test func upSaysWhetherItRestored() {
        #expect(InteractiveBenchmark.startKind(upJSON: #"{"name":"x","start":"restored"}"#) == "restored")
        #expect(InteractiveBenchmark.startKind(upJSON: "not json") == "booted")
    }
}
