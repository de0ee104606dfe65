import ArgumentParser
import HostSupport

/// The `cxllab` command: a virtual CXL/NVDIMM lab for Linux dax driver developers.
public struct CXLLab: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "cxllab",
        abstract: "A virtual CXL and NVDIMM lab: QEMU guests through libvirt, for testing Linux dax drivers.",
        version: "0.1.0",
        subcommands: [Doctor.self, Kernel.self, Image.self]
    )

    public init() {}
}

/// Options every command that touches the cache takes.
struct CacheOptions: ParsableArguments {
    @Option(name: .customLong("cache-dir"), help: "Where kernels, images and results are kept (default: $CXLLAB_CACHE or ~/.cache/cxllab).")
    var cacheDirectory: String?

    var cache: CacheDirectory { CacheDirectory.resolve(explicit: cacheDirectory) }
}
