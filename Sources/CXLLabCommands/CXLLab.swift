import ArgumentParser
import Foundation
import LabRuntime
import HostSupport

/// The `cxllab` command: a virtual CXL/NVDIMM lab for Linux dax driver developers.
public struct CXLLab: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "cxllab",
        abstract: "A virtual CXL and NVDIMM lab: QEMU guests through libvirt, for testing Linux dax drivers.",
        discussion: CommandHelp.discussion(
            """
            Each command's --help says what its statuses mean. `exec` passes its guest command's status through and \
            says its own errors with 255.
            """,
            exit: ExitStatus(success: "done, and every check held", failure: "a check failed: an invariant, a test, an expected result",
                             bisect: true)),
        version: "0.1.0",
        subcommands: [Doctor.self, Run.self, Race.self, Suite.self, Matrix.self, Report.self, Merge.self, Diff.self, Repro.self, Up.self, Exec.self, Console.self, List.self, Down.self, Clean.self, Kernel.self, Image.self, Topology.self, Bench.self]
    )

    public init() {}

    /// Parses, runs, and exits like `main()`, except that an interrupt being handled is let
    /// finish its teardown first.
    public static func runAndExit() async {
        // One malloc arena, not eight per core: cxllab's threads mostly wait, and each extra
        // arena keeps its own free memory resident (the default matrix at --jobs 2 peaked at
        // 69.8 MiB with two arenas, 62.9 MiB with one, in the same time).
        _ = glibcMallopt(-8 /* M_ARENA_MAX */, 1)
        // Buffers of 128 KiB and more (agent replies, console chunks, file reads) are mapped
        // on their own and unmapped when freed, and the heap's free top goes back to the
        // system past 128 KiB: glibc's default raises both thresholds after the first large
        // free, and a long matrix then keeps every transient peak resident.
        _ = glibcMallopt(-3 /* M_MMAP_THRESHOLD */, 128 << 10)
        _ = glibcMallopt(-1 /* M_TRIM_THRESHOLD */, 128 << 10)
        // The environment is read here, once: the libraries get what it says in the context.
        let environment = ProcessInfo.processInfo.environment
        var command: any ParsableCommand
        do {
            command = try parseAsRoot()
        } catch {
            exitAfterParsing(error)
        }
        do {
            if let contextCommand = command as? any ContextCommand {
                try await contextCommand.run(in: context(for: contextCommand, environment: environment))
            } else if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            InterruptTeardown.waitIfInterrupted()
            PeakMemory.recordIfAsked(environment: environment)
            // argument-parser's own requests: `--help` parses as its help command, whose run
            // throws the request for help; it prints that and exits as it always does.
            if error is CleanExit || FailedCommand.isArgumentParsers(error) { exit(withError: error) }
            let failure = FailedCommand.message(for: error, in: type(of: command))
            if !failure.text.isEmpty { Terminal.standardError.line(failure.text) }
            Foundation.exit(failure.status)
        }
        InterruptTeardown.waitIfInterrupted()
        PeakMemory.recordIfAsked(environment: environment)
    }

    /// A command line that did not parse: argument-parser's message with the subcommand's
    /// usage. `exec` says it with its own status, 255, since every other one can be the guest
    /// command's.
    private static func exitAfterParsing(_ error: any Error) -> Never {
        if exitCode(for: error) != .success, CommandLine.arguments.dropFirst().first == Exec._commandName {
            let text = fullMessage(for: error)
            if !text.isEmpty { Terminal.standardError.line(text) }
            Foundation.exit(ExitStatus.execOwnError)
        }
        exit(withError: error)
    }

    /// The one lab context of this process: the settings and cache the environment and the
    /// command's `--cache-dir` give, one set of guest slots and one session registry, libvirt's
    /// system daemon, and progress on standard error's status line.
    static func context(for command: any ParsableCommand, environment: [String: String]) -> LabContext {
        let explicitCache = (command as? any CacheDirOption)?.cacheOptions.cacheDirectory
        let terminal = Terminal.standardError
        return LabContext(settings: .from(environment: environment), cache: CacheDirectory.resolve(explicit: explicitCache, environment: environment),
                          progress: { terminal.status($0) })
    }
}

/// A command run with the lab context: `runAndExit` makes it once, and it is passed down to
/// every library call that makes labs, reads the cache or the result store.
protocol ContextCommand: AsyncParsableCommand {
    func run(in context: LabContext) async throws
}

extension ContextCommand {
    /// argument-parser's own entry, for a command not started by `runAndExit`: the context
    /// is made here instead, the same way.
    func run() async throws {
        try await run(in: CXLLab.context(for: self, environment: ProcessInfo.processInfo.environment))
    }
}

/// A command that takes `--cache-dir`: its context's cache is the one it names.
protocol CacheDirOption {
    var cacheOptions: CacheOptions { get }
}

/// Options every command that touches the cache takes.
struct CacheOptions: ParsableArguments {
    @Option(name: .customLong("cache-dir"), help: "Where kernels, images and results are kept (default: $CXLLAB_CACHE or ~/.cache/cxllab).")
    var cacheDirectory: String?
}

/// `cxllab bench` measures a child `cxllab matrix`'s own peak memory: the child writes it on
/// its way out. VmHWM is the high-water mark of this program's memory alone: getrusage's
/// ru_maxrss also keeps the mark of the process image it replaced at exec (the bench itself,
/// when spawned with vfork), and wait4's adds its children, such as xz.
enum PeakMemory {
    static let variable = "CXLLAB_PEAK_MEMORY_FILE"

    static func recordIfAsked(environment: [String: String]) {
        guard let path = environment[variable], !path.isEmpty,
              let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kibibytes = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else { return }
        try? "\(kibibytes * 1024)\n".write(toFile: path, atomically: true, encoding: .utf8)
    }
}

/// glibc's mallopt(3), which Swift's Glibc module does not export.
@_silgen_name("mallopt")
private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
