import ArgumentParser
import Foundation
import HostSupport
import Kernels
import LabRuntime

extension CXLLab {
    struct Kernel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Fetch, list, show and remove the kernels labs boot.",
            discussion: CommandHelp.discussion(KernelForms.explained, exit: ExitStatus(success: "done", failure: nil)),
            subcommands: [Fetch.self, List.self, Show.self, Remove.self]
        )
    }
}

extension CXLLab.Kernel {
    struct Fetch: ContextCommand, CacheDirOption {
        static let configuration = CommandConfiguration(
            abstract: "Fetch a kernel into the cache.",
            discussion: CommandHelp.discussion(KernelForms.explained, exit: ExitStatus(success: "the kernel is in the cache", failure: nil))
        )
        @OptionGroup var cacheOptions: CacheOptions
        @OptionGroup var requested: KernelArgument

        func run(in context: LabContext) async throws {
            let reference = try KernelReference(parsing: requested.kernel)
            let store = try KernelStore(cache: context.cache)
            let terminal = Terminal.standardError
            let fetched = try await store.kernel(reference) { terminal.status($0) }
            terminal.clearStatus()
            print("\(reference) -> \(fetched.release) in \(fetched.folder)")
        }
    }

    struct List: ContextCommand, CacheDirOption {
        static let configuration = CommandConfiguration(
            abstract: "List the kernels in the cache, or with --available every Debian kernel of a series the archive holds.",
            discussion: CommandHelp.discussion("""
                --available 6.12 lists each 6.12 release in bookworm, its backports and its security updates (and trixie), \
                oldest first, with the reference that boots it: the versions to bisect across (`cxllab run ... --kernel \
                debian:6.12.107+deb12-amd64 --bisect`).
                """, exit: ExitStatus(success: "the kernels are listed", failure: nil))
        )
        @OptionGroup var cacheOptions: CacheOptions
        @Flag(help: "List what Debian's archive holds instead of the cache.") var available = false
        @Argument(help: "With --available: a kernel series such as 6.12, 6.1 or 7.3 (default: all of them).") var series: String?
        @OptionGroup var output: JSONOption
        var json: Bool { output.json }

        func validate() throws {
            guard let series else { return }
            if !available { throw ValidationError("a series is for --available (cxllab kernel list --available \(series))") }
            if series.isEmpty || !series.allSatisfy({ $0.isNumber || $0 == "." }) {
                throw ValidationError("'\(series)' is not a kernel series; give one like 6.12, 6.1 or 7.3")
            }
        }

        func run(in context: LabContext) async throws {
            if available { return try await listAvailable(cache: context.cache) }
            let kernels = try KernelStore(cache: context.cache).list()
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

        struct PackageVersion: Hashable {
            let package: String
            let version: String
        }

        /// One Debian kernel image package: the release it boots as and where it is.
        struct Available: Encodable {
            let release: String
            let version: String
            let suites: [String]
            var reference: String { "debian:" + release }
        }

        func listAvailable(cache: CacheDirectory) async throws {
            let archive = try DebianArchive(cache: cache)
            try await archive.refresh()
            let prefix = series.map { NSRegularExpression.escapedPattern(for: $0) + "[.-]" } ?? "[0-9]"
            let names = try await archive.packageNames(matching: "^linux-image-\(prefix)[^ ]*-amd64$")
            // The plain amd64 flavour: not cloud, rt or debug builds, not the unsigned twin.
            let plain = names.filter { KernelListing.isPlainRelease(String($0.dropFirst("linux-image-".count))) }
            let byVersion = Dictionary(grouping: try await archive.versions(ofAll: plain)) { PackageVersion(package: $0.package, version: $0.version) }
            var found = byVersion.map { key, rows in
                Available(release: String(key.package.dropFirst("linux-image-".count)), version: key.version, suites: Set(rows.map(\.suite)).sorted())
            }
            found.sort { KernelListing.releaseOrder($0.release, $1.release) }
            if json { print(try JSONOutput.encode(found)); return }
            if found.isEmpty {
                print("Debian's archive has no amd64 kernel of series \(series ?? "any") in \(DebianArchive.suites.joined(separator: ", ")) or bookworm-security.")
                return
            }
            let width = found.map(\.reference.count).max()! + 2
            let versionWidth = found.map(\.version.count).max()! + 2
            for kernel in found {
                print(kernel.reference.padding(toLength: width, withPad: " ", startingAt: 0)
                      + kernel.version.padding(toLength: versionWidth, withPad: " ", startingAt: 0) + kernel.suites.joined(separator: ", "))
            }
        }
    }

    struct Show: ContextCommand, CacheDirOption {
        static let configuration = CommandConfiguration(
            abstract: "Show one cached kernel, and the config options cxllab's features need that it lacks.",
            discussion: CommandHelp.discussion(exit: ExitStatus(success: "the kernel is shown", failure: nil))
        )
        @OptionGroup var cacheOptions: CacheOptions
        @OptionGroup var requested: KernelArgument
        @OptionGroup var output: JSONOption

        /// What `kernel show` says: the kernel, whether its config was kept, and what it lacks.
        struct Shown: Encodable {
            let kernel: Kernels.Kernel
            let configKept: Bool
            let missing: [ConfigRequirement]

            init(_ kernel: Kernels.Kernel) {
                self.kernel = kernel
                let config = KernelConfig(contentsOf: kernel.configPath)
                configKept = config != nil
                // The hypervisor bit's option matters only to a topology that keeps the bit.
                let all = KernelRequirements.features.subtracting([KernelRequirements.hypervisorBit])
                missing = config.map { KernelRequirements.missing(in: $0, features: all, release: kernel.release) } ?? []
            }

            var text: String {
                var lines = [("release", kernel.release), ("origin", kernel.origin), ("package", kernel.packageVersion ?? "-"),
                             ("suite", kernel.suite ?? "-"), ("image", kernel.imageSHA256), ("folder", kernel.folder)]
                    .map { $0.0.padding(toLength: 9, withPad: " ", startingAt: 0) + $0.1 }
                if let tree = kernel.buildTree { lines.append("tree     " + tree) }
                if !configKept {
                    lines.append("config   none kept; options cannot be checked before boot")
                } else if missing.isEmpty {
                    lines.append("config   has every option cxllab's features use")
                }
                for requirement in missing {
                    lines.append("config   no CONFIG_\(requirement.option) (\(requirement.feature), \(requirement.effect.rawValue)): \(requirement.why)")
                }
                return lines.joined(separator: "\n")
            }
        }

        func run(in context: LabContext) async throws {
            let shown = Shown(try cachedKernel(requested.kernel, cache: context.cache))
            print(output.json ? try JSONOutput.encode(shown) : shown.text)
        }
    }

    struct Remove: ContextCommand, CacheDirOption {
        static let configuration = CommandConfiguration(
            commandName: "rm", abstract: "Remove a cached kernel.",
            discussion: CommandHelp.discussion(exit: ExitStatus(success: "the kernel is removed", failure: nil))
        )
        @OptionGroup var cacheOptions: CacheOptions
        @OptionGroup var requested: KernelArgument

        func run(in context: LabContext) async throws {
            let found = try cachedKernel(requested.kernel, cache: context.cache)
            try KernelStore(cache: context.cache).remove(found)
            print("removed \(found.release)")
        }
    }
}

/// A kernel the cache holds, or the error that says how to fetch it.
private func cachedKernel(_ text: String, cache: CacheDirectory) throws -> Kernels.Kernel {
    let reference = try KernelReference(parsing: text)
    guard let found = try KernelStore(cache: cache).cached(reference) else { throw KernelStoreError.notCached(text) }
    return found
}

/// Kernel releases as Debian names them, for listing.
enum KernelListing {
    /// `6.12.95+deb12-amd64`, `6.1.0-57-amd64`: not `-cloud-amd64`, `-rt-amd64` or `-amd64-dbg`.
    static func isPlainRelease(_ release: String) -> Bool {
        release.hasSuffix("-amd64") && !release.contains("-cloud-") && !release.contains("-rt-") && !release.hasSuffix("-unsigned")
            && release.first?.isNumber == true
    }

    /// Numeric order of the release's numbers (6.12.95 before 6.12.107).
    static func releaseOrder(_ a: String, _ b: String) -> Bool {
        func numbers(_ release: String) -> [Int] { release.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) } }
        return numbers(a).lexicographicallyPrecedes(numbers(b))
    }
}
