import ArgumentParser
import Foundation
import HostSupport
import LabRuntime
import Matrix
import Scenarios

extension CXLLab {
    struct Report: ContextCommand, CacheDirOption {
        static let configuration = CommandConfiguration(abstract: "Write a run's reports again: HTML with heatmaps, JUnit XML and JSON.")
        @OptionGroup var cacheOptions: CacheOptions
        @Argument(help: "The run id (see `cxllab matrix`).") var run: String
        @Option(help: "The folder to write into (default: the run's folder in the cache).") var out: String?
        @Option(help: "A matrix file whose expect rules the report holds the cells to.") var expect: String?

        func run(in context: LabContext) async throws {
            let archive = RunArchive(context: context)
            let results = try archive.results(of: run)
            let folder = out ?? context.cache.path + "/reports/" + run
            let expectations = Expectations(try expect.map { try MatrixFile.load(path: $0).expect } ?? [])
            try HTMLReport.write(results, title: "cxllab run \(run)", expectations: expectations, to: folder)
            print("\(results.count) cells: \(folder)/index.html, junit.xml, results.json")
        }
    }

    struct Merge: ContextCommand, CacheDirOption {
        static let configuration = CommandConfiguration(
            abstract: "Merge the results of shards run elsewhere (their results.sqlite files) into this cache's store.",
            discussion: """
                A cell both stores hold is replaced only by a newer result; one finished more than 5 minutes after this \
                host's clock is left out, and said. Then `cxllab report RUN` writes one report for the whole matrix.
                """
        )
        @OptionGroup var cacheOptions: CacheOptions
        @Argument(help: "results.sqlite files.") var stores: [String]

        func run(in context: LabContext) async throws {
            let copied = try ResultStore(context: context).merge(from: stores)
            print("merged \(copied) cell result(s) from \(stores.count) store(s)")
        }
    }

    struct Diff: ContextCommand, CacheDirOption {
        static let configuration = CommandConfiguration(abstract: "List new failures, fixed cells and failure-rate changes between two runs.")
        @OptionGroup var cacheOptions: CacheOptions
        @Argument(help: "The earlier run.") var before: String
        @Argument(help: "The later run.") var after: String

        func run(in context: LabContext) async throws {
            let archive = RunArchive(context: context)
            let lines = RunDiff.lines(try archive.results(of: before), try archive.results(of: after))
            print(lines.isEmpty ? "No cell changed." : VisibleText.of(lines.joined(separator: "\n")))
            if lines.contains(where: { $0.hasPrefix("NEW FAILURE") }) { throw ExitCode(1) }
        }
    }

    struct Repro: ContextCommand, CacheDirOption {
        static let configuration = CommandConfiguration(
            abstract: "Run one matrix cell again with exactly its inputs.",
            discussion: "With --keep the lab stays up afterwards for `cxllab exec` and `cxllab console`."
        )
        @OptionGroup var cacheOptions: CacheOptions
        @Argument(help: "The cell id (or its first characters).") var cell: String
        @Flag(help: "Leave the lab running.") var keep = false

        func run(in context: LabContext) async throws {
            InterruptTeardown.install(sessions: context.sessions)
            let terminal = Terminal.standardError
            let stored = try RunArchive(context: context).cell(cell)
            terminal.line("repro of \(stored.cell.label) (cell \(stored.cellID), was \(stored.verdict.rawValue)) on \(stored.cell.pinned.release)")
            let outcome = await stored.cell.run(context: context, recipe: try context.projectFiles.recipe(named: "default"),
                                                projectRoot: try context.projectFiles.root(), standInSource: MatrixCommandSupport.standIn,
                                                runID: "repro", keep: keep) { terminal.status($0) }
            terminal.clearStatus()
            if let stored = stored.outcome.imageKey, let now = outcome.imageKey, stored != now {
                terminal.line("note: the guest image differs from the stored run's (\(stored.prefix(12)) then, \(now.prefix(12)) now): an input changed")
            }
            print(outcome.rendered())
            print("\nThen: \(stored.verdict.rawValue). Now: \(outcome.verdict.rawValue).")
            if let lab = outcome.keptLab {
                print("The lab is up: cxllab exec \(lab) -- daxctl list; cxllab console \(lab); cxllab down \(lab)")
            }
            if outcome.outcome.exitStatus != 0 { throw ExitCode(outcome.outcome.exitStatus) }
        }
    }
}
