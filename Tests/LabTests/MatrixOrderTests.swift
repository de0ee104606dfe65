import Foundation
import GuestImage
import HostSupport
@testable import LabRuntime
@testable import Matrix
import Scenarios
import Testing

/// Cells run longest first, by their last time in this run's store or, when the run keeps its
/// results apart (a benchmark's store), in the cache's own.
@Suite struct MatrixOrderTests {
    @Test func aRunWithAStoreOfItsOwnStillKnowsHowLongCellsTake() throws {
        let folder = NSTemporaryDirectory() + "cxllab-order-\(UUID().uuidString.prefix(6))"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let cache = CacheDirectory(path: folder + "/cache")
        let short = Fixtures.cell(seed: 1), long = Fixtures.cell(seed: 2), unknown = Fixtures.cell(seed: 3)
        let main = try ResultStore(path: cache.path + "/results.sqlite")
        try main.save(Fixtures.result(short, Fixtures.outcome(drivers: short.drivers, rounds: []), seconds: 20), run: "earlier")
        try main.save(Fixtures.result(long, Fixtures.outcome(drivers: long.drivers, rounds: []), seconds: 90), run: "earlier")

        var settings = LabSettings.from(environment: [:])
        settings.resultStore = folder + "/bench.sqlite"
        let context = LabContext(settings: settings, cache: cache)
        let runner = MatrixRunner(context: context, store: try ResultStore(context: context), standInSource: "s",
                                  recipe: try ImageRecipe.load(path: LabSessionTests.root + "/images/default.yaml"), jobs: 2, runID: "bench",
                                  projectRoot: LabSessionTests.root)
        let history = runner.otherHistory()
        #expect(history[long.id] == 90 && history[short.id] == 20)
        let order = MatrixRunner.pending([short, unknown, long], done: [], history: history).map(\.id)
        #expect(order == [unknown.id, long.id, short.id])
        #expect(MatrixRunner.pending([short, long], done: [long.id], history: history).map(\.id) == [short.id])
    }
}

/// A cell's result says how its lab came up (booted, or restored from a saved machine) with
/// its seconds, in the text report, JSON, JUnit, HTML and the matrix's lines; results stored
/// before it was kept read back without it.
@Suite struct LabStartRecordTests {
    @Test func everyReportSaysHowTheLabStarted() throws {
        let cell = Fixtures.cell()
        let outcome = CellOutcome(outcome: Fixtures.outcome(drivers: cell.drivers, rounds: []), kernel: cell.pinned, topology: "t",
                                  accelerator: "TCG", imageKey: nil, console: [], keptLab: nil, labStart: .restored(seconds: 2.46))
        #expect(outcome.rendered().contains("lab: restored in 2.5 s"))
        let json = String(decoding: try JSONEncoder().encode(outcome), as: UTF8.self)
        #expect(json.contains("\"labStart\":{\"how\":\"restored\",\"seconds\":2.46}") || json.contains("\"labStart\":{\"seconds\":2.46,\"how\":\"restored\"}"), "\(json)")
        #expect(try JSONDecoder().decode(CellOutcome.self, from: Data(json.utf8)).labStart == .restored(seconds: 2.46))
        let result = CellResult(cell: cell, outcome: outcome, seconds: 30, finished: Date())
        #expect(try JUnitReport.xml([result], name: "m").contains("<property name=\"labStart\" value=\"restored in 2.5 s\"/>"))
        #expect(HTMLReport.html([result], title: "m").contains("lab restored in 2.5 s"))
        #expect(MatrixSummary.line(result, width: 10).hasSuffix("(lab restored in 2.5 s)"))

        // A result stored before: no labStart, and nothing said of it.
        let stored = json.replacingOccurrences(of: #","labStart":\{[^}]*\}"#, with: "", options: .regularExpression)
            .replacingOccurrences(of: #""labStart":\{[^}]*\},"#, with: "", options: .regularExpression)
        let old = try JSONDecoder().decode(CellOutcome.self, from: Data(stored.utf8))
        #expect(old.labStart == nil && !old.rendered().contains("lab:"))
    }
}
