import AgentProtocol
import ArgumentParser
import Foundation
import Kernels
import HostSupport
import LabRuntime
import Libvirt
import XML

extension CXLLab {
    struct Up: ContextCommand, CacheDirOption {
        static let configuration = CommandConfiguration(
            abstract: "Boot a lab and keep it running.",
            discussion: CommandHelp.discussion(
                "The lab runs until `cxllab down NAME`. Use `cxllab exec NAME -- cxl list` to work in it.",
                examples: ["cxllab up topologies/cxl-pmem-single.yaml --name lab",
                           "cxllab up topologies/nvdimm-single.yaml --extra-module nfit --json"],
                exit: ExitStatus(success: "the lab is up", failure: nil))
        )
        @OptionGroup var cacheOptions: CacheOptions
        @Argument(help: "The topology file, e.g. topologies/cxl-pmem-single.yaml.") var topology: String
        @OptionGroup var guestKernel: KernelOption<BookwormBackports>
        @OptionGroup var guestRecipe: RecipeOption<DefaultRecipe>
        @OptionGroup var guestModules: ExtraModuleOptions
        @Option(help: "The lab's name (letters, digits, - _ .; default: the topology file's name).") var name: String?
        @Flag(inversion: .prefixedNo, help: "Let `exec` run any shell command in the guest.") var shell = true
        @OptionGroup var output: JSONOption

        /// The lab's name: `--name`, or the topology file's base name.
        var labName: String { name ?? ((topology as NSString).lastPathComponent as NSString).deletingPathExtension }

        func validate() throws {
            guard LabNames.isValid(labName) else {
                throw ValidationError("'\(labName)' is not a usable lab name: give --name with letters, digits, '-', '_' and '.'")
            }
        }

        /// What `up --json` prints.
        struct Started: Encodable {
            let name: String
            let topology: String
            let kernel: String
            let accelerator: String
            let seconds: Double
            /// "booted", or "restored" from a saved machine.
            let start: String
            let shell: Bool
        }

        func run(in context: LabContext) async throws {
            InterruptTeardown.install(sessions: context.sessions)
            let terminal = Terminal.standardError
            let labName = labName
            // The cell runner every lab goes through, the lab kept running: restored from a
            // saved machine when there is one (its name then links to the copy's domain).
            let runner = CellRunner(context: context)
            let kernel = try await runner.kernel(guestKernel.kernel, progress: context.progress)
            let prepared = try await runner.prepare(topologyFile: topology, kernel: kernel, recipe: try context.projectFiles.recipe(named: guestRecipe.recipe),
                                                    needs: CellRunner.Needs(modules: guestModules.modules), progress: context.progress)
            let start = context.now()
            let identity = CellRunner.Identity(name: labName, runID: "up", cellID: labName, keep: true, shell: shell)
            let (seconds, how) = try await runner.run(prepared, as: identity, progress: context.progress) { lab in (context.seconds(since: start), lab.start.how) }.value
            terminal.clearStatus()
            let accelerator = prepared.accelerator.accelerator.rawValue.uppercased()
            if output.json {
                print(try JSONOutput.encode(Started(name: labName, topology: prepared.topology.name, kernel: prepared.kernel.release,
                                                    accelerator: accelerator, seconds: seconds, start: how, shell: shell)))
                return
            }
            print("""
                Lab \(labName) is up: \(prepared.topology.name) on \(prepared.kernel.release) under \(accelerator), agent answered in \(String(format: "%.1f s", seconds)).

                  cxllab exec \(labName) -- cxl list          CXL memory devices and regions
                  cxllab exec \(labName) -- ndctl list -RN    NVDIMM regions and namespaces
                  cxllab exec \(labName) -- daxctl list       dax devices
                  cxllab console \(labName)                   the guest's serial console
                  cxllab down \(labName)                      stop it and remove its files
                """)
        }
    }

    struct Exec: ContextCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a command in a lab's guest, streaming its output; exits with its status.",
            discussion: CommandHelp.discussion(
                """
                The command's output is passed through raw, byte for byte, as ssh passes it: what the guest \
                prints reaches your terminal, escape sequences included. (Reports and cxllab's own \
                summaries show a guest's control characters as text instead.)
                """,
                examples: ["cxllab exec mylab -- ndctl list -RN"],
                exit: ExitStatus.exec)
        )
        @Argument(help: "The lab's name.") var name: String
        @Option(help: "Seconds the command may run (1 to 86400).") var timeout = 300
        @Argument(parsing: .postTerminator, help: "The command.") var command: [String] = []

        func validate() throws {
            guard !command.isEmpty else { throw ValidationError("give the command after --, e.g. cxllab exec \(name) -- uname -r") }
            guard (1...86_400).contains(timeout) else { throw ValidationError("--timeout takes 1 to 86400 seconds, not \(timeout)") }
        }

        func run(in context: LabContext) async throws {
            let record = try LabLookup.record(name, paths: context.paths)
            let agent = try AgentConnection(socketPath: record.agentSocket)
            defer { agent.close() }
            // The lab is up: its agent's hello reply is proof enough of life (waiting for its
            // next heartbeat cost half a second on average).
            _ = try await agent.handshake(deadline: .seconds(30), waitingForLife: false)
            let output: @Sendable (String, String) -> Void = { stream, data in
                FileHandle(fileDescriptor: stream == "stderr" ? 2 : 1).write(Data(data.utf8))
            }
            let result: ToolOutcome
            if record.shell {
                result = try await agent.send(AgentCalls.Shell(command.map(shellQuoted).joined(separator: " "), timeoutSeconds: timeout, stream: true),
                                              timeout: .seconds(timeout + 30), onOutput: output)
            } else if ["ndctl", "daxctl", "cxl"].contains(command[0]) {
                result = try await agent.send(AgentCalls.RunTool(command[0], Array(command.dropFirst()), timeoutSeconds: timeout, stream: true),
                                              timeout: .seconds(timeout + 30), onOutput: output)
            } else {
                throw LabError(.input, "lab \(name) was started with --no-shell: only ndctl, daxctl and cxl can run in it; "
                               + "start it again without --no-shell to run anything else")
            }
            let status = result.status
            if status != 0 { throw ExitCode(status) }
        }
    }

    struct Console: ContextCommand {
        static let configuration = CommandConfiguration(
            abstract: "Follow a lab's serial console (the kernel's messages and init's report), until Ctrl-C.",
            discussion: CommandHelp.discussion("The console is read-only; run commands with `cxllab exec`.",
                                               exit: ExitStatus(success: "the lab stopped, or --no-follow printed what there was", failure: nil))
        )
        @Argument(help: "The lab's name.") var name: String
        @Flag(help: "Print what is there and stop instead of following.") var noFollow = false

        func run(in context: LabContext) async throws {
            let record = try LabLookup.record(name, paths: context.paths)
            let watcher = ConsoleWatcher(path: record.consoleLog)
            var printed = 0
            let libvirt = try await context.connect()
            let events = try libvirt.lifecycleEvents()
            let domainName = record.domainName
            // Printing follows the watcher's text, waking when it grows; the loop ends when
            // the domain stops (or at once with --no-follow).
            let stopped = Task {
                for await event in events where event.domainName == domainName && event.kind == .stopped { break }
                watcher.stop()
            }
            while true {
                watcher.catchUp()
                let (text, end) = watcher.output(after: printed)
                if !text.isEmpty { FileHandle.standardOutput.write(Data(text.utf8)) }
                printed = end
                if noFollow || (try? libvirt.lookupDomain(named: domainName)) == nil { break }
                // The deadline only re-checks a domain whose stop event was missed.
                await watcher.waitForGrowth(beyond: printed, deadline: .seconds(5))
            }
            watcher.stop()
            stopped.cancel()
        }
    }

    struct List: ContextCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the labs libvirt runs.",
            discussion: CommandHelp.discussion(exit: ExitStatus(success: "the labs are listed", failure: nil))
        )
        @OptionGroup var output: JSONOption

        func run(in context: LabContext) async throws {
            let labs = try LabLookup.all(libvirt: try await context.connect(), paths: context.paths)
            if output.json {
                print(try JSONOutput.encode(labs))
                return
            }
            if labs.isEmpty {
                print("No labs are running. Start one with `cxllab up topologies/nvdimm-single.yaml`.")
                return
            }
            let width = max(4, labs.map(\.name.count).max() ?? 0) + 2
            print("NAME".padding(toLength: width, withPad: " ", startingAt: 0) + "STATE     KIND   KERNEL")
            for lab in labs {
                print(lab.name.padding(toLength: width, withPad: " ", startingAt: 0)
                      + lab.state.padding(toLength: 10, withPad: " ", startingAt: 0)
                      + lab.kind.padding(toLength: 7, withPad: " ", startingAt: 0) + (lab.kernel ?? "-"))
            }
        }
    }

    struct Down: ContextCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop a lab at once and remove its files.",
            discussion: CommandHelp.discussion("""
                Only a lab cxllab started (its domain carries cxllab's metadata) is touched. A lab that another cxllab \
                process still running owns (a `cxllab run` or `matrix` in progress) is refused unless --force.
                """, exit: ExitStatus(success: "the lab is down", failure: nil))
        )
        @Argument(help: "The lab's name.") var name: String
        @Flag(help: "Take the lab down even though the cxllab process that owns it is still running.") var force = false

        func run(in context: LabContext) async throws {
            // A lab restored from a saved machine runs under its copy's domain name, linked from its own.
            let domainName = try context.paths.domainName(ofLab: name)
            let libvirt = try await context.connect()
            let found = try libvirt.lookupDomain(named: domainName)
            try LabLookup.checkDown(lab: name, domain: found, force: force, paths: context.paths)
            defer { context.paths.removeNameLink(ofLab: name, to: domainName) }
            guard let domain = found else {
                let folder = context.paths.folder(ofDomain: domainName)
                if FileManager.default.fileExists(atPath: folder + "/lab.json") {
                    try FileManager.default.removeItem(atPath: folder)
                    print("lab \(name) was not running; removed its files")
                    return
                }
                throw LabError(.notFound, "no lab named \(name); `cxllab list` shows the running ones")
            }
            // Stopped at once, not shut down: nothing in the guest outlives the lab (its memory
            // and backing files go with its folder), and a guest's own power-off under TCG
            // takes most of a second.
            if (try? domain.isActive()) == true { try domain.destroy() }
            try? FileManager.default.removeItem(atPath: context.paths.folder(ofDomain: domainName))
            print("lab \(name) is down; its files are removed")
        }
    }

    struct Clean: ContextCommand, CacheDirOption {
        static let configuration = CommandConfiguration(
            abstract: "Remove labs a killed cxllab left behind: their domains and files.",
            discussion: CommandHelp.discussion("""
                Domains of runs whose cxllab process is gone are destroyed; labs started with `up` are kept unless --all. \
                Only domains carrying cxllab's metadata and folders cxllab made are touched. Half-made cache entries an \
                interrupted cxllab left (older than an hour) are removed too. With --machines, every saved machine \
                no lab is restoring from goes as well (labs boot and save them again when next needed).
                """, exit: ExitStatus(success: "what was left is removed (or nothing was)", failure: nil))
        )
        @OptionGroup var cacheOptions: CacheOptions
        @Flag(help: "Also remove labs started with `cxllab up`.") var all = false
        @Flag(help: "Also remove the saved machines (under <cache>/machines) that no lab is restoring from.") var machines = false

        func run(in context: LabContext) async throws {
            let removed = try LabLookup.clean(includingUp: all, libvirt: try await context.connect(), paths: context.paths)
                + CacheSweep.sweep(context.cache).map { "removed \($0) (left in the cache by an interrupted cxllab)" }
                + (machines ? SavedMachines(cache: context.cache).removeUnused().map { "removed the saved machine \($0)" } : [])
            if removed.isEmpty { print("Nothing to clean.") }
            for line in removed { print(line) }
        }
    }
}
