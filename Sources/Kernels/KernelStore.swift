import Foundation
import HostSupport

/// A kernel ready to boot: its image, its config, and its modules with modules.dep.
public struct Kernel: Sendable, Codable, Hashable {
    public let release: String
    /// Where it came from, as the user would name it again (`debian:6.12.95+deb12-amd64`).
    public let origin: String
    /// The Debian package version, for Debian kernels.
    public let packageVersion: String?
    public let suite: String?
    public let imageSHA256: String
    /// For `build:` and `make:` kernels, the tree modules are built against.
    public var buildTree: String? = nil
    /// For `make:` kernels, the build this image came from: its digest and times.
    public var treeBuild: TreeBuildRecord? = nil
    /// The folder the store keeps it in.
    public var folder: String

    public var imagePath: String { folder + "/vmlinuz" }
    public var configPath: String { folder + "/config" }
    /// The root under which `lib/modules/<release>` lies (what depmod -b and modprobe -d take).
    public var modulesRoot: String { folder + "/modules" }
    public var modulesFolder: String { modulesRoot + "/lib/modules/" + release }
}

public enum KernelStoreError: Error, Sendable, CustomStringConvertible {
    case unknownDebianRelease(String, available: [String])
    case noKernelInSuite(String)
    case packageLayout(String)
    case notCached(String)
    case damaged(release: String, file: String)

    public var description: String {
        switch self {
        case .unknownDebianRelease(let release, let available):
            let list = available.isEmpty ? "none found" : available.joined(separator: ", ")
            // Said first: the list is long (about 200 releases).
            let guess = Spelling.nearest(to: release, in: available).map { "Did you mean debian:\($0)? " } ?? ""
            return "Debian has no kernel \(release) in \(DebianArchive.suites.joined(separator: ", ")). \(guess)"
                + "Available: \(list). Or name a suite: debian:bookworm, debian:bookworm-backports, debian:trixie-backports"
        case .noKernelInSuite(let suite): return "Debian's \(suite) suite has no linux-image-amd64 package"
        case .packageLayout(let why): return "unexpected kernel package layout: \(why)"
        case .notCached(let name): return "no kernel \(name) in the cache; fetch it with `cxllab kernel fetch \(name)`"
        case .damaged(let release, let file):
            return "cached kernel \(release) is damaged: \(file) no longer has the hash recorded when it was extracted"
        }
    }
}

/// The kernels cxllab has fetched or imported, one folder each under `<cache>/kernels`.
public struct KernelStore: Sendable {
    public let cache: CacheDirectory
    public let root: String

    public init(cache: CacheDirectory) throws {
        self.cache = cache
        self.root = try cache.folder("kernels")
    }

    /// Every kernel in the store, newest release first.
    public func list() -> [Kernel] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        return names.filter { !$0.hasPrefix(".") }.compactMap { load(folder: root + "/" + $0) }
            .sorted { $0.release.compare($1.release, options: .numeric) == .orderedDescending }
    }

    func load(folder: String) -> Kernel? {
        guard let data = FileManager.default.contents(atPath: folder + "/kernel.json"),
              var kernel = try? JSONDecoder().decode(Kernel.self, from: data) else { return nil }
        kernel.folder = folder
        return kernel
    }

    /// The cached kernel for a reference, or nil. Suite aliases resolve to what was fetched
    /// last for that suite.
    public func cached(_ reference: KernelReference) -> Kernel? {
        switch reference {
        case .debianRelease(let release):
            return load(folder: root + "/" + release)
        case .debianSuite(let suite):
            guard let release = try? String(contentsOfFile: root + "/.suite-" + suite, encoding: .utf8) else { return nil }
            return load(folder: root + "/" + release.trimmingCharacters(in: .whitespacesAndNewlines))
        case .buildTree, .madeTree, .files:
            return load(folder: root + "/" + FileDigest.sha256(of: Data(reference.description.utf8)).prefix(16))
        }
    }

    /// Returns the kernel for `reference`, fetching it when the cache lacks it, and again when
    /// its cached image no longer has the hash it was extracted with.
    public func kernel(_ reference: KernelReference, progress: @escaping @Sendable (String) -> Void = { _ in }) async throws -> Kernel {
        let found = try await lookup(reference, progress: progress)
        do {
            try KernelIntegrity.checkImage(found)
            return found
        } catch KernelStoreError.damaged(_, let file) {
            return try await refetch(found, reference: reference, damaged: file, progress: progress)
        }
    }

    /// Throws the damaged kernel away and fetches (or imports) it again.
    public func refetch(_ damaged: Kernel, reference: KernelReference, damaged file: String,
                        progress: @escaping @Sendable (String) -> Void = { _ in }) async throws -> Kernel {
        progress("cached kernel \(damaged.release) is damaged (\(file) changed since it was extracted); fetching it again")
        // Under the release's lock, so a concurrent fetch of it waits and then finds the new one.
        try await FileLock.withLock(root + "/.lock-" + damaged.release, onWait: progress) {
            let aside = self.root + "/.damaged-\(UUID().uuidString.prefix(8))"
            if FileManager.default.fileExists(atPath: damaged.folder) {
                try FileManager.default.moveItem(atPath: damaged.folder, toPath: aside)
                try? FileManager.default.removeItem(atPath: aside)
            }
        }
        KernelIntegrity.forget(damaged)
        let fresh = try await lookup(reference, progress: progress)
        try KernelIntegrity.checkImage(fresh)
        return fresh
    }

    private func lookup(_ reference: KernelReference, progress: @escaping @Sendable (String) -> Void) async throws -> Kernel {
        switch reference {
        case .debianRelease:
            if let kernel = cached(reference) { return kernel }
            return try await fetchDebian(reference, progress: progress)
        case .debianSuite(let alias):
            // A suite's newest kernel is looked up again once a day, like the package lists.
            let marker = root + "/.suite-" + alias
            let age = (try? FileManager.default.attributesOfItem(atPath: marker)[.modificationDate] as? Date).map { -$0.timeIntervalSinceNow }
            if let age, age < 24 * 3600, let kernel = cached(reference) { return kernel }
            return try await fetchDebian(reference, progress: progress)
        case .buildTree, .madeTree, .files:
            return try await importKernel(reference, progress: progress)
        }
    }

    /// Fetches a Debian kernel through the private apt configuration, extracts it, and runs
    /// depmod over its modules. A cached kernel of the same release is reused.
    public func fetchDebian(_ reference: KernelReference, progress: @escaping @Sendable (String) -> Void = { _ in }) async throws -> Kernel {
        let archive = try DebianArchive(cache: cache)
        progress("reading Debian's package lists")
        try await archive.refresh()
        let (release, suite) = try await resolve(reference, in: archive)
        // One fetch per release at a time, across tasks and processes; the second finds the
        // first one's result.
        let kernel = try await FileLock.withLock(root + "/.lock-" + release, onWait: progress) {
            try await self.fetchLocked(release: release, suite: suite, archive: archive, progress: progress)
        }
        if case .debianSuite(let alias) = reference { try remember(alias: alias, release: release) }
        return kernel
    }

    private func fetchLocked(release: String, suite: String?, archive: DebianArchive,
                             progress: @escaping @Sendable (String) -> Void) async throws -> Kernel {
        if let kernel = load(folder: root + "/" + release) { return kernel }
        // A name some packages only provide (`linux-image-6.12`) gives a provider's record:
        // not a release. Without this check `debian:6.12` downloaded three flavours of a kernel
        // and then failed on its layout.
        guard let image = try await archive.record(of: "linux-image-\(release)"), image["Package"] == "linux-image-\(release)" else {
            throw KernelStoreError.unknownDebianRelease(release, available: try await availableReleases(in: archive))
        }
        let version = image["Version"] ?? ""
        // Newer kernels split the image package into linux-binary (vmlinuz) and linux-modules.
        let depends = dependencyNames(image["Depends"] ?? "")
        let split = depends.filter { ["linux-binary-\(release)", "linux-modules-\(release)", "linux-base-\(release)"].contains($0) }
        let packages = (split.isEmpty ? ["linux-image-\(release)"] : split).map { "\($0)=\(version)" }

        let staging = root + "/.staging-\(release)-\(UUID().uuidString.prefix(8))"
        let fm = FileManager.default
        try? fm.removeItem(atPath: staging)
        defer { try? fm.removeItem(atPath: staging) }
        progress("downloading \(packages.joined(separator: ", "))")
        let debs = try await archive.download(packages, into: staging + "/debs", progress: progress)
        let unpacked = staging + "/unpacked"
        for deb in debs {
            progress("extracting \((deb as NSString).lastPathComponent)")
            try await ProcessRunner.check("dpkg-deb", ["-x", deb, unpacked], timeout: .seconds(600), context: "could not extract \(deb)")
        }
        let kernelFolder = staging + "/kernel"
        try fm.createDirectory(atPath: kernelFolder + "/modules/lib/modules", withIntermediateDirectories: true)
        let modules = [unpacked + "/lib/modules/\(release)", unpacked + "/usr/lib/modules/\(release)"]
            .first { fm.fileExists(atPath: $0) }
        guard let modules else { throw KernelStoreError.packageLayout("no lib/modules/\(release) in \(packages.joined(separator: " "))") }
        // linux-image puts vmlinuz and config in /boot; linux-binary and linux-modules put them
        // beside the modules.
        guard let vmlinuz = [unpacked + "/boot/vmlinuz-\(release)", modules + "/vmlinuz"].first(where: fm.fileExists) else {
            throw KernelStoreError.packageLayout("\(packages.joined(separator: " ")) has no vmlinuz for \(release)")
        }
        try fm.moveItem(atPath: vmlinuz, toPath: kernelFolder + "/vmlinuz")
        if let config = [unpacked + "/boot/config-\(release)", modules + "/config"].first(where: fm.fileExists) {
            try fm.moveItem(atPath: config, toPath: kernelFolder + "/config")
        }
        try fm.moveItem(atPath: modules, toPath: kernelFolder + "/modules/lib/modules/\(release)")
        progress("running depmod")
        try await ProcessRunner.check(
            "depmod", ["-b", kernelFolder + "/modules", release], timeout: .seconds(120), context: "depmod failed for \(release)"
        )
        progress("recording the hashes of its modules")
        try KernelIntegrity.writeManifest(modulesFolder: kernelFolder + "/modules/lib/modules/\(release)", into: kernelFolder)
        let kernel = Kernel(
            release: release, origin: "debian:\(release)", packageVersion: version, suite: suite,
            imageSHA256: try FileDigest.sha256(ofFile: kernelFolder + "/vmlinuz"), folder: root + "/" + release
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(kernel).write(to: URL(fileURLWithPath: kernelFolder + "/kernel.json"))
        try fm.moveItem(atPath: kernelFolder, toPath: kernel.folder)
        return kernel
    }

    private func remember(alias: String, release: String) throws {
        try release.write(toFile: root + "/.suite-" + alias, atomically: true, encoding: .utf8)
    }

    /// Removes a cached kernel; returns false when there was none.
    public func remove(_ kernel: Kernel) throws {
        try FileManager.default.removeItem(atPath: kernel.folder)
    }

    /// The suites an alias stands for: bookworm's newest kernels may be in its security suite.
    public static func suites(for alias: String) -> [String] {
        alias == "bookworm" ? ["bookworm", "bookworm-updates", "bookworm-security"] : [alias]
    }

    func resolve(_ reference: KernelReference, in archive: DebianArchive) async throws -> (release: String, suite: String?) {
        switch reference {
        case .debianRelease(let release):
            return (release, nil)
        case .debianSuite(let alias):
            let wanted = Self.suites(for: alias)
            let rows = try await archive.versions(of: "linux-image-amd64").filter { wanted.contains($0.suite) }
            // madison lists versions newest first.
            guard let newest = rows.first,
                  let record = try await archive.record(of: "linux-image-amd64", version: newest.version),
                  let image = dependencyNames(record["Depends"] ?? "").first(where: { $0.hasPrefix("linux-image-") })
            else { throw KernelStoreError.noKernelInSuite(alias) }
            return (String(image.dropFirst("linux-image-".count)), newest.suite)
        case .buildTree, .madeTree, .files:
            throw KernelStoreError.packageLayout("\(reference) is not a Debian kernel")
        }
    }

    func availableReleases(in archive: DebianArchive) async throws -> [String] {
        try await archive.packageNames(matching: "^linux-image-[0-9][^ ]*-amd64$")
            .map { String($0.dropFirst("linux-image-".count)) }
            .sorted { $0.compare($1, options: .numeric) == .orderedDescending }
    }
}
