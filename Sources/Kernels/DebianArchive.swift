import Foundation
import HostSupport

/// Debian's archive seen through a private apt configuration kept in the cache: it reuses the
/// mirrors this host is configured with, adds the suites cxllab needs (backports, trixie), and
/// never touches the system's own apt sources or state.
public struct DebianArchive: Sendable {
    /// The suites cxllab reads kernels and guest tools from.
    public static let suites = ["bookworm", "bookworm-updates", "bookworm-backports", "trixie", "trixie-backports"]
    public static let keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
    public static let defaultMirror = "http://deb.debian.org/debian"

    public let root: String
    public let sources: [AptSource]

    public init(cache: CacheDirectory, hostSources: [AptSource] = AptSourcesReader.hostSources()) throws {
        self.root = try cache.folder("apt")
        self.sources = Self.privateSources(from: hostSources)
    }

    /// The archive's source packages of `suites`, in an apt root of their own (`deb-src`
    /// lines signed by Debian's keyring), so the binary lists every lab reads stay as small
    /// as they are.
    public init(sourcesOf suites: [String], cache: CacheDirectory, hostSources: [AptSource] = AptSourcesReader.hostSources()) throws {
        self.root = try cache.folder("apt-src")
        let mirror = Self.privateSources(from: hostSources).first?.uri ?? Self.defaultMirror
        self.sources = [AptSource(uri: mirror, suites: suites, components: ["main"], signedBy: Self.keyring, type: "deb-src")]
    }

    /// The host's Debian mirror serves every suite cxllab adds; its security mirror, when it has
    /// one, serves bookworm-security (where bookworm's newest kernels are).
    static func privateSources(from host: [AptSource]) -> [AptSource] {
        let debian = host.filter { !$0.suites.isEmpty && $0.suites.allSatisfy(isDebianSuite) }
        let main = debian.first { source in source.suites.contains { !$0.hasSuffix("-security") } }?.uri ?? defaultMirror
        var result = [AptSource(uri: main, suites: suites, components: ["main"], signedBy: keyring)]
        if let security = debian.first(where: { $0.suites.contains("bookworm-security") }) {
            result.append(AptSource(uri: security.uri, suites: ["bookworm-security"], components: ["main"], signedBy: keyring))
        }
        return result
    }

    private static func isDebianSuite(_ suite: String) -> Bool {
        let codename = suite.split(separator: "-").first.map(String.init) ?? suite
        return ["bullseye", "bookworm", "trixie", "forky", "sid", "stable", "testing", "unstable"].contains(codename)
    }

    public var options: [String] {
        [
            "-o", "Dir::Etc::SourceList=\(root)/sources.list",
            "-o", "Dir::Etc::SourceParts=\(root)/sources.list.d",
            "-o", "Dir::Etc::Preferences=\(root)/preferences",
            "-o", "Dir::Etc::PreferencesParts=\(root)/preferences.d",
            "-o", "Dir::State::Lists=\(root)/lists",
            "-o", "Dir::State::status=\(root)/status",
            "-o", "Dir::Cache=\(root)/cache",
            "-o", "Dir::Cache::archives=\(root)/archives",
            "-o", "Debug::NoLocking=1",
            "-o", "APT::Sandbox::User=root",
            "-o", "Acquire::Languages=none",
            "-o", "APT::Get::List-Cleanup=0",
        ]
    }

    /// Writes the private configuration and fetches the package lists when they are missing
    /// or older than `maxAge`.
    public func refresh(maxAge: TimeInterval = 24 * 3600, force: Bool = false) async throws {
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        // Concurrent updates of one set of lists corrupt each other: one at a time, and the
        // age is judged again once the lock is held (another process may just have updated).
        try await FileLock.withLock(root + "/.lock") {
            try await self.refreshLocked(maxAge: maxAge, force: force)
        }
    }

    private func refreshLocked(maxAge: TimeInterval, force: Bool) async throws {
        let fm = FileManager.default
        for folder in ["sources.list.d", "preferences.d", "lists/partial", "cache", "archives/partial"] {
            try fm.createDirectory(atPath: root + "/" + folder, withIntermediateDirectories: true)
        }
        let list = sources.flatMap(\.lines).joined(separator: "\n") + "\n"
        let listPath = root + "/sources.list"
        let previous = try? String(contentsOfFile: listPath, encoding: .utf8)
        if previous != list { try list.write(toFile: listPath, atomically: true, encoding: .utf8) }
        if !fm.fileExists(atPath: root + "/status") { _ = fm.createFile(atPath: root + "/status", contents: Data()) }

        let stamp = root + "/lists/.cxllab-updated"
        let age = (try? fm.attributesOfItem(atPath: stamp)[.modificationDate] as? Date).map { -$0.timeIntervalSinceNow }
        guard force || previous != list || age == nil || age! > maxAge else { return }
        try await ProcessRunner.check(
            "apt-get", options + ["-q", "update"], timeout: .seconds(300),
            context: "could not read Debian's package lists (suites \(Set(sources.flatMap(\.suites)).sorted().joined(separator: ", ")))"
        )
        _ = fm.createFile(atPath: stamp, contents: Data())
    }

    /// `apt-cache madison PACKAGE`: every version the archive has, with its suite.
    public func versions(of package: String) async throws -> [(version: String, suite: String)] {
        try await versions(ofAll: [package]).map { ($0.version, $0.suite) }
    }

    /// Every version of these packages, with its suite, from one `apt-cache madison`.
    public func versions(ofAll packages: [String]) async throws -> [(package: String, version: String, suite: String)] {
        guard !packages.isEmpty else { return [] }
        let result = try await readLocked { try await ProcessRunner.run("apt-cache", self.options + ["madison"] + packages, timeout: .seconds(120)) }
        return result.output.split(separator: "\n").compactMap { line in
            let columns = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            guard columns.count >= 3 else { return nil }
            let words = columns[2].split(separator: " ")
            guard words.count >= 2 else { return nil }
            let suite = words[1].split(separator: "/").first.map(String.init) ?? String(words[1])
            return (columns[0], columns[1], suite)
        }
    }

    /// The fields of one package's record (`apt-cache show NAME[=VERSION]`), or nil when the
    /// archive has no such package.
    public func record(of package: String, version: String? = nil) async throws -> [String: String]? {
        let name = version.map { "\(package)=\($0)" } ?? package
        let result = try await readLocked { try await ProcessRunner.run("apt-cache", self.options + ["show", "--no-all-versions", name], timeout: .seconds(60)) }
        guard result.status == 0 else { return nil }
        var fields: [String: String] = [:]
        for line in result.output.split(separator: "\n") {
            if line.isEmpty { break }
            guard !line.hasPrefix(" "), let colon = line.firstIndex(of: ":") else { continue }
            fields[String(line[..<colon])] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return fields.isEmpty ? nil : fields
    }

    /// Package names matching a regular expression (`apt-cache search --names-only`).
    public func packageNames(matching pattern: String) async throws -> [String] {
        let result = try await readLocked {
            try await ProcessRunner.run("apt-cache", self.options + ["search", "--names-only", pattern], timeout: .seconds(60))
        }
        return result.output.split(separator: "\n").compactMap { $0.split(separator: " ").first.map(String.init) }
    }

    /// Reads the lists while no update rewrites them.
    public func readLocked<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        try await FileLock.withLock(root + "/.lock", exclusive: false, body)
    }

    /// Downloads packages (`name=version` or `name`) into `folder` and returns the .deb paths.
    public func download(_ packages: [String], into folder: String, progress: @escaping @Sendable (String) -> Void = { _ in }) async throws -> [String] {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let before = Set((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [])
        // apt reports download progress as `dlstatus:<n>:<percent>:<text>` lines on its status fd.
        let names = packages.map { $0.split(separator: "=").first.map(String.init) ?? $0 }.joined(separator: ", ")
        let options = self.options
        let result = try await readLocked { try await ProcessRunner.run(
            "apt-get", options + ["-q", "-o", "APT::Status-Fd=1", "download"] + packages, currentDirectory: folder,
            timeout: .seconds(900),
            onOutputLine: { line in
                let fields = line.split(separator: ":", maxSplits: 3)
                if fields.count >= 3, fields[0] == "dlstatus", let percent = Double(fields[2]) {
                    progress(String(format: "downloading %@: %3.0f%%", names, percent))
                }
            }
        ) }
        guard result.succeeded else { throw CommandFailure(result, context: "could not download \(names)") }
        let after = (try FileManager.default.contentsOfDirectory(atPath: folder)).filter { $0.hasSuffix(".deb") }
        return after.filter { !before.contains($0) }.sorted().map { folder + "/" + $0 }
    }
}

/// Splits a Depends field into package names, dropping versions and alternatives after the first.
public func dependencyNames(_ field: String) -> [String] {
    field.split(separator: ",").compactMap { clause in
        let first = clause.split(separator: "|").first ?? clause
        return first.trimmingCharacters(in: .whitespaces).split(separator: " ").first.map(String.init)
    }
}
