import Foundation
import HostSupport
import Kernels

/// A Debian suite's minimal system in a folder of the cache (debootstrap), for building kernel
/// modules for a kernel whose kbuild this host cannot run: trixie's kernels want gcc-14 and a
/// newer glibc than Debian 12 has. Commands run chrooted into it, in a private mount and pid
/// namespace whose /proc disappears with the command, so nothing is left mounted on the host.
public struct BuildRoot: Sendable {
    public let suite: String
    public let packages: [String]
    public let path: String
    let cache: CacheDirectory

    /// `packages`: what the builds need besides minbase (the compiler, make, kbuild's libraries).
    public init(cache: CacheDirectory, suite: String, packages: [String]) throws {
        self.cache = cache
        self.suite = suite
        self.packages = Array(Set(packages)).sorted()
        let key = FileDigest.sha256(of: Data(("\(suite)\n" + self.packages.joined(separator: "\n")).utf8)).prefix(16)
        path = try cache.folder("buildroots") + "/\(suite)-\(key)"
    }

    public var isReady: Bool { FileManager.default.fileExists(atPath: path + "/.complete") }

    /// Makes the system once (about a minute and 500 MB for trixie with gcc-14).
    public func prepare(progress: @escaping @Sendable (String) -> Void = { _ in }) async throws {
        if isReady { return }
        try await FileLock.withLock(path + ".lock", onWait: progress) {
            if self.isReady { return }
            guard let debootstrap = ExecutableLocator.find("debootstrap") else {
                throw BuildRootError.missingTool("debootstrap", fix: "run `make setup` (it installs Debian's debootstrap package)")
            }
            let archive = try DebianArchive(cache: self.cache)
            let mirror = archive.sources.first?.uri ?? DebianArchive.defaultMirror
            let staging = self.path + ".staging"
            try? FileManager.default.removeItem(atPath: staging)
            progress("making a \(self.suite) build root (debootstrap, about a minute)")
            let result = try await ProcessRunner.run(
                debootstrap, try Self.debootstrapArguments(suite: self.suite, packages: self.packages, target: staging, mirror: mirror),
                timeout: .seconds(1800)
            )
            guard result.succeeded else {
                try? FileManager.default.removeItem(atPath: staging)
                let log = (result.output + result.errorOutput).split(separator: "\n").suffix(8).joined(separator: "\n")
                throw BuildRootError.debootstrapFailed(suite: self.suite, log: log)
            }
            _ = FileManager.default.createFile(atPath: staging + "/.complete", contents: Data((self.packages.joined(separator: "\n") + "\n").utf8))
            try? FileManager.default.removeItem(atPath: self.path)
            try FileManager.default.moveItem(atPath: staging, toPath: self.path)
        }
    }

    /// debootstrap's arguments: every Release file checked against Debian's keyring, with no
    /// fallback to an unsigned download (`--force-check-gpg`); without the keyring there is
    /// no build root. What it installs is then built and run as root.
    static func debootstrapArguments(suite: String, packages: [String], target: String, mirror: String,
                                     keyring: String = DebianArchive.keyring) throws -> [String] {
        guard FileManager.default.isReadableFile(atPath: keyring) else {
            throw BuildRootError.missingTool(keyring, fix: "install Debian's debian-archive-keyring package (`make setup` does): "
                + "debootstrap checks the \(suite) packages' signatures with it and cxllab never builds from an unsigned download")
        }
        return ["--variant=minbase", "--keyring=" + keyring, "--force-check-gpg", "--include=" + packages.joined(separator: ","),
                suite, target, mirror]
    }

    /// Unpacks Debian packages (.deb files on the host) into the root, as dpkg would place them.
    public func unpack(_ debs: [String]) async throws {
        for deb in debs {
            try await ProcessRunner.check("dpkg-deb", ["-x", deb, path], timeout: .seconds(300), context: "could not unpack \(deb) into \(path)")
        }
    }

    /// Runs a program inside the root (paths in its arguments are the root's), with /proc
    /// mounted for it alone (objtool reads /proc/self/limits).
    public func run(_ arguments: [String], timeout: Duration) async throws -> ProcessResult {
        let script = "mount -t proc proc /proc && exec \"$@\""
        return try await ProcessRunner.run(
            "unshare", ["--mount", "--fork", "--pid", "chroot", path, "/bin/sh", "-c", script, "sh"] + arguments, timeout: timeout
        )
    }

    /// The Debian codename of a suite (trixie-backports -> trixie).
    public static func codename(of suite: String) -> String {
        String(suite.split(separator: "-").first ?? Substring(suite))
    }
}

public enum BuildRootError: Error, Sendable, CustomStringConvertible {
    case missingTool(String, fix: String)
    case debootstrapFailed(suite: String, log: String)

    public var description: String {
        switch self {
        case .missingTool(let tool, let fix): "\(tool) is not installed: \(fix)"
        case .debootstrapFailed(let suite, let log):
            "could not make a \(suite) build root with debootstrap (the host's Debian mirror must serve \(suite)):\n\(log)"
        }
    }
}
