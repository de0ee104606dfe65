import Foundation
import GuestImage
import HostSupport
import XML

/// A finished cell.
public struct CellResult: Sendable, Codable {
    public var cell: MatrixCell
    public var cellID: String
    public var verdict: String
    public var report: DriverOrderReport
    public var accelerator: String
    public var imageKey: String?
    public var seconds: Double
    public var finished: Date
}

/// Runs cells in parallel, each in its own lab, and writes every finished cell to the result
/// store at once, so an interrupted matrix loses nothing and `--resume` runs only what is
/// missing.
public struct MatrixRunner: Sendable {
    public let cache: CacheDirectory
    public let standInSource: String
    public let recipe: ImageRecipe
    public let jobs: Int
    public let runID: String
    /// Relative paths in cells (topologies, module folders) are relative to this folder, so a
    /// cell's id is the same in every checkout.
    public let projectRoot: String

    public init(cache: CacheDirectory, standInSource: String, recipe: ImageRecipe, jobs: Int, runID: String, projectRoot: String) {
        self.projectRoot = projectRoot
        self.cache = cache
        self.standInSource = standInSource
        self.recipe = recipe
        self.jobs = max(1, jobs)
        self.runID = runID
    }

    var rootedStandIn: String { standInSource.hasPrefix("/") ? standInSource : projectRoot + "/" + standInSource }

    /// Cells this run already finished.
    public func finished() throws -> [CellResult] { try ResultStore(cache: cache).results(run: runID) }

    public enum Event: Sendable {
        case started(MatrixCell)
        case finished(CellResult)
    }

    public func run(_ cells: [MatrixCell], onEvent: @escaping @Sendable (Event) -> Void) async throws -> [CellResult] {
        let store = try ResultStore(cache: cache)
        let done = Set(try store.results(run: runID).map(\.cellID))
        // Longest first (by each cell's last known time), so the run does not end with one
        // long cell alone while the other slots idle.
        let history = try store.lastSeconds()
        let pending = cells.filter { !done.contains($0.id) }.sorted { (history[$0.id] ?? .infinity) > (history[$1.id] ?? .infinity) }
        let slots = AsyncSemaphore(jobs)
        let runID = runID
        let projectRoot = projectRoot
        let standInSource = rootedStandIn
        await withTaskGroup(of: Void.self) { group in
            for cell in pending {
                await slots.acquire()
                if Task.isCancelled { slots.release(); break }
                group.addTask {
                    defer { slots.release() }
                    onEvent(.started(cell))
                    let clock = ContinuousClock()
                    let start = clock.now
                    guard let selection = OrderSelection(argument: cell.orders) else { return }
                    let rooted: (String) -> String = { $0.hasPrefix("/") ? $0 : projectRoot + "/" + $0 }
                    let outcome = await DriverOrderCell(
                        kernel: cell.kernel, topology: rooted(cell.topology), recipe: recipe, drivers: cell.drivers,
                        modules: cell.modules.map(rooted),
                        selection: selection, seed: cell.seed, repeats: cell.repeats, runID: runID, cellID: cell.id
                    ).run(cache: cache, standInSource: standInSource)
                    let result = CellResult(cell: cell, cellID: cell.id, verdict: outcome.report.verdict, report: outcome.report,
                                            accelerator: outcome.accelerator, imageKey: outcome.imageKey,
                                            seconds: (clock.now - start).seconds, finished: Date())
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

/// JUnit XML: one test suite per cell, one test case per order run, so any CI system shows
/// which order failed, with the evidence; a cell that could not run is one case with an
/// error, a not-applicable cell one skipped case with the kernel's words.
public enum JUnitReport {
    public static func xml(_ results: [CellResult], name: String) throws -> String {
        let failures = results.flatMap(\.report.orderRuns).filter(\.failed).count
        let cases = results.map { max(1, $0.report.orderRuns.count) }.reduce(0, +)
        var root = XMLTree("testsuites")
        root.attributes = [.init("name", name), .init("tests", String(cases)), .init("failures", String(failures))]
        for result in results.sorted(by: { $0.cell.label < $1.cell.label }) {
            var suite = XMLTree("testsuite")
            let runs = result.report.orderRuns
            suite.attributes = [
                .init("name", result.cell.label), .init("id", result.cellID), .init("tests", String(max(1, runs.count))),
                .init("failures", String(runs.filter(\.failed).count)), .init("time", String(format: "%.1f", result.seconds)),
            ]
            var properties = XMLTree("properties")
            properties.children = [("kernel", result.report.kernel), ("repro", result.cell.command), ("fsdev_dax", result.report.fsdev.description)]
                .map { key, value in
                    var property = XMLTree("property")
                    property.attributes = [.init("name", key), .init("value", value)]
                    return .element(property)
                }
            suite.children.append(.element(properties))
            if runs.isEmpty {
                var testcase = XMLTree("testcase")
                testcase.attributes = [.init("classname", result.cell.label), .init("name", "cell"), .init("time", String(format: "%.1f", result.seconds))]
                if result.verdict == "n/a" {
                    var skipped = XMLTree("skipped")
                    skipped.attributes = [.init("message", result.report.notApplicable.joined(separator: "; "))]
                    testcase.children.append(.element(skipped))
                } else {
                    var error = XMLTree("error")
                    error.attributes = [.init("message", result.report.error ?? "the cell did not run")]
                    error.children = [.text("repro: \(result.cell.command)")]
                    testcase.children.append(.element(error))
                }
                suite.children.append(.element(testcase))
            }
            for (index, run) in runs.enumerated() {
                var testcase = XMLTree("testcase")
                let round = result.report.rounds.count > 1 ? " (run \(index + 1))" : ""
                testcase.attributes = [.init("classname", result.cell.label), .init("name", "order \(run.label)\(round)"),
                                       .init("time", String(format: "%.1f", run.seconds))]
                if run.failed {
                    var failure = XMLTree("failure")
                    let violations = run.observations.filter { $0.verdict == .fail }
                    failure.attributes = [.init("message", run.error ?? violations.first.map { "\($0.device) \($0.step.rawValue): \($0.note ?? "")" } ?? "failed")]
                    var evidence = violations.map { observation in
                        "\(observation.device) \(observation.step.rawValue): expected \(observation.expected ?? "not fsdev_dax"), got \(observation.actual ?? "no driver")"
                            + (observation.dmesg.isEmpty ? "" : "\n  " + observation.dmesg.joined(separator: "\n  "))
                    }
                    evidence.append("repro: \(result.cell.command)")
                    failure.children = [.text(evidence.joined(separator: "\n"))]
                    testcase.children.append(.element(failure))
                }
                suite.children.append(.element(testcase))
            }
            root.children.append(.element(suite))
        }
        return try root.serialized(declaration: true)
    }
}

/// glibc's malloc_trim(3), which Swift's Glibc module does not export.
@_silgen_name("malloc_trim")
private func glibcMallocTrim(_ pad: Int) -> Int32
