import ArgumentParser
import Lab
import HostSupport

/// The `cxllab` command: a virtual CXL/NVDIMM lab for Linux dax driver developers.
public struct CXLLab: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "cxllab",
        abstract: "A virtual CXL and NVDIMM lab: QEMU guests through libvirt, for testing Linux dax drivers.",
        version: "0.1.0",
        subcommands: [Doctor.self, Run.self, Matrix.self, Report.self, Merge.self, Diff.self, Repro.self, Up.self, Exec.self, Console.self, List.self, Down.self, Clean.self, Kernel.self, Image.self, Topology.self, Bench.self]
    )

    public init() {}

    /// Parses, runs, and exits like `main()`, except that an interrupt being handled is let
    /// finish its teardown first.
    public static func runAndExit() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            InterruptTeardown.waitIfInterrupted()
            exit(withError: error)
        }
        InterruptTeardown.waitIfInterrupted()
    }
}

/// Options every command that touches the cache takes.
struct CacheOptions: ParsableArguments {
    @Option(name: .customLong("cache-dir"), help: "Where kernels, images and results are kept (default: $CXLLAB_CACHE or ~/.cache/cxllab).")
    var cacheDirectory: String?

    var cache: CacheDirectory { CacheDirectory.resolve(explicit: cacheDirectory) }
}
