import ArgumentParser
import Foundation
import Kernels
import HostSupport
import Bench
import LabRuntime
import Matrix
import Scenarios
import Libvirt

extension CXLLab {
    /// Every figure cxllab claims, measured in one run and printed side by side: a table for
    /// people, JSON for machines. A step that fails is a row that says so, and the exit status
    /// is 1; nothing is left out quietly.
    struct Bench: ContextCommand, CacheDirOption {
        static let configuration = CommandConfiguration(
            abstract: "Measure cxllab side by side with the tools underneath it.",
            discussion: CommandHelp.discussion(
                """
                1. One driver-order cell run by the cell runner through libvirt (cxllab) and by QEMU directly
                   (same kernel, image, devices and agent calls); their ratio: what libvirt adds.
                2. Image build, cold and warm.  3. libvirt domain start latency.  4. Time per driver order.
                5. A lab's start, booted against restored from a saved machine.
                6. `cxllab up`, `exec -- uname -r` and `down`, as typed.  7. Race rounds per minute.
                8. Matrix throughput at --jobs 1 and 2 booting every lab (cold), then at --jobs 2 restoring
                   saved machines (warm, after a run that saved them).  9. cxllab's peak memory during them.
                """,
                examples: ["cxllab bench topologies/nvdimm-single.yaml --runs 2 --json"],
                exit: ExitStatus(success: "every step was measured", failure: "a step failed (its row says why)"))
        )
        @OptionGroup var cacheOptions: CacheOptions
        @Argument(help: "The topology of the cell and start measurements (default: topologies/nvdimm-single.yaml).") var topology: String?
        @Option(name: .customLong("topology"), help: .hidden) var topologyOldSpelling: String?
        @OptionGroup var guestKernel: KernelOption<BookwormBackports>
        @Option(help: "The matrix for throughput and memory.") var matrix = "matrices/default.yaml"
        @Option(help: "Cell pairs (direct, cxllab) to take the median of.") var runs = 3
        @Option(help: "Domain starts, lab starts (booted, restored) and up/exec/down rounds to take the median of.") var starts = 5
        @OptionGroup var output: JSONOption

        func validate() throws {
            if topology != nil, topologyOldSpelling != nil {
                throw ValidationError("the topology is given twice: give it once, as the argument (--topology is its old spelling)")
            }
            if runs < 1 { throw ValidationError("--runs takes 1 or more, not \(runs)") }
            if starts < 1 { throw ValidationError("--starts takes 1 or more, not \(starts)") }
        }

        func run(in context: LabContext) async throws {
            InterruptTeardown.install(sessions: context.sessions)
            let kernel = guestKernel.kernel
            let topology = topology ?? topologyOldSpelling ?? "topologies/nvdimm-single.yaml"
            let terminal = Terminal.standardError
            let cache = context.cache
            var figures = BenchFigures()
            let topologyPath = try context.projectFiles.inputFile(topology, role: "topology", fix: TopologyFileHint.fix)
            let matrixPath = try MatrixFile.locate(matrix, projectRoots: context.projectFiles.searchFolders())
            let libvirt = try await context.connect()
            figures.host = BenchFigures.Host(cores: ProcessInfo.processInfo.activeProcessorCount,
                                             memoryGiB: Int(ProcessInfo.processInfo.physicalMemory >> 30),
                                             libvirt: (try? libvirt.libraryVersion().description) ?? "unknown")

            // Untimed: fetch the kernel, build the image, probe QEMU and the accelerator, so
            // the figures below are of the work itself.
            let prepared: PreparedLab
            do {
                let resolved = try await KernelStore(cache: cache).kernel(try KernelReference(parsing: kernel)) { terminal.status("preparing: \($0)") }
                prepared = try await LabPreparation(context: context).prepare(
                    topologyFile: topologyPath, kernel: resolved, recipe: try context.projectFiles.recipe(named: "default"),
                    progress: { terminal.status("preparing: \($0)") })
            } catch {
                terminal.clearStatus()
                throw ValidationError("cannot prepare \(kernel) on \(topology): \(error)")
            }
            figures.accelerator = prepared.accelerator.accelerator.rawValue.uppercased()
            figures.acceleratorReason = prepared.accelerator.reason

            var failures: [BenchFigures.Failure] = []
            // A step's error becomes a failure row instead of ending the bench.
            func attempt<T>(_ step: String, _ body: () async throws -> T) async -> T? {
                do { return try await body() } catch {
                    failures.append(.init(step: step, reason: "\(error)"))
                    return nil
                }
            }
            figures.cell = await attempt("cell") {
                try await Self.cellPair(kernel: kernel, topology: topologyPath, runs: runs, context: context, terminal: terminal)
            }
            figures.image = await attempt("image") {
                terminal.status("image build, cold and warm")
                return try await ImageBenchmark.measure(cache: cache, kernel: prepared.kernel, recipe: try context.projectFiles.recipe(named: "default"),
                                                        features: prepared.features, repeats: 9)
            }
            figures.domainStart = await attempt("domain start") {
                terminal.status("libvirt domain start")
                let seconds = try await DomainStartLatency.measure(prepared, runs: starts, context: context, libvirt: libvirt)
                return BenchFigures.DomainStart(topology: prepared.topology.name, seconds: seconds)
            }
            figures.labStart = await attempt("lab start") {
                try await LabStartBenchmark.measure(prepared, runs: starts, context: context) { terminal.status($0) }
            }
            figures.interactive = await attempt("up, exec, down") {
                guard let executable = TrustedProject.runningExecutable else { throw ValidationError("cannot find this program's own file in /proc/self/exe") }
                return try await InteractiveBenchmark.measure(executable: executable, topology: topologyPath,
                                                              upArguments: ["--kernel", kernel, "--cache-dir", cache.path], runs: starts) { terminal.status($0) }
            }
            figures.race = await attempt("race") {
                try await Self.race(kernel: kernel, context: context, terminal: terminal)
            }
            for jobs in [1, 2] {
                if let run = await attempt("matrix --jobs \(jobs), cold", {
                    try await Self.matrixRun(file: matrixPath, jobs: jobs, savedMachines: false, cache: cache, terminal: terminal)
                }) {
                    figures.matrix.append(run)
                }
            }
            // The first run with saved machines boots and saves what the store lacks; the
            // second is the warm figure.
            if let saving = await attempt("matrix --jobs 2, saving machines", {
                try await Self.matrixRun(file: matrixPath, jobs: 2, savedMachines: true, cache: cache, terminal: terminal)
            }), var warm = await attempt("matrix --jobs 2, warm", {
                try await Self.matrixRun(file: matrixPath, jobs: 2, savedMachines: true, cache: cache, terminal: terminal)
            }) {
                warm.savingRunSeconds = saving.seconds
                figures.matrix.append(warm)
            }
            figures.failures = failures
            terminal.clearStatus()
            figures.summarize()
            if output.json {
                print(try JSONOutput.encode(figures))
            } else {
                print(figures.table(matrixFile: matrix))
            }
            if !figures.failures.isEmpty { throw ExitCode(1) }
        }

        /// A race of every kind on nvdimm-single with the V9 stand-in (so both outcomes happen),
        /// 10 rounds each.
        static func race(kernel: String, context: LabContext, terminal: Terminal) async throws -> BenchFigures.Race {
            let topology = try context.projectFiles.folder("topologies/nvdimm-single.yaml")
            let standIn = try context.projectFiles.folder("images/modules/fsdev_dax")
            let scenario = RaceScenario(modules: [standIn + ":automatch=1"], standInSource: standIn, rounds: 10)
            let cell = ScenarioCell(kernel: kernel, topology: topology, recipe: try context.projectFiles.recipe(named: "default"), scenario: scenario,
                                    runID: "bench", cellID: "race")
            let start = context.now()
            let outcome = await cell.run(context: context) { terminal.status("race: \($0)") }
            let wall = context.seconds(since: start)
            guard let report = outcome.outcome.detail.report(as: RaceReport.self), !report.rounds.isEmpty else {
                throw ValidationError("the bench race ran no round: \(outcome.outcome.error ?? outcome.verdict.rawValue)")
            }
            return BenchFigures.Race(topology: "nvdimm-single", rounds: report.rounds.count, roundSeconds: report.rounds.map(\.seconds).reduce(0, +),
                                     cellSeconds: wall, failures: report.rounds.filter { $0.verdict.isFailure }.count)
        }

        /// The same cell run by the same cell runner through libvirt (what cxllab runs) and by
        /// QEMU directly (`DirectQEMUBackend`), `runs` times: what libvirt adds to a cell.
        static func cellPair(kernel: String, topology: String, runs: Int, context: LabContext,
                             terminal: Terminal) async throws -> BenchFigures.Cell {
            var cell = BenchFigures.Cell(kernel: kernel, topology: (topology as NSString).lastPathComponent)
            let standIn = try context.projectFiles.folder("images/modules/fsdev_dax")
            /// One driver-order cell on `backend`: its wall time, outcome and agent traffic.
            func timedCell(_ backend: any LabBackend, id: String) async throws -> (seconds: Double, outcome: CellOutcome, transcript: SessionTranscript) {
                let transcript = SessionTranscript()
                var order = ScenarioCell(kernel: kernel, topology: topology, recipe: try context.projectFiles.recipe(named: "default"),
                                         scenario: DriverOrderScenario(standInSource: standIn), runID: "bench", cellID: id)
                order.transcript = transcript
                order.backend = backend
                let start = context.now()
                let outcome = await order.run(context: context)
                let seconds = context.seconds(since: start)
                if let error = outcome.outcome.error { throw ValidationError("the cell run by \(backend.name) could not run: \(error)") }
                return (seconds, outcome, transcript)
            }
            for index in 1...max(1, runs) {
                terminal.status("cell \(index)/\(runs): through cxllab")
                let cxllab = try await timedCell(LibvirtBackend(), id: "cell-\(index)")
                cell.kernelRelease = cxllab.outcome.kernel?.release ?? ""
                cell.verdict = cxllab.outcome.verdict.rawValue
                cell.cxllabSeconds.append(cxllab.seconds)
                cell.cxllabGuestWork.append(cxllab.outcome.outcome.guestSeconds)
                cell.cxllabErrorReplies = cxllab.transcript.errorReplies
                cell.orderSeconds += cxllab.outcome.outcome.cases.map(\.seconds)
                cell.requests = cxllab.transcript.requests.count

                terminal.status("cell \(index)/\(runs): QEMU directly")
                let direct = try await timedCell(DirectQEMUBackend(), id: "direct-\(index)")
                guard direct.outcome.verdict == cxllab.outcome.verdict else {
                    throw ValidationError("the cell run by QEMU directly found \(direct.outcome.verdict.rawValue), through cxllab \(cell.verdict): "
                        + "not the same work")
                }
                cell.directSeconds.append(direct.seconds)
                cell.directGuestWork.append(direct.outcome.outcome.guestSeconds)
                cell.directErrorReplies = direct.transcript.errorReplies
            }
            return cell
        }

        /// `cxllab matrix FILE --jobs N` as a child process, so its wall time and peak memory
        /// are its own; its results go to a store of their own, not the history.
        static func matrixRun(file: String, jobs: Int, savedMachines: Bool, cache: CacheDirectory, terminal: Terminal) async throws -> BenchFigures.MatrixRun {
            guard let executable = TrustedProject.runningExecutable else { throw ValidationError("cannot find this program's own file in /proc/self/exe") }
            let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("cxllab-bench-\(UUID().uuidString.prefix(8))").path
            let store = scratch + ".sqlite"
            let peakFile = scratch + ".peak"
            defer { for path in [store, store + "-wal", store + "-shm", peakFile] { unlink(path) } }
            let result = try await MeasuredProcess.run(
                executable, ["matrix", file, "--jobs", "\(jobs)", "--json", "--cache-dir", cache.path],
                environment: ["CXLLAB_RESULTS": store, PeakMemory.variable: peakFile, "CXLLAB_SAVED_MACHINES": savedMachines ? "1" : "0"],
                onErrorLine: { line in terminal.status("matrix --jobs \(jobs): \(line)") }
            )
            // 0: all passed; 1: some cell failed its checks (the default matrix's V9 stand-in
            // must). Anything else means cells could not run.
            guard result.status == 0 || result.status == 1 else {
                throw ValidationError("cxllab matrix --jobs \(jobs) exited with status \(result.status)")
            }
            let cells = try JSONDecoder().decode([CellResult].self, from: Data(result.standardOutput.utf8))
            guard let peak = (try? String(contentsOfFile: peakFile, encoding: .utf8)).flatMap({ Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }) else {
                throw ValidationError("cxllab matrix --jobs \(jobs) did not report its peak memory")
            }
            let restored = cells.filter { if case .restored = $0.outcome.labStart { true } else { false } }.count
            return BenchFigures.MatrixRun(jobs: jobs, savedMachines: savedMachines, cells: cells.count, restored: restored, seconds: result.seconds,
                                          peakResidentBytes: peak,
                                          verdicts: Dictionary(grouping: cells, by: \.verdict.rawValue).mapValues(\.count))
        }
    }
}
