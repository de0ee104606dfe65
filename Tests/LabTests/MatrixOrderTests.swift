import Foundation
import GuestImage
import HostSupport
@testable import LabRuntime
@testable import Matrix
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
