import Foundation
import GuestImage
import HostSupport
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

    public init(context: LabContext, store: ResultStore, standInSource: String, recipe: ImageRecipe, jobs: Int, runID: String, projectRoot: String) {
        self.projectRoot = projectRoot
        self.store = store
        self.context = context
        self.standInSource = standInSource
        self.recipe = recipe
        self.jobs = max(1, jobs)
        self.runID = runID
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
        let history = try store.lastSeconds()
        let pending = cells.filter { !done.contains($0.id) }.sorted { (history[$0.id] ?? .infinity) > (history[$1.id] ?? .infinity) }
        let slots = AsyncSemaphore(jobs)
        let runID = runID
        let projectRoot = projectRoot
        let standInSource = standInSource
        await withTaskGroup(of: Void.self) { group in
            for cell in pending {
                await slots.acquire()
                if Task.isCancelled { slots.release(); break }
                group.addTask {
                    defer { slots.release() }
                    onEvent(.started(cell))
                    let start = context.now()
                    let outcome = await cell.run(context: context, recipe: recipe, projectRoot: projectRoot, standInSource: standInSource, runID: runID)
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
    /// A `modules:` entry as the scenario takes it: a path (a slash before its parameters)
    /// taken from the project root when relative; a bare word names an in-tree module and
    /// stays a name, never a file under the project.
    static func moduleArgument(_ entry: String, projectRoot: String) -> String {
        let path = ModuleSpec(parsing: entry).path
        guard path.contains("/"), !path.hasPrefix("/") else { return entry }
        return projectRoot + "/" + entry
    }

    /// This cell in its own lab, on exactly its pinned kernel: what the runner does for each
    /// cell and `cxllab repro` for one. Relative paths are taken from `projectRoot`.
    public func run(context: LabContext, recipe: ImageRecipe, projectRoot: String, standInSource: String, runID: String,
                    keep: Bool = false, progress: @escaping @Sendable (String) -> Void = { _ in }) async -> CellOutcome {
        let rooted: (String) -> String = { $0.hasPrefix("/") ? $0 : projectRoot + "/" + $0 }
        let rootedModule: (String) -> String = { Self.moduleArgument($0, projectRoot: projectRoot) }
        switch scenario {
        case DriverOrderScenario(standInSource: "").name:
            guard let selection = OrderSelection(argument: orders) else {
                return .couldNotRun(scenario, failure: .input("orders '\(orders)' is neither 'all' nor a positive number"), kernel: pinned, topology: topology)
            }
            let driverOrder = DriverOrderScenario(drivers: drivers, modules: modules.map { ModuleSpec(parsing: rootedModule($0)) },
                                                  standInSource: rooted(standInSource), selection: selection, seed: seed, repeats: repeats)
            var cell = ScenarioCell(kernel: pinned.exactReference, topology: rooted(topology), recipe: recipe, scenario: driverOrder,
                                    runID: runID, cellID: id, pinned: pinned)
            cell.keep = keep
            return await cell.run(context: context, progress: progress)
        case "race":
            guard let raceKinds = RaceKind.parse(list: (kinds ?? RaceKind.allCases.map(\.rawValue)).joined(separator: ",")) else {
                return .couldNotRun(scenario, failure: .input("kinds '\((kinds ?? []).joined(separator: ","))' names an unknown race kind"), kernel: pinned, topology: topology)
            }
            let race = RaceScenario(drivers: drivers, modules: modules.map(rootedModule), standInSource: rooted(standInSource), kinds: raceKinds,
                                    rounds: repeats, seed: seed, workers: workers)
            var cell = ScenarioCell(kernel: pinned.exactReference, topology: rooted(topology), recipe: recipe, scenario: race,
                                    runID: runID, cellID: id, pinned: pinned)
            cell.keep = keep
            return await cell.run(context: context, progress: progress)
        case "ndctl-suite":
            let suite = NdctlSuiteScenario(suites: suites ?? NdctlSuiteScenario.allSuites, tests: suiteTests, modules: modules.map(rootedModule),
                                           loadFirst: loadFirst ?? [], topologyArgument: topology, timeoutMultiplier: timeoutMultiplier ?? 1)
            let suiteRecipe: ImageRecipe
            do {
                suiteRecipe = try ImageRecipe.load(path: rooted("images/ndctl-suite.yaml"))
            } catch {
                return .couldNotRun(scenario, failure: OutcomeError(error), kernel: pinned, topology: topology)
            }
            var cell = ScenarioCell(kernel: pinned.exactReference, topology: rooted(topology), recipe: suiteRecipe, scenario: suite,
                                    runID: runID, cellID: id, pinned: pinned)
            cell.keep = keep
            return await cell.run(context: context, progress: progress)
        default:
            return .couldNotRun(scenario, failure: .input("unknown scenario '\(scenario)'"), kernel: pinned, topology: topology)
        }
    }
}

/// glibc's malloc_trim(3), which Swift's Glibc module does not export.
@_silgen_name("malloc_trim")
private func glibcMallocTrim(_ pad: Int) -> Int32
