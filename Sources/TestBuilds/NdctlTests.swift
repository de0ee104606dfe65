import Foundation
import GuestImage
import HostSupport
import Kernels

/// One test of a meson test suite, as `meson introspect --tests` describes it, with its paths
/// already those of the guest.
public struct SuiteTest: Sendable, Codable, Hashable {
    public var name: String
    /// The suite without the project prefix (ndctl, dax, cxl).
    public var suite: String
    public var command: [String]
    public var environment: [String: String]
    public var workingDirectory: String?
    public var timeoutSeconds: Int

    public init(name: String, suite: String, command: [String], environment: [String: String], workingDirectory: String?, timeoutSeconds: Int) {
        self.name = name
        self.suite = suite
        self.command = command
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.timeoutSeconds = timeoutSeconds
    }

    /// The interpreters meson names in front of a script it found by its shebang.
    static let shells: Set<String> = ["/bin/bash", "/usr/bin/bash", "/bin/sh", "/usr/bin/sh"]

    /// Reads `meson introspect --tests` output, moving every path under `hostRoot` to
    /// `guestRoot`. meson's suite names carry the project ("ndctl:dax"): the project goes.
    /// meson runs a test without a `workdir` in the build folder, where ndctl's scripts find the
    /// cxl tool as ./cxl/cxl; in the guest a test without one runs from / (measured: from the
    /// build folder in the initramfs, device-dax's O_DIRECT round fails at once), so `CXL`
    /// names the build's cxl in `buildFolder` (the host's path) instead.
    public static func parseIntrospection(_ data: Data, hostRoot: String, guestRoot: String, buildFolder: String) throws -> [SuiteTest] {
        guard let entries = try JSONSerialization.jsonObject(with: data) as? [[String: Any]] else {
            throw NdctlTestError.introspection("meson introspect --tests did not give a list of tests")
        }
        func move(_ text: String) -> String { text.replacingOccurrences(of: hostRoot, with: guestRoot) }
        return try entries.map { entry in
            guard let name = entry["name"] as? String, let mesonCommand = entry["cmd"] as? [String], !mesonCommand.isEmpty else {
                throw NdctlTestError.introspection("a test without a name or command in meson's list")
            }
            let suites = (entry["suite"] as? [String] ?? []).map { String($0.split(separator: ":").last ?? Substring($0)) }
            var environment = (entry["env"] as? [String: String] ?? [:]).mapValues(move)
            if environment["CXL"] == nil { environment["CXL"] = move(buildFolder + "/cxl/cxl") }
            // meson gives a script that is not executable in the tarball (cxl-*.sh) as its
            // shebang's interpreter and the script; the guest runs the script itself (the
            // payload makes .sh files executable), so the command stays under guestRoot.
            var command = mesonCommand
            if command.count >= 2, Self.shells.contains(command[0]), command[1].hasPrefix(hostRoot + "/"), command[1].hasSuffix(".sh") {
                command.removeFirst()
            }
            return SuiteTest(name: name, suite: suites.first ?? "default", command: command.map(move), environment: environment,
                             workingDirectory: (entry["workdir"] as? String).map(move),
                             timeoutSeconds: (entry["timeout"] as? Int).map { $0 > 0 ? $0 : 3600 } ?? 30)
        }
    }
}

public enum NdctlTestError: Error, Sendable, CustomStringConvertible {
    case noSource(String)
    case buildFailed(step: String, log: String)
    case introspection(String)
    case missingTool(String)

    public var description: String {
        switch self {
        case .noSource(let words): "ndctl's source could not be fetched: \(words)"
        case .buildFailed(let step, let log): "ndctl's tests do not build (\(step)):\n\(log)"
        case .introspection(let words): "ndctl's test list could not be read: \(words)"
        case .missingTool(let tool): "\(tool) is not installed; run `make setup-suite` (it installs what building ndctl's tests and running them need)"
        }
    }
}

/// ndctl's tests built once per version: the source is Debian's orig tarball of the newest
/// ndctl in the archive (trixie's 81; bookworm's source files are gone from the mirror), built
/// with meson on this host with tests and destructive tests on. The tests, their tools (the
/// build's own ndctl, daxctl and cxl) and scripts go into the guest under `guestRoot`.
public struct NdctlTestBuild: Sendable {
    public static let guestRoot = "/usr/lib/cxllab/ndctl"
    /// The build's ndctl in the guest, under the folder the agent's run_test call allows.
    public static let guestNdctl = guestRoot + "/src/build/ndctl/ndctl"
    public let version: String
    /// The host folder holding src/ and src/build/.
    public let folder: String
    public let tests: [SuiteTest]

    public var buildFolder: String { folder + "/src/build" }

    /// What goes into the image: the build's programs and libraries, and the test folder's
    /// scripts and data; ndctl, daxctl and cxl on the guest's PATH are the build's own.
    public func payload() throws -> ImagePayload {
        let fm = FileManager.default
        var files: [GuestFile] = []
        var programs: [String] = []
        let skipped = [".o", ".a", ".c", ".h", ".ninja", ".json", ".txt", ".p", ".in", ".d"]
        for relative in try fm.subpathsOfDirectory(atPath: buildFolder).sorted() {
            let path = buildFolder + "/" + relative
            guard !relative.hasPrefix("meson-"), !relative.contains("/meson-"), !skipped.contains(where: relative.hasSuffix),
                  let attributes = try? fm.attributesOfItem(atPath: path), attributes[.type] as? FileAttributeType == .typeRegular,
                  ELFFile.isELF(path) else { continue }
            files.append(GuestFile(guestPath: Self.guestRoot + "/src/build/" + relative, hostPath: path))
            programs.append(path)
        }
        let testSource = folder + "/src/test"
        var links: [String: String] = [:]
        for relative in try fm.subpathsOfDirectory(atPath: testSource).sorted() {
            let path = testSource + "/" + relative
            // dax-ext4.sh and dax-xfs.sh are links to dax.sh: they stay links.
            if let target = try? fm.destinationOfSymbolicLink(atPath: path) {
                links[Self.guestRoot + "/src/test/" + relative] = target
                continue
            }
            guard !relative.hasSuffix(".c"), !relative.hasSuffix(".h"),
                  let attributes = try? fm.attributesOfItem(atPath: path), attributes[.type] as? FileAttributeType == .typeRegular else { continue }
            let mode = (attributes[.posixPermissions] as? NSNumber)?.uint32Value ?? 0o644
            let executable = mode & 0o111 != 0 || relative.hasSuffix(".sh")
            files.append(GuestFile(guestPath: Self.guestRoot + "/src/test/" + relative, hostPath: path, mode: executable ? 0o755 : 0o644))
        }
        let build = Self.guestRoot + "/src/build"
        links.merge(["/usr/bin/ndctl": build + "/ndctl/ndctl", "/usr/bin/daxctl": build + "/daxctl/daxctl", "/usr/bin/cxl": build + "/cxl/cxl"]) { $1 }
        return ImagePayload(name: "ndctl \(version) tests", files: files, programs: programs, hostRoot: folder, guestRoot: Self.guestRoot, links: links)
    }
}

public struct NdctlTestBuilder: Sendable {
    static let formatVersion = "cxllab-ndctl-tests-1"
    static let mesonOptions = ["-Ddocs=disabled", "-Dasciidoctor=disabled", "-Dtest=enabled", "-Ddestructive=enabled", "-Dsystemd=disabled"]
    public let cache: CacheDirectory

    public init(cache: CacheDirectory) {
        self.cache = cache
    }

    /// The tests of `version` (an upstream version such as 81; nil: the newest in the archive).
    public func build(version wanted: String? = nil, progress: @escaping @Sendable (String) -> Void = { _ in }) async throws -> NdctlTestBuild {
        let archive = try DebianArchive(cache: cache)
        let version: String
        if let wanted { version = wanted } else { version = try await newestVersion(archive: archive) }
        guard version.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." }) else {
            throw NdctlTestError.noSource("'\(version)' is not an ndctl version (digits and dots, e.g. 81)")
        }
        let key = FileDigest.sha256(of: Data("\(Self.formatVersion)\n\(version)\n\(Self.mesonOptions.joined(separator: " "))\n".utf8)).prefix(12)
        let folder = try cache.folder("ndctl-tests") + "/\(version)-\(key)"
        if let built = try loaded(folder: folder, version: version) { return built }
        return try await FileLock.withLock(folder + ".lock") {
            if let built = try self.loaded(folder: folder, version: version) { return built }
            return try await self.buildLocked(version: version, folder: folder, archive: archive, progress: progress)
        }
    }

    func loaded(folder: String, version: String) throws -> NdctlTestBuild? {
        guard let data = FileManager.default.contents(atPath: folder + "/tests.json"),
              FileManager.default.fileExists(atPath: folder + "/.complete") else { return nil }
        let tests = try SuiteTest.parseIntrospection(data, hostRoot: folder, guestRoot: NdctlTestBuild.guestRoot, buildFolder: folder + "/src/build")
        return NdctlTestBuild(version: version, folder: folder, tests: tests)
    }

    func newestVersion(archive: DebianArchive) async throws -> String {
        try await archive.refresh()
        let versions = try await archive.versions(of: "ndctl").map { Self.upstream(of: $0.version) }
        guard let newest = versions.max(by: { $0.compare($1, options: .numeric) == .orderedAscending }) else {
            throw NdctlTestError.noSource("the archive has no ndctl package")
        }
        return newest
    }

    /// 1:81-1 -> 81.
    static func upstream(of version: String) -> String {
        let noEpoch = version.split(separator: ":", maxSplits: 1).last.map(String.init) ?? version
        return noEpoch.split(separator: "-").first.map(String.init) ?? noEpoch
    }

    private func buildLocked(version: String, folder: String, archive: DebianArchive,
                             progress: @escaping @Sendable (String) -> Void) async throws -> NdctlTestBuild {
        let fm = FileManager.default
        for tool in ["meson", "ninja", "apt-get"] where ExecutableLocator.find(tool) == nil { throw NdctlTestError.missingTool(tool) }
        // The source comes through apt's signed chain (the Sources index's SHA-256), checked
        // again before this build: meson and ninja run what it holds, as root.
        let tarball = try await verifiedOrigTarball(version: version, progress: progress)
        try? fm.removeItem(atPath: folder)
        try fm.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var done = false
        defer { if !done { try? fm.removeItem(atPath: folder) } }
        try fm.createDirectory(atPath: folder + "/src", withIntermediateDirectories: true)
        try await ProcessRunner.check("tar", ["-xzf", tarball, "-C", folder + "/src", "--strip-components=1"], timeout: .seconds(120),
                                      context: "could not unpack \(tarball)")
        progress("building ndctl \(version)'s tests (meson, ninja)")
        let source = folder + "/src"
        let setup = try await ProcessRunner.run("meson", ["setup", "build"] + Self.mesonOptions, currentDirectory: source, timeout: .seconds(300))
        guard setup.succeeded else { throw NdctlTestError.buildFailed(step: "meson setup", log: Self.tail(setup)) }
        let compile = try await ProcessRunner.run("ninja", ["-C", "build"], currentDirectory: source, timeout: .seconds(1800))
        guard compile.succeeded else { throw NdctlTestError.buildFailed(step: "ninja", log: Self.tail(compile)) }
        let listed = try await ProcessRunner.run("meson", ["introspect", "--tests", "build"], currentDirectory: source, timeout: .seconds(120))
        guard listed.succeeded else { throw NdctlTestError.introspection(Self.tail(listed)) }
        try listed.standardOutput.write(to: URL(fileURLWithPath: folder + "/tests.json"))
        _ = fm.createFile(atPath: folder + "/.complete", contents: Data())
        done = true
        guard let built = try loaded(folder: folder, version: version) else { throw NdctlTestError.introspection("tests.json vanished") }
        return built
    }

    /// ndctl's orig tarball of upstream `version`, from Debian's source package, verified.
    func verifiedOrigTarball(version: String, progress: @escaping @Sendable (String) -> Void) async throws -> String {
        let source = try DebianSource(cache: cache)
        let records = try await source.records(of: "ndctl").filter { Self.upstream(of: $0.version) == version }
        guard let record = records.max(by: { $0.version.compare($1.version, options: .numeric) == .orderedAscending }),
              let orig = record.files.first(where: { $0.name.hasPrefix("ndctl_\(version).orig.tar") }) else {
            throw NdctlTestError.noSource("Debian's trixie Sources index has no ndctl \(version) with an orig tarball")
        }
        return try await source.fetch("ndctl", record: record, needed: [orig.name], progress: progress) + "/" + orig.name
    }

    static func tail(_ result: ProcessResult) -> String {
        (result.output + result.errorOutput).split(separator: "\n").suffix(12).joined(separator: "\n")
    }
}
