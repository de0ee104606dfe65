import Foundation
import GuestImage
import HostSupport
import Kernels
import LabRuntime
import Scenarios

/// A finished cell.
public struct CellResult: Sendable, Codable {
    public var cell: MatrixCell
    public var cellID: String
    public var outcome: CellOutcome
    public var seconds: Double
    public var finished: Date

    public init(cell: MatrixCell, outcome: CellOutcome, seconds: Double, finished: Date) {
        self.cell = cell
        cellID = cell.id
        self.outcome = outcome
        self.seconds = seconds
        self.finished = finished
    }

    public var verdict: Verdict { outcome.verdict }
    public var cases: [CaseResult] { outcome.outcome.cases }
    public var scenario: ScenarioOutcome { outcome.outcome }
}

/// Runs cells in parallel, each in its own lab, and writes every finished cell to the result
/// store at once, so an interrupted matrix loses nothing and `--resume` runs only what is
/// missing.
public struct MatrixRunner: Sendable {
    public let context: LabContext
    public let standInSource: String
    public let recipe: ImageRecipe
    public let jobs: Int
    public let runID: String
    /// Relative paths in cells (topologies, module folders) are relative to this folder, so a
    /// cell's id is the same in every checkout.
    public let projectRoot: String
    public let store: ResultStore
    /// The run's kernels as its plan resolved them, by the matrix's names: handed on to each
    /// cell, never resolved again.
    public let kernels: [String: Kernel]

    public init(context: LabContext, store: ResultStore, standInSource: String, recipe: ImageRecipe, jobs: Int, runID: String, projectRoot: String,
                kernels: [String: Kernel] = [:]) {
        self.kernels = kernels
        self.projectRoot = projectRoot
        self.store = store
        self.context = context
        self.standInSource = standInSource
        self.recipe = recipe
        self.jobs = max(1, jobs)
        self.runID = runID
    }

    /// The cells still to run, longest first by their last known time (unknown ones first):
    /// the run does not end with one long cell alone while the other slots idle.
    static func pending(_ cells: [MatrixCell], done: Set<String>, history: [String: Double]) -> [MatrixCell] {
        cells.filter { !done.contains($0.id) }.sorted { (history[$0.id] ?? .infinity) > (history[$1.id] ?? .infinity) }
    }

    /// Cell times from the cache's own store when this run keeps its results in another (a
    /// benchmark's, a drill's): a cell's id is the same in every store, so its last time there
    /// still tells how long it takes. Empty when there is no such store or it cannot be read.
    func otherHistory() -> [String: Double] {
        let own = context.cache.path + "/results.sqlite"
        guard store.path != own, FileManager.default.fileExists(atPath: own) else { return [:] }
        return (try? ResultStore(path: own).lastSeconds()) ?? [:]
    }

    /// Cells this run already finished.
    public func finished() throws -> [CellResult] { try store.results(run: runID) }

    public enum Event: Sendable {
        case started(MatrixCell)
        case finished(CellResult)
    }

    public func run(_ cells: [MatrixCell], onEvent: @escaping @Sendable (Event) -> Void) async throws -> [CellResult] {
        let store = store
        let done = Set(try store.results(run: runID).map(\.cellID))
        // Longest first (by each cell's last known time), so the run does not end with one
        // long cell alone while the other slots idle.
        let history = try store.lastSeconds().merging(otherHistory(), uniquingKeysWith: { own, _ in own })
        let pending = Self.pending(cells, done: done, history: history)
        let slots = AsyncSemaphore(jobs)
        let runID = runID
        let projectRoot = projectRoot
        let standInSource = standInSource
        let kernels = kernels
        await withTaskGroup(of: Void.self) { group in
            for cell in pending {
                await slots.acquire()
                if Task.isCancelled { slots.release(); break }
                group.addTask {
                    defer { slots.release() }
                    onEvent(.started(cell))
                    let start = context.now()
                    let outcome = await cell.run(context: context, kernel: kernels[cell.kernel], recipe: recipe, projectRoot: projectRoot, standInSource: standInSource, runID: runID)
                    let result = CellResult(cell: cell, outcome: outcome, seconds: context.seconds(since: start), finished: Date())
                    do {
                        try store.save(result, run: runID)
                    } catch {
                        FileHandle.standardError.write(Data("cxllab: could not store cell \(cell.id): \(error)\n".utf8))
                    }
                    onEvent(.finished(result))
                    // A matrix runs for long: what a cell freed goes back to the system, not to
                    // an idle malloc arena.
                    _ = glibcMallocTrim(0)
                }
            }
        }
        let wanted = Set(cells.map(\.id))
        return try finished().filter { wanted.contains($0.cellID) }
    }
}

extension MatrixCell {
    /// This cell in its own lab, on exactly its pinned kernel, by its scenario: what the runner
    /// does for each cell and `cxllab repro` for one. Relative paths are taken from `projectRoot`.
    /// `kernel`: the pinned kernel as the run resolved it, handed on; nil (`repro`): resolved
    /// once here from the pin's exact reference.
    public func run(context: LabContext, kernel: Kernel? = nil, recipe: ImageRecipe, projectRoot: String, standInSource: String, runID: String,
                    keep: Bool = false, progress: @escaping @Sendable (String) -> Void = { _ in }) async -> CellOutcome {
        guard let plugin else {
            return .couldNotRun(scenario, failure: .input("unknown scenario '\(scenario)'; the scenarios cxllab has are \(ScenarioRegistry.names)"),
                                kernel: pinned, topology: topology)
        }
        let request = CellRequest(pinned: pinned, kernel: kernel, topology: topology, recipe: recipe, project: ScenarioProject(root: projectRoot, standInSource: standInSource),
                                  runID: runID, cellID: id, keep: keep, context: context, progress: progress)
        return await plugin.runCell(settings, request)
    }
}

/// glibc's malloc_trim(3), which Swift's Glibc module does not export.
@_silgen_name("malloc_trim")
private func glibcMallocTrim(_ pad: Int) -> Int32
