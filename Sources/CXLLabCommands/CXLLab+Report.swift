import ArgumentParser
import Foundation
import HostSupport
import LabRuntime
import Matrix
import Scenarios

extension CXLLab {
    struct Report: ContextCommand, CacheDirOption {
        static let configuration = CommandConfiguration(
            abstract: "Write a run's reports again: HTML with heatmaps, JUnit XML and JSON.",
            discussion: CommandHelp.discussion(
                examples: ["cxllab report 20261203T101500Z-ab12 --report out \\",
                           "    --expect matrices/default.yaml"],
                exit: ExitStatus(success: "the reports are written", failure: nil))
        )
        @OptionGroup var cacheOptions: CacheOptions
        @Argument(help: "The run id (see `cxllab matrix`).") var run: String
        @Option(help: ArgumentHelp("The folder to write into (default: the run's folder in the cache).", valueName: "DIR")) var report: String?
        @Option(name: .customLong("out"), help: .hidden) var oldSpelling: String?
        @Option(help: "A matrix file whose expect rules the report holds the cells to.") var expect: String?
        @OptionGroup var output: JSONOption

        func validate() throws {
            if report != nil, oldSpelling != nil { throw ValidationError("the folder is given twice: give --report once (--out is its old spelling)") }
            if !RunArchive.isRunID(run) { throw ValidationError("'\(run)' is not a run id: give one as `cxllab matrix` printed it") }
        }

        /// What `report --json` prints: where each file went.
        struct Written: Encodable {
            let run: String
            let cells: Int
            let folder: String
            let files: [String]
        }

        func run(in context: LabContext) async throws {
            let archive = RunArchive(context: context)
            let results = try archive.results(of: run)
            let folder = report ?? oldSpelling ?? context.cache.path + "/reports/" + run
            if let expect, let problem = InputFile.problem(expect, role: "matrix file (--expect)") { throw problem }
            let expectations = Expectations(try expect.map { try MatrixFile.load(path: $0).expect } ?? [])
            try HTMLReport.write(results, title: "cxllab run \(run)", expectations: expectations, to: folder)
            let files = ["index.html", "junit.xml", "results.json"]
            if output.json {
                print(try JSONOutput.encode(Written(run: run, cells: results.count, folder: folder, files: files.map { folder + "/" + $0 })))
            } else {
                print("\(results.count) cells: \(folder)/index.html, junit.xml, results.json")
            }
        }
    }

    struct Merge: ContextCommand, CacheDirOption {
        static let configuration = CommandConfiguration(
            abstract: "Merge the results of shards run elsewhere (their results.sqlite files) into this cache's store.",
            discussion: CommandHelp.discussion("""
                A cell both stores hold is replaced only by a newer result; one finished more than 5 minutes after this \
                host's clock is left out, and said. Then `cxllab report RUN` writes one report for the whole matrix.
                """, exit: ExitStatus(success: "the results are merged", failure: nil))
        )
        @OptionGroup var cacheOptions: CacheOptions
        @Argument(help: "results.sqlite files.") var stores: [String]

        func run(in context: LabContext) async throws {
            for store in stores { if let problem = InputFile.problem(store, role: "result store") { throw problem } }
            let copied = try ResultStore(context: context).merge(from: stores)
            print("merged \(copied) cell result(s) from \(stores.count) store(s)")
        }
    }

    struct Diff: ContextCommand, CacheDirOption {
        static let configuration = CommandConfiguration(
            abstract: "List new failures, fixed cells and failure-rate changes between two runs.",
            discussion: CommandHelp.discussion(exit: ExitStatus(success: "no cell newly fails", failure: "a cell fails that did not"))
        )
        @OptionGroup var cacheOptions: CacheOptions
        @Argument(help: "The earlier run.") var before: String
        @Argument(help: "The later run.") var after: String
        @OptionGroup var output: JSONOption

        func validate() throws {
            for run in [before, after] where !RunArchive.isRunID(run) {
                throw ValidationError("'\(run)' is not a run id: give two as `cxllab matrix` printed them")
            }
        }

        func run(in context: LabContext) async throws {
            let archive = RunArchive(context: context)
            let changes = RunChanges(before: before, after: after,
                                     lines: RunDiff.lines(try archive.results(of: before), try archive.results(of: after)))
            if output.json {
                print(try JSONOutput.encode(changes))
            } else {
                print(changes.changes.isEmpty ? "No cell changed." : VisibleText.of(changes.changes.map(\.line).joined(separator: "\n")))
            }
            if changes.newFailures > 0 { throw ExitCode(1) }
        }
    }

    struct Repro: ContextCommand, CacheDirOption {
        static let configuration = CommandConfiguration(
            abstract: "Run one matrix cell again with exactly its inputs.",
            discussion: CommandHelp.discussion(
                "With --keep the lab stays up afterwards for `cxllab exec` and `cxllab console`.",
                exit: ExitStatus(success: "the cell passed", failure: "the cell failed"))
        )
        @OptionGroup var cacheOptions: CacheOptions
        @Argument(help: "The cell id (or its first characters).") var cell: String
        @Flag(help: "Leave the lab running.") var keep = false
        @OptionGroup var output: JSONOption

        /// What `repro --json` prints: the stored verdict and the new cell.
        struct Rerun: Encodable {
            let then: String
            let now: String
            let imageChanged: Bool
            let keptLab: String?
            let outcome: CellOutcome
        }

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
            if output.json {
                let changed = stored.outcome.imageKey.map { $0 != outcome.imageKey } ?? false
                print(try JSONOutput.encode(Rerun(then: stored.verdict.rawValue, now: outcome.verdict.rawValue, imageChanged: changed,
                                                  keptLab: outcome.keptLab, outcome: outcome)))
            } else {
                print(outcome.rendered())
                print("\nThen: \(stored.verdict.rawValue). Now: \(outcome.verdict.rawValue).")
            }
            if !output.json, let lab = outcome.keptLab {
                print("The lab is up: cxllab exec \(lab) -- daxctl list; cxllab console \(lab); cxllab down \(lab)")
            }
            if outcome.outcome.exitStatus != 0 { throw ExitCode(outcome.outcome.exitStatus) }
        }
    }
}
