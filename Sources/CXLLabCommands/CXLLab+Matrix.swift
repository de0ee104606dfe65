import ArgumentParser
import Foundation
import Kernels
import HostSupport
import LabRuntime
import Matrix
import Scenarios
import Synchronization

extension CXLLab {
    struct Matrix: ContextCommand, CacheDirOption {
        static let configuration = CommandConfiguration(
            abstract: "Run a matrix of kernels x topologies x scenarios, cells in parallel, each in its own lab.",
            discussion: CommandHelp.discussion(
                """
                Every finished cell goes into <cache>/results.sqlite at once; --resume RUN runs only the missing ones. \
                Each cell is held against the file's `expect` rules (a cell no rule names must not fail). A matrix \
                file that cannot be used exits 2 with its every problem as FILE:LINE:COL, before anything is fetched or \
                booted; its keys: docs/MATRICES.md.
                """,
                examples: ["cxllab matrix matrices/default.yaml --jobs 2 --report out \\",
                           "    --junit out/junit.xml",
                           "cxllab matrix --filter 'cxl-pmem-ram automatch=1'"],
                exit: ExitStatus(success: "every cell did as expected", failure: "a cell deviated from what was expected"))
        )
        @OptionGroup var cacheOptions: CacheOptions
        @Argument(help: "The matrix file, e.g. matrices/default.yaml.") var file = "matrices/default.yaml"
        @Option(help: "Cells at once (default: one per core, as memory allows).") var jobs: Int?
        @Option(help: "Run shard I of N (1-based), e.g. 1/2.") var shard: String?
        @Option(help: "Only cells whose label (kernel, topology, scenario, variant) contains every word, or whose id starts with one.")
        var filter: String?
        @OptionGroup var junitOption: JUnitOption
        @Option(help: ArgumentHelp("Write the HTML report (with JUnit XML and JSON) into this folder.", valueName: "DIR")) var report: String?
        @Option(help: "Continue this run: only its missing cells run.") var resume: String?
        @OptionGroup var output: JSONOption

        /// `--shard I/N` as numbers, nil when not given.
        var shardParts: (index: Int, count: Int)? {
            guard let shard else { return nil }
            let parts = shard.split(separator: "/", omittingEmptySubsequences: false).map { Int($0) }
            guard parts.count == 2, let index = parts[0], let count = parts[1] else { return (0, 0) }
            return (index, count)
        }

        func validate() throws {
            if let resume, !RunArchive.isRunID(resume) {
                throw ValidationError("--resume takes a run id (letters, digits and '-'), as `cxllab matrix` printed it, not '\(resume)'")
            }
            if let jobs, jobs < 1 { throw ValidationError("--jobs takes 1 or more cells at once, not \(jobs)") }
            if let shard, let parts = shardParts, !(parts.index >= 1 && parts.index <= parts.count) {
                throw ValidationError("--shard takes I/N with 1 <= I <= N, e.g. 1/2, not '\(shard)'")
            }
            if let filter, filter.split(separator: " ").isEmpty { throw ValidationError("--filter needs at least one word") }
        }

        func run(in context: LabContext) async throws {
            InterruptTeardown.install(sessions: context.sessions)
            let terminal = Terminal.standardError
            // The file first: its problems are an input error (2), said before the store is
            // opened or a kernel fetched.
            let matrixFile = try MatrixCommandSupport.load(file, projectRoots: context.projectFiles.searchFolders())
            let store = try ResultStore(context: context)
            // A resumed run keeps the kernels it pinned when it started.
            let earlier = try resume.map { MatrixPlan.pins(of: try store.results(run: $0)) } ?? [:]
            let plan = try await MatrixCommandSupport.plan(matrixFile, context: context, earlier: earlier, terminal: terminal)
            let matrix = plan.matrix
            var cells = plan.cells
            if let filter {
                let kept = MatrixExpansion.filter(cells, filter)
                if kept.isEmpty { throw MatrixFilterMiss(filter: filter, cells: cells) }
                cells = kept
            }
            if let parts = shardParts { cells = MatrixExpansion.shard(cells, index: parts.index, count: parts.count) }
            let runID = resume ?? Self.newRunID()
            let runner = MatrixRunner(context: context, store: store, standInSource: MatrixCommandSupport.standIn,
                                      recipe: try context.projectFiles.recipe(named: "default"), jobs: jobs ?? Self.defaultJobs(), runID: runID,
                                      projectRoot: try context.projectFiles.root(), kernels: plan.resolvedKernels)
            let progress = MatrixProgress(total: cells.count, already: try runner.finished().filter { done in cells.contains { $0.id == done.cellID } }.count,
                                          expectations: plan.expectations, terminal: terminal)
            let pinnedKernels = plan.kernels.sorted { $0.key < $1.key }.map { "\($0.key) = \($0.value.pinned.release)" }.joined(separator: ", ")
            terminal.line("matrix \(matrix.name): \(cells.count) cells, \(runner.jobs) at a time, run \(runID); kernels pinned: \(pinnedKernels)")
            let results = try await runner.run(cells) { progress.handle($0) }
            terminal.clearStatus()

            let expectations = plan.expectations
            if let report {
                try HTMLReport.write(results, title: "cxllab \(matrix.name) \(runID)", expectations: expectations, to: report)
            }
            if let junit = junitOption.junit {
                try JUnitReport.xml(results, name: "cxllab \(matrix.name) \(runID)", expectations: expectations)
                    .write(toFile: junit, atomically: true, encoding: .utf8)
            }
            let judgements = expectations.judge(results)
            if output.json {
                print(try JSONOutput.encode(results))
                terminal.line("Expectations: " + MatrixSummary.expectationCounts(judgements))
                for judgement in judgements where !judgement.asExpected { terminal.line(judgement.message) }
            } else {
                print(VisibleText.of(MatrixSummary.text(judgements, runID: runID, junit: junitOption.junit)))
            }
            let status = Expectations.exitStatus(judgements, expectedCells: cells.count)
            if status != 0 { throw ExitCode(status) }
        }

        static func newRunID() -> String {
            UTCTimestamp.compact(Date()) + "-" + String(UUID().uuidString.prefix(4)).lowercased()
        }

        /// One cell per core under TCG, and no more than memory allows (about 3 GiB a guest).
        static func defaultJobs() -> Int {
            let cores = ProcessInfo.processInfo.activeProcessorCount
            let memory = Int(ProcessInfo.processInfo.physicalMemory >> 30) / 3
            return max(1, min(cores, memory))
        }
    }
}

/// What the matrix commands share.
enum MatrixCommandSupport {
    /// Cells name project files relative to the project, so their ids do not depend on the checkout.
    static let standIn = "images/modules/fsdev_dax"

    /// The matrix file, found from the working folder or the project, read and checked; or its
    /// every problem on standard error and exit status 2 (argument-parser's usage errors are 64).
    static func load(_ file: String, projectRoots: [String]) throws -> MatrixFile {
        do {
            return try MatrixFile.load(path: try MatrixFile.locate(file, projectRoots: projectRoots))
        } catch {
            Terminal.standardError.line(error.description)
            throw ExitCode(2)
        }
    }

    /// The matrix file's cells on its kernels, each resolved once now (fetched when the cache
    /// lacks it).
    static func plan(_ matrix: MatrixFile, context: LabContext, earlier: [String: PinnedKernel], terminal: Terminal) async throws -> MatrixPlan {
        try await MatrixPlan.make(matrix, resolver: try KernelStore(cache: context.cache), standInSource: standIn, earlier: earlier) {
            terminal.status($0)
        }
    }
}

/// The live line: done/total, failures so far, elapsed, ETA.
final class MatrixProgress: Sendable {
    private struct Counts {
        var done: Int
        var deviations = 0
        var known = 0
        var finishedThisRun = 0
    }
    private let total: Int
    private let counts: Mutex<Counts>
    private let expectations: Expectations
    private let terminal: Terminal
    private let start = ContinuousClock.now

    init(total: Int, already: Int, expectations: Expectations, terminal: Terminal) {
        self.total = total
        counts = Mutex(Counts(done: already))
        self.expectations = expectations
        self.terminal = terminal
    }

    /// On a terminal, a live line that each event rewrites; in a log (CI, a pipe), one line
    /// per finished cell with the same figures, and nothing twice.
    func handle(_ event: MatrixRunner.Event) {
        var judgement: Judgement?
        if case .finished(let result) = event { judgement = expectations.judge(result) }
        let figures: String = counts.withLock { counts in
            if let judgement {
                counts.done += 1
                counts.finishedThisRun += 1
                if !judgement.asExpected { counts.deviations += 1 }
                if judgement.expectedFailure { counts.known += 1 }
            }
            let elapsed = (ContinuousClock.now - start).seconds
            let eta = counts.finishedThisRun > 0 ? elapsed / Double(counts.finishedThisRun) * Double(total - counts.done) : 0
            return String(format: "[%d/%d] %d deviating, %d known failing, %.0f s elapsed, ETA %.0f s", counts.done, total, counts.deviations,
                          counts.known, elapsed, eta)
        }
        if let judgement {
            let result = judgement.result
            let verdict = result.verdict.rawValue.uppercased().padding(toLength: 6, withPad: " ", startingAt: 0)
            let note = judgement.expectedFailure ? "  (expected)" : judgement.asExpected ? "" : "  DEVIATION"
            terminal.line(terminal.isInteractive ? "\(verdict) \(result.cell.label)\(note)" : "\(verdict) \(result.cell.label)\(note)  \(figures)")
        }
        if terminal.isInteractive { terminal.status(figures) }
    }
}
