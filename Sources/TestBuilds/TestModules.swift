import Foundation
import HostSupport
import Kernels

/// The kernel's own test modules for ndctl's suite: tools/testing/nvdimm builds nfit_test (a
/// mocked NFIT bus) with test builds of the modules it wraps; tools/testing/cxl builds
/// cxl_test (a mocked CXL topology) likewise. ndctl's tests refuse production builds of the
/// wrapped modules, so the whole set goes into the image's extra/ folder.
public enum KernelTestModules: String, Sendable, Codable, CaseIterable, Hashable {
    case nfit = "nfit_test"
    case cxl = "cxl_test"

    /// The Kbuild folder, relative to the kernel source.
    public var folder: String {
        switch self {
        case .nfit: "tools/testing/nvdimm"
        case .cxl: "tools/testing/cxl"
        }
    }

    /// Source folders the Kbuild reaches into (as ../../../drivers/...).
    var sourceFolders: [String] {
        switch self {
        case .nfit: [folder, "drivers/nvdimm", "drivers/acpi/nfit", "drivers/dax"]
        case .cxl: [folder, "drivers/cxl"]
        }
    }

    /// Include folders its sources expect from a full tree (Debian's headers lack drivers/).
    var includeFolders: [String] {
        switch self {
        case .nfit: ["drivers/nvdimm", "drivers/acpi/nfit", "drivers/dax"]
        case .cxl: ["drivers/cxl", "drivers/cxl/core"]
        }
    }

    /// The kernel options its config_check.c asserts: built as modules, and enabled.
    var requiredModules: [String] {
        switch self {
        case .nfit: ["LIBNVDIMM", "BLK_DEV_PMEM", "ND_BTT", "DEV_DAX", "DEV_DAX_PMEM"]
        case .cxl: ["CXL_BUS", "CXL_ACPI", "CXL_PMEM"]
        }
    }

    var requiredEnabled: [String] {
        switch self {
        case .nfit: ["ND_PFN"]
        case .cxl: ["CXL_REGION_INVALIDATION_TEST", "NVDIMM_SECURITY_TEST", "DEBUG_FS"]
        }
    }

    /// Options that must be modules where the kernel sets them at all: the set builds its own
    /// test build of them (nfit), which cannot replace a built-in one.
    var requiredModulesIfSet: [String] {
        switch self {
        case .nfit: ["ACPI_NFIT"]
        case .cxl: []
        }
    }

    /// What stops this set from building for a kernel of this config, in config terms.
    public func configProblems(_ config: KernelConfig) -> [String] {
        var problems: [String] = []
        for option in requiredModules where config.values[option] != "m" {
            problems.append("CONFIG_\(option)=m (this kernel: \(config.values[option] ?? "not set"))")
        }
        for option in requiredEnabled where !config.isEnabled(option) {
            problems.append("CONFIG_\(option) (this kernel: not set)")
        }
        for option in requiredModulesIfSet {
            if let value = config.values[option], value != "m" { problems.append("CONFIG_\(option)=m (this kernel: \(value))") }
        }
        return problems
    }

    /// Parses `nfit_test,cxl_test` (or `nfit,cxl`).
    public static func parse(list: String) -> [KernelTestModules]? {
        let names = list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        let sets = names.map { name in allCases.first { $0.rawValue == name || $0.rawValue == name + "_test" } }
        guard !sets.isEmpty, sets.allSatisfy({ $0 != nil }) else { return nil }
        return sets.compactMap { $0 }
    }
}

public enum TestModuleError: Error, Sendable, CustomStringConvertible {
    case configUnsuitable(set: KernelTestModules, release: String, needs: [String])
    case noSource(release: String, origin: String, folder: String)
    case buildFailed(set: KernelTestModules, release: String, log: String)

    public var description: String {
        switch self {
        case .configUnsuitable(let set, let release, let needs):
            let debian = set == .cxl ? " Debian builds CXL into its kernels (CONFIG_CXL_BUS=y), so cxl_test needs a kernel built for it: "
                + "configure one with these options, build it, and pass it as --kernel build:<tree>." : " Pass a kernel built with them as --kernel build:<tree>."
            return "\(set.rawValue) cannot be built for \(release): its config_check needs \(needs.joined(separator: ", ")).\(debian)"
        case .noSource(let release, let origin, let folder):
            return "\(origin) (\(release)) has no kernel source with \(folder) to build test modules from; "
                + "use a Debian kernel (its linux-source package is fetched) or a build tree that has tools/testing"
        case .buildFailed(let set, let release, let log):
            return "\(set.rawValue) does not build for \(release):\n\(log)"
        }
    }
}

/// Builds a kernel's test modules: from the Debian source package of exactly that kernel
/// (linux-source-X.Y at the kernel package's version) against its headers, or from a build
/// tree against itself; on this host when its kbuild runs here, else in a build root of the
/// kernel's Debian suite. Cached by the kernel's image hash and the set, like images.
public struct TestModuleBuilder: Sendable {
    static let formatVersion = "cxllab-testmodules-1"
    public let cache: CacheDirectory

    public init(cache: CacheDirectory) {
        self.cache = cache
    }

    /// The .ko files of `set` built for `kernel` (from the cache after the first time).
    public func build(_ set: KernelTestModules, for kernel: Kernel, config: KernelConfig?,
                      progress: @escaping @Sendable (String) -> Void = { _ in }) async throws -> [String] {
        if let config {
            let problems = set.configProblems(config)
            if !problems.isEmpty { throw TestModuleError.configUnsuitable(set: set, release: kernel.release, needs: problems) }
        }
        let key = FileDigest.sha256(of: Data("\(Self.formatVersion)\n\(set.rawValue)\n\(kernel.release)\n\(kernel.imageSHA256)\n".utf8))
        let output = try cache.folder("testmodules", String(key.prefix(32)))
        if let built = Self.completed(output) { return built }
        return try await FileLock.withLock(output + ".lock") {
            if let built = Self.completed(output) { return built }
            return try await self.buildLocked(set, kernel: kernel, output: output, progress: progress)
        }
    }

    static func completed(_ output: String) -> [String]? {
        guard FileManager.default.fileExists(atPath: output + "/.complete"),
              let names = try? FileManager.default.contentsOfDirectory(atPath: output).filter({ $0.hasSuffix(".ko") }), !names.isEmpty
        else { return nil }
        return names.sorted().map { output + "/" + $0 }
    }

    private func buildLocked(_ set: KernelTestModules, kernel: Kernel, output: String,
                             progress: @escaping @Sendable (String) -> Void) async throws -> [String] {
        let fm = FileManager.default
        let source = try await sourceSubset(for: kernel, set: set, progress: progress)
        let place = try await buildPlace(for: kernel, progress: progress)
        // The build works in a copy (hard links) of the subset, inside the build root when
        // there is one: kbuild writes its objects next to the sources.
        let work = place.workParent + "/\(set.rawValue)-\(UUID().uuidString.prefix(8))"
        try fm.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? fm.removeItem(atPath: work) }
        for folder in set.sourceFolders {
            guard fm.fileExists(atPath: source + "/" + folder) else {
                throw TestModuleError.noSource(release: kernel.release, origin: kernel.origin, folder: folder)
            }
            try fm.createDirectory(atPath: work + "/" + (folder as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try await ProcessRunner.check("cp", ["-al", source + "/" + folder, work + "/" + folder], timeout: .seconds(120),
                                          context: "could not copy \(folder) to \(work)")
        }
        let inside = place.guestPath(work)
        let flags = set.includeFolders.map { "-I\(inside)/\($0)" }.joined(separator: " ")
        let jobs = max(1, ProcessInfo.processInfo.activeProcessorCount)
        let arguments = ["make", "-C", place.headers, "M=\(inside)/\(set.folder)", "KCFLAGS=\(flags)",
                         "CONFIG_DEBUG_INFO_BTF_MODULES=", "-j\(jobs)", "modules"]
        progress("building \(set.rawValue) for \(kernel.release)" + (place.root.map { " in the \($0.suite) build root" } ?? ""))
        let result: ProcessResult
        if let root = place.root {
            result = try await root.run(arguments, timeout: .seconds(1800))
        } else {
            result = try await ProcessRunner.run(arguments[0], Array(arguments.dropFirst()), timeout: .seconds(1800))
        }
        guard result.succeeded else {
            let lines = (result.output + result.errorOutput).split(separator: "\n")
            let errors = lines.filter { $0.contains("error") || $0.contains("BUILD_BUG") }
            throw TestModuleError.buildFailed(set: set, release: kernel.release, log: (errors.isEmpty ? lines : errors).suffix(12).joined(separator: "\n"))
        }
        let modules = try fm.subpathsOfDirectory(atPath: work + "/" + set.folder).filter { $0.hasSuffix(".ko") }.sorted()
        for module in modules {
            let target = output + "/" + (module as NSString).lastPathComponent
            try? fm.removeItem(atPath: target)
            try fm.copyItem(atPath: work + "/" + set.folder + "/" + module, toPath: target)
        }
        _ = fm.createFile(atPath: output + "/.complete", contents: Data(modules.joined(separator: "\n").utf8))
        return Self.completed(output) ?? []
    }

    /// Where make runs: the headers (or tree) to build against, and the build root if any.
    struct BuildPlace {
        var headers: String
        var root: BuildRoot?
        var workParent: String

        /// A host path as the build sees it (inside the root, when there is one).
        func guestPath(_ host: String) -> String {
            guard let root else { return host }
            return String(host.dropFirst(root.path.count))
        }
    }

    func buildPlace(for kernel: Kernel, progress: @escaping @Sendable (String) -> Void) async throws -> BuildPlace {
        let scratch = try cache.folder("testmodules", "work")
        if let tree = kernel.buildTree { return BuildPlace(headers: tree, root: nil, workParent: scratch) }
        do {
            let headers = try await ModuleBuilder(cache: cache).buildTree(for: kernel, progress: progress)
            return BuildPlace(headers: headers, root: nil, workParent: scratch)
        } catch ModuleBuildError.kbuildIncompatible(let release, let reason) {
            // This host cannot run that kernel's kbuild: build in its own suite instead.
            guard let suite = kernel.suite else { throw ModuleBuildError.kbuildIncompatible(release: release, reason: reason) }
            return try await buildRootPlace(for: kernel, suite: BuildRoot.codename(of: suite), progress: progress)
        }
    }

    /// A build root of the kernel's suite with its compiler and kbuild's libraries, and the
    /// kernel's headers unpacked in it at their usual place.
    func buildRootPlace(for kernel: Kernel, suite: String, progress: @escaping @Sendable (String) -> Void) async throws -> BuildPlace {
        let archive = try DebianArchive(cache: cache)
        try await archive.refresh()
        let headersPackage = "linux-headers-\(kernel.release)"
        guard let record = try await archive.record(of: headersPackage, version: kernel.packageVersion) else {
            throw ModuleBuildError.noHeaders(kernel.origin)
        }
        let depends = dependencyNames(record["Depends"] ?? "")
        let kbuild = depends.first { $0.hasPrefix("linux-kbuild-") }
        let common = depends.filter { $0.hasPrefix("linux-headers-") }
        let compiler = depends.first { $0.hasPrefix("gcc-") }.map { $0.replacingOccurrences(of: "-for-host", with: "") } ?? "gcc"
        var kbuildNeeds: [String] = []
        if let kbuild, let kbuildRecord = try await archive.record(of: kbuild) {
            kbuildNeeds = dependencyNames(kbuildRecord["Depends"] ?? "").filter { $0 != "libc6" }
        }
        let root = try BuildRoot(cache: cache, suite: suite, packages: ["make", "libc6-dev", compiler] + kbuildNeeds)
        try await root.prepare(progress: progress)
        let marker = root.path + "/.headers-\(kernel.release)"
        if !FileManager.default.fileExists(atPath: marker) {
            try await FileLock.withLock(root.path + ".headers.lock") {
                if FileManager.default.fileExists(atPath: marker) { return }
                progress("unpacking \(headersPackage) into the \(suite) build root")
                let version = record["Version"] ?? ""
                let packages = ["\(headersPackage)=\(version)"] + common.map { "\($0)=\(version)" } + (kbuild.map { [$0] } ?? [])
                let folder = try cache.folder("testmodules", "debs-\(kernel.release)")
                defer { try? FileManager.default.removeItem(atPath: folder) }
                let debs = try await archive.download(packages, into: folder, progress: progress)
                try await root.unpack(debs)
                _ = FileManager.default.createFile(atPath: marker, contents: Data())
            }
        }
        let work = root.path + "/build"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        return BuildPlace(headers: "/usr/src/linux-headers-\(kernel.release)", root: root, workParent: work)
    }

    /// The folders of the kernel's source the test modules need: the build tree itself, or for
    /// a Debian kernel, those folders of its linux-source package (fetched and unpacked once;
    /// the 150 MB package is not kept).
    func sourceSubset(for kernel: Kernel, set: KernelTestModules, progress: @escaping @Sendable (String) -> Void) async throws -> String {
        if let tree = kernel.buildTree { return tree }
        guard kernel.origin.hasPrefix("debian:"), let version = kernel.packageVersion else {
            throw TestModuleError.noSource(release: kernel.release, origin: kernel.origin, folder: set.folder)
        }
        let folder = try cache.folder("kernel-sources") + "/\(kernel.release)"
        let complete = folder + "/.complete"
        if FileManager.default.fileExists(atPath: complete) { return folder }
        try await FileLock.withLock(folder + ".lock") {
            if FileManager.default.fileExists(atPath: complete) { return }
            let series = Self.series(of: version)
            let package = "linux-source-\(series)"
            let archive = try DebianArchive(cache: cache)
            try await archive.refresh()
            let staging = folder + ".staging"
            try? FileManager.default.removeItem(atPath: staging)
            defer { try? FileManager.default.removeItem(atPath: staging) }
            progress("fetching \(package) \(version) (the source of \(kernel.release))")
            let debs = try await archive.download(["\(package)=\(version)"], into: staging + "/deb", progress: progress)
            guard let deb = debs.first else { throw TestModuleError.noSource(release: kernel.release, origin: kernel.origin, folder: set.folder) }
            progress("unpacking the test module sources of \(package)")
            let tarball = "usr/src/linux-source-\(series).tar.xz"
            try await ProcessRunner.check("sh", ["-c", "dpkg-deb --fsys-tarfile \"$1\" | tar -x -C \"$2\" \"./$3\"", "sh", deb, staging, tarball],
                                          timeout: .seconds(600), context: "could not unpack \(deb)")
            let top = "linux-source-\(series)"
            let wanted = Set(KernelTestModules.allCases.flatMap(\.sourceFolders)).sorted().map { top + "/" + $0 }
            try await ProcessRunner.check("tar", ["-xJf", staging + "/" + tarball, "-C", staging] + wanted, timeout: .seconds(600),
                                          context: "could not unpack the test module sources from \(tarball)")
            try? FileManager.default.removeItem(atPath: folder)
            try FileManager.default.moveItem(atPath: staging + "/" + top, toPath: folder)
            _ = FileManager.default.createFile(atPath: complete, contents: Data("\(package) \(version)\n".utf8))
        }
        return folder
    }

    /// 6.12.95-1~bpo12+1 -> 6.12: the series in linux-source-X.Y.
    static func series(of version: String) -> String {
        let numbers = version.split(whereSeparator: { !$0.isNumber }).prefix(2)
        return numbers.joined(separator: ".")
    }
}
