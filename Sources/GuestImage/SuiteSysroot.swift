import Foundation
import HostSupport
import Kernels

/// Another Debian suite's packages unpacked into a folder of the cache, so a guest can run
/// that suite's tools (trixie's ndctl 81, whose cxl tool can create volatile regions that
/// bookworm's ndctl 76 refuses) with that suite's own libraries instead of the host's.
public struct SuiteSysroot: Sendable {
    /// Packages whose closure is pulled in only for maintainer scripts, never by a program.
    static let notNeededInAGuest: Set<String> = [
        "init-system-helpers", "debconf", "perl-base", "dpkg", "tar", "coreutils", "adduser", "base-files",
        "usr-is-merged", "sysvinit-utils", "lsb-base", "debconf-2.0",
    ]

    public let suite: String
    public let packages: [String]
    public let path: String

    public init(cache: CacheDirectory, suite: String, packages: [String]) throws {
        self.suite = suite
        self.packages = packages.sorted()
        let key = FileDigest.sha256(of: Data(("\(suite)\n" + self.packages.joined(separator: "\n")).utf8)).prefix(16)
        self.path = try cache.folder("sysroots") + "/\(suite)-\(key)"
    }

    /// Downloads and unpacks the packages and their dependency closure, once.
    public func prepare(progress: @escaping @Sendable (String) -> Void = { _ in }) async throws {
        if FileManager.default.fileExists(atPath: path + "/.complete") { return }
        try await FileLock.withLock(path + ".lock", onWait: progress) { try await self.prepareLocked(progress: progress) }
    }

    private func prepareLocked(progress: @escaping @Sendable (String) -> Void) async throws {
        let fm = FileManager.default
        if fm.fileExists(atPath: path + "/.complete") { return }
        let archive = try DebianArchive(cache: CacheDirectory(path: ((path as NSString).deletingLastPathComponent as NSString).deletingLastPathComponent))
        progress("reading Debian's package lists")
        try await archive.refresh()
        let pin = ["-o", "APT::Default-Release=\(suite)"]
        let closure = try await ProcessRunner.check(
            "apt-cache",
            archive.options + pin + ["depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
                                     "--no-breaks", "--no-replaces", "--no-enhances"] + packages,
            timeout: .seconds(120), context: "could not resolve \(packages.joined(separator: ", ")) in \(suite)"
        )
        let names = Set(closure.output.split(separator: "\n").filter { !$0.hasPrefix(" ") && !$0.contains("<") }.map(String.init))
            .subtracting(Self.notNeededInAGuest).sorted()
        let staging = path + ".staging-\(UUID().uuidString.prefix(8))"
        try? fm.removeItem(atPath: staging)
        defer { try? fm.removeItem(atPath: staging) }
        progress("downloading \(names.count) packages from \(suite)")
        let debs = try await archive.download(names.map { "\($0)/\(suite)" }, into: staging + "/.debs", progress: progress)
        for deb in debs {
            try await ProcessRunner.check("dpkg-deb", ["-x", deb, staging], timeout: .seconds(300), context: "could not extract \(deb)")
        }
        try fm.removeItem(atPath: staging + "/.debs")
        _ = fm.createFile(atPath: staging + "/.complete", contents: Data((names.joined(separator: "\n") + "\n").utf8))
        try? fm.removeItem(atPath: path)
        try fm.moveItem(atPath: staging, toPath: path)
    }
}
