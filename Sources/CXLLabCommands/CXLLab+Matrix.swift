import ArgumentParser
import Foundation
import GuestImage
import HostSupport
import Lab

extension CXLLab {
    struct Matrix: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a matrix of kernels x topologies x scenarios, cells in parallel, each in its own lab.",
            discussion: """
                Every finished cell goes into <cache>/results.sqlite at once; --resume RUN runs only the missing ones.
                Exit status: 0 when no cell failed, 1 when one did, 2 when a cell could not run.
                """
        )
        @OptionGroup var cacheOptions: CacheOptions
        @Argument(help: "The matrix file, e.g. matrices/default.yaml.") var file = "matrices/default.yaml"
        @Option(help: "Cells at once (default: one per core, as memory allows).") var jobs: Int?
        @Option(help: "Run shard I of N (1-based), e.g. 1/2.") var shard: String?
        @Option(help: "Only cells whose label or id contains every word.") var filter: String?
        @Option(help: "Write JUnit XML here.") var junit: String?
        @Option(help: "Write the HTML report (with JUnit XML and JSON) into this folder.") var report: String?
        @Option(help: "Continue this run: only its missing cells run.") var resume: String?
        @Flag(help: "Print the results as JSON.") var json = false

        func run() async throws {
            InterruptTeardown.install()
            let terminal = Terminal.standardError
            let cache = cacheOptions.cache
            let planned = try await Self.plan(file: file, cache: cache, terminal: terminal)
            let matrix = planned.matrix
            var cells = planned.cells
            if let filter { cells = MatrixExpansion.filter(cells, filter) }
            if let shard {
                let parts = shard.split(separator: "/").compactMap { Int($0) }
                guard parts.count == 2, parts[0] >= 1, parts[0] <= parts[1] else { throw ValidationError("--shard takes I/N with 1 <= I <= N, e.g. 1/2") }
                cells = MatrixExpansion.shard(cells, index: parts[0], count: parts[1])
            }
            let runID = resume ?? Self.newRunID()
            let runner = MatrixRunner(cache: cache, standInSource: planned.standIn, recipe: try ProjectFiles.recipe(named: "default"),
                                      jobs: jobs ?? Self.defaultJobs(), runID: runID, projectRoot: planned.projectRoot)
            let progress = MatrixProgress(total: cells.count, already: try runner.finished().filter { done in cells.contains { $0.id == done.cellID } }.count,
                                          terminal: terminal)
            terminal.line("matrix \(matrix.name): \(cells.count) cells, \(runner.jobs) at a time, run \(runID)")
            let results = try await runner.run(cells) { progress.handle($0) }
            terminal.clearStatus()

            if let report {
                try HTMLReport.write(results, title: "cxllab \(matrix.name) \(runID)", to: report)
            }
            if let junit {
                try JUnitReport.xml(results, name: "cxllab \(matrix.name) \(runID)").write(toFile: junit, atomically: true, encoding: .utf8)
            }
            if json {
                print(try JSONOutput.encode(results))
            } else {
                print(Self.summary(results, runID: runID, junit: junit))
            }
            if results.contains(where: { $0.verdict == "error" }) || results.count < cells.count { throw ExitCode(2) }
            if results.contains(where: { $0.verdict == "fail" }) { throw ExitCode(1) }
        }

        struct Plan {
            let matrix: MatrixFile
            let cells: [MatrixCell]
            let standIn: String
            let projectRoot: String
        }

        /// The matrix file's cells, with stand-in variants chosen from each kernel's config
        /// (the kernels are fetched first when the cache lacks them).
        static func plan(file: String, cache: CacheDirectory, terminal: Terminal) async throws -> Plan {
            let path = file.hasPrefix("/") || FileManager.default.fileExists(atPath: file) ? file : try ProjectFiles.folder(file)
            let matrix = try MatrixFile.load(path: path)
            let projectRoot = try ProjectFiles.root()
            // Cells name project files relative to the project, so their ids do not depend on the checkout.
            let standIn = "images/modules/fsdev_dax"
            var kinds: [String: MatrixExpansion.FsdevKind] = [:]
            let store = try KernelStore(cache: cache)
            for kernel in matrix.kernels {
                let found = try await store.kernel(try KernelReference(parsing: kernel)) { terminal.status($0) }
                let config = KernelConfig(contentsOf: found.configPath)
                kinds[kernel] = config?.isEnabled("DEV_DAX_FSDEV") == true ? .real
                    : KernelRequirements.releaseBefore(found.release, 6, 3) ? MatrixExpansion.FsdevKind.none : .standInPossible
            }
            let cells = MatrixExpansion.cells(matrix, standInSource: standIn) { kinds[$0] ?? .standInPossible }
            return Plan(matrix: matrix, cells: cells, standIn: standIn, projectRoot: projectRoot)
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

        static func summary(_ results: [CellResult], runID: String, junit: String?) -> String {
            let sorted = results.sorted { $0.cell.label < $1.cell.label }
            let width = (sorted.map(\.cell.label.count).max() ?? 10) + 2
            var lines = sorted.map { result -> String in
                let runs = result.report.orderRuns
                let detail = runs.isEmpty ? (result.report.notApplicable.first ?? result.report.error ?? "")
                    : "\(runs.filter(\.failed).count)/\(runs.count) orders failed"
                return result.cell.label.padding(toLength: width, withPad: " ", startingAt: 0)
                    + result.verdict.uppercased().padding(toLength: 7, withPad: " ", startingAt: 0)
                    + String(format: "%6.1f s  ", result.seconds) + detail
            }
            let count: (String) -> Int = { verdict in results.filter { $0.verdict == verdict }.count }
            lines.append("")
            lines.append("\(results.count) cells: \(count("pass")) pass, \(count("fail")) fail, \(count("n/a")) not applicable, \(count("error")) could not run. Run \(runID).")
            if let junit { lines.append("JUnit: \(junit)") }
            let failed = sorted.filter { $0.verdict == "fail" || $0.verdict == "error" }
            if !failed.isEmpty {
                lines.append("Reproduce:")
                for result in failed { lines.append("  \(result.cell.command)") }
            }
            return lines.joined(separator: "\n")
        }
    }
}

/// The live line: done/total, failures so far, elapsed, ETA.
final class MatrixProgress: @unchecked Sendable {
    private let lock = NSLock()
    private let total: Int
    private var done: Int
    private var failures = 0
    private var running: Set<String> = []
    private let terminal: Terminal
    private let start = ContinuousClock.now
    private var finishedThisRun = 0

    init(total: Int, already: Int, terminal: Terminal) {
        self.total = total
        self.done = already
        self.terminal = terminal
    }

    func handle(_ event: MatrixRunner.Event) {
        let line: String = lock.withLock {
            switch event {
            case .started(let cell):
                running.insert(cell.label)
            case .finished(let result):
                running.remove(result.cell.label)
                done += 1
                finishedThisRun += 1
                if result.verdict == "fail" || result.verdict == "error" { failures += 1 }
            }
            let elapsed = (ContinuousClock.now - start).seconds
            let eta = finishedThisRun > 0 ? elapsed / Double(finishedThisRun) * Double(total - done) : 0
            return String(format: "[%d/%d] %d failed, %.0f s elapsed, ETA %.0f s", done, total, failures, elapsed, eta)
        }
        if case .finished(let result) = event {
            terminal.line("\(result.verdict.uppercased().padding(toLength: 6, withPad: " ", startingAt: 0)) \(result.cell.label)")
        }
        terminal.status(line)
    }
}
