import AgentProtocol
import ArgumentParser
import Foundation
import GuestImage
import HostSupport
import Lab
import Libvirt

extension CXLLab {
    struct Bench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure cxllab against the tools underneath it.",
            subcommands: [Boot.self, MatrixThroughput.self]
        )
    }
}

extension CXLLab.Bench {
    /// The same matrix twice in one invocation, one cell at a time and then two at a time.
    struct MatrixThroughput: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "matrix", abstract: "Matrix throughput: cells per minute at --jobs 1 and --jobs 2.")
        @OptionGroup var cacheOptions: CacheOptions
        @Argument(help: "The matrix file.") var file = "matrices/default.yaml"
        @Flag(help: "Print JSON.") var json = false

        struct Figures: Codable {
            let cells: Int
            let accelerator: String
            let secondsJobs1: Double
            let secondsJobs2: Double
            let cellsPerMinuteJobs1: Double
            let cellsPerMinuteJobs2: Double
            let speedUp: Double
        }

        func run() async throws {
            InterruptTeardown.install()
            let terminal = Terminal.standardError
            let planned = try await CXLLab.Matrix.plan(file: file, cache: cacheOptions.cache, terminal: terminal)
            var seconds: [Int: Double] = [:]
            for jobs in [1, 2] {
                let runner = MatrixRunner(cache: cacheOptions.cache, standInSource: planned.standIn, recipe: try ProjectFiles.recipe(named: "default"),
                                          jobs: jobs, runID: "bench-jobs\(jobs)-" + CXLLab.Matrix.newRunID(), projectRoot: planned.projectRoot)
                let clock = ContinuousClock()
                let start = clock.now
                let results = try await runner.run(planned.cells) { event in
                    if case .finished(let result) = event { terminal.status("--jobs \(jobs): \(result.cell.label) \(result.verdict)") }
                }
                guard results.count == planned.cells.count else { throw ValidationError("only \(results.count) of \(planned.cells.count) cells finished") }
                seconds[jobs] = (clock.now - start).seconds
            }
            terminal.clearStatus()
            let count = Double(planned.cells.count)
            let figures = Figures(cells: planned.cells.count, accelerator: "TCG", secondsJobs1: seconds[1]!, secondsJobs2: seconds[2]!,
                                  cellsPerMinuteJobs1: count / seconds[1]! * 60, cellsPerMinuteJobs2: count / seconds[2]! * 60,
                                  speedUp: seconds[1]! / seconds[2]!)
            if json { print(try JSONOutput.encode(figures)); return }
            print(String(format: """
                matrix throughput, %d cells of %@, %@
                  --jobs 1   %6.1f s   %5.2f cells/min
                  --jobs 2   %6.1f s   %5.2f cells/min
                  speed-up   %.2fx
                """, figures.cells, file, figures.accelerator, figures.secondsJobs1, figures.cellsPerMinuteJobs1,
                figures.secondsJobs2, figures.cellsPerMinuteJobs2, figures.speedUp))
        }
    }

    /// Boot to a working agent, side by side: QEMU started directly with the same kernel,
    /// image, memory, vCPUs, NVDIMM and agent channel, against the same guest through
    /// libvirt and a LabSession. Both end at the agent's handshake.
    struct Boot: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Boot-to-handshake: raw QEMU against cxllab.")
        @OptionGroup var cacheOptions: CacheOptions
        @Option(help: "The kernel.") var kernel = "debian:bookworm-backports"
        @Option(help: "Runs of each.") var runs = 3
        @Flag(help: "Print JSON.") var json = false

        struct Figures: Codable {
            let kernel: String
            let accelerator: String
            let rawSeconds: [Double]
            let cxllabSeconds: [Double]
            let rawMedian: Double
            let cxllabMedian: Double
            let ratio: Double
        }

        func run() async throws {
            InterruptTeardown.install()
            let terminal = Terminal.standardError
            let topology = try ProjectFiles.folder("topologies/nvdimm-single.yaml")
            let prepared = try await LabPreparation(cache: cacheOptions.cache).prepare(
                topologyFile: topology, kernel: try KernelReference(parsing: kernel), recipe: try ProjectFiles.recipe(named: "default"),
                progress: { terminal.status($0) }
            )
            var raw: [Double] = []
            var lab: [Double] = []
            for index in 0..<max(1, runs) {
                terminal.status("run \(index + 1)/\(runs): raw QEMU")
                raw.append(try await rawBoot(prepared))
                terminal.status("run \(index + 1)/\(runs): cxllab")
                let clock = ContinuousClock()
                let start = clock.now
                let session = try await LabSession.start(
                    LabRequest(name: "bench-\(UUID().uuidString.prefix(6).lowercased())", topology: prepared.topology, kernel: prepared.kernel,
                               image: prepared.image, runID: "bench", cellID: "boot"),
                    libvirt: try Connection()
                )
                lab.append((clock.now - start).seconds)
                await session.teardown()
            }
            terminal.clearStatus()
            let median: ([Double]) -> Double = { $0.sorted()[$0.count / 2] }
            let figures = Figures(kernel: prepared.kernel.release, accelerator: "TCG", rawSeconds: raw, cxllabSeconds: lab,
                                  rawMedian: median(raw), cxllabMedian: median(lab), ratio: median(lab) / median(raw))
            if json { print(try JSONOutput.encode(figures)); return }
            print("""
                boot to agent handshake, \(figures.kernel), nvdimm-single, \(figures.accelerator)
                  raw QEMU   median \(String(format: "%6.2f s", figures.rawMedian))   runs \(raw.map { String(format: "%.2f", $0) }.joined(separator: " "))
                  cxllab     median \(String(format: "%6.2f s", figures.cxllabMedian))   runs \(lab.map { String(format: "%.2f", $0) }.joined(separator: " "))
                  ratio      \(String(format: "%.3f", figures.ratio))  (cxllab / raw; includes copying the lab's files and libvirt's domain start)
                """)
        }

        func rawBoot(_ prepared: PreparedLab) async throws -> Double {
            let folder = LabPaths.labsRoot + "/bench-raw-\(UUID().uuidString.prefix(6).lowercased())"
            let fm = FileManager.default
            try fm.createDirectory(atPath: folder, withIntermediateDirectories: true)
            defer { try? fm.removeItem(atPath: folder) }
            let socket = folder + "/agent.sock"
            let nvdimm = prepared.topology.nvdimms.first
            var arguments = [
                "-accel", "tcg", "-machine", "q35,nvdimm=on", "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
                "-m", "\(prepared.topology.machine.memory >> 20)M,slots=1,maxmem=\((prepared.topology.machine.memory >> 20) * 2)M",
                "-smp", "\(prepared.topology.machine.vcpus)",
                "-kernel", prepared.kernel.imagePath, "-initrd", prepared.image.path,
                "-append", GuestCommandLine.quiet.joined(separator: " "),
                "-serial", "file:\(folder)/console.log",
                "-chardev", "socket,id=agent,path=\(socket),server=on,wait=off",
                "-device", "virtio-serial-pci", "-device", "virtserialport,chardev=agent,name=\(AgentProtocol.channelName)",
            ]
            if let nvdimm {
                let backing = folder + "/nvdimm.img"
                _ = fm.createFile(atPath: backing, contents: nil)
                try FileHandle(forWritingAtPath: backing)?.truncate(atOffset: nvdimm.deviceSize)
                arguments += ["-object", "memory-backend-file,id=nv0,share=on,mem-path=\(backing),size=\(nvdimm.deviceSize)",
                              "-device", "nvdimm,memdev=nv0,id=nvdimm0,label-size=\(nvdimm.labelSize)"]
            }
            let clock = ContinuousClock()
            let start = clock.now
            let qemu = Task { try await ProcessRunner.run("qemu-system-x86_64", arguments, timeout: .seconds(300)) }
            defer { qemu.cancel() }
            // QEMU creates its socket before the guest runs; the bench waits for it in short
            // steps (a benchmark's only poll: there is no event for a socket appearing).
            var agent: AgentConnection?
            while agent == nil {
                agent = try? AgentConnection(socketPath: socket)
                if agent == nil {
                    if clock.now - start > .seconds(30) { throw ValidationError("raw QEMU did not create its agent socket") }
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
            _ = try await agent!.handshake(deadline: .seconds(120))
            let seconds = (clock.now - start).seconds
            agent!.close()
            return seconds
        }
    }
}
