import ArgumentParser
import Foundation
import GuestImage

extension CXLLab {
    struct Kernel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Fetch, list, show and remove the kernels labs boot.",
            discussion: """
                Kernels are named debian:<release> (a Debian kernel by its uname -r), \
                debian:bookworm, debian:bookworm-backports or debian:trixie-backports (the newest \
                kernel of that suite).
                """,
            subcommands: [Fetch.self, List.self, Show.self, Remove.self]
        )
    }
}

extension CXLLab.Kernel {
    struct Fetch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Fetch a kernel into the cache.")
        @OptionGroup var cacheOptions: CacheOptions
        @Argument(help: "The kernel, e.g. debian:bookworm-backports.") var kernel: String

        func run() async throws {
            let reference = try KernelReference(parsing: kernel)
            let store = try KernelStore(cache: cacheOptions.cache)
            let terminal = Terminal.standardError
            let fetched = try await store.kernel(reference) { terminal.status($0) }
            terminal.clearStatus()
            print("\(reference) -> \(fetched.release) in \(fetched.folder)")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the kernels in the cache.")
        @OptionGroup var cacheOptions: CacheOptions
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let kernels = try KernelStore(cache: cacheOptions.cache).list()
            if json { print(try JSONOutput.encode(kernels)); return }
            if kernels.isEmpty {
                print("No kernels cached yet; fetch one with `cxllab kernel fetch debian:bookworm-backports`.")
                return
            }
            let width = kernels.map(\.release.count).max()! + 2
            for kernel in kernels {
                let from = [kernel.suite, kernel.packageVersion].compactMap { $0 }.joined(separator: " ")
                print(kernel.release.padding(toLength: width, withPad: " ", startingAt: 0) + (from.isEmpty ? kernel.origin : from))
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one cached kernel.")
        @OptionGroup var cacheOptions: CacheOptions
        @Argument(help: "The kernel.") var kernel: String

        func run() async throws {
            let found = try cachedKernel(kernel, cache: cacheOptions)
            print(try JSONOutput.encode(found))
            guard let config = KernelConfig(contentsOf: found.configPath) else {
                print("config: none kept; options cannot be checked before boot")
                return
            }
            let all: Set<String> = ["nvdimm", "legacy-pmem", "cxl", "kmem", "fsdev"]
            let missing = KernelRequirements.missing(in: config, features: all, release: found.release)
            if missing.isEmpty { print("config: has every option cxllab's features use") }
            for requirement in missing {
                print("config: no CONFIG_\(requirement.option) (\(requirement.feature), \(requirement.effect == .blocks ? "blocks" : "limits")): \(requirement.why)")
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove a cached kernel.")
        @OptionGroup var cacheOptions: CacheOptions
        @Argument(help: "The kernel.") var kernel: String

        func run() async throws {
            let found = try cachedKernel(kernel, cache: cacheOptions)
            try KernelStore(cache: cacheOptions.cache).remove(found)
            print("removed \(found.release)")
        }
    }
}

/// A kernel the cache holds, or the error that says how to fetch it.
private func cachedKernel(_ text: String, cache: CacheOptions) throws -> GuestImage.Kernel {
    let reference = try KernelReference(parsing: text)
    guard let found = try KernelStore(cache: cache.cache).cached(reference) else { throw KernelStoreError.notCached(text) }
    return found
}
