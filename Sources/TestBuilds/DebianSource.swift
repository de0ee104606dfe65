import Foundation
import HostSupport
import Kernels

/// A Debian source package's files through apt's signed chain: `apt-get source
/// --download-only` from a private apt root whose `deb-src` lines are signed by Debian's
/// keyring, and every file checked against the SHA-256 that the signed Sources index gives,
/// after each download and again at each use. A cached file that no longer matches is
/// fetched again, never used: cxllab builds these sources as root.
public struct DebianSource: Sendable {
    /// One file of a source package as the Sources index lists it.
    public struct File: Sendable, Hashable {
        public let name: String
        public let sha256: String
    }

    /// A version of a source package and its files.
    public struct Record: Sendable, Hashable {
        public let version: String
        public let files: [File]
    }

    let archive: DebianArchive
    let cache: CacheDirectory

    /// trixie carries the ndctl cxllab builds its tests from (bookworm's source files are gone
    /// from the mirror).
    public init(cache: CacheDirectory, suites: [String] = ["trixie"]) throws {
        self.cache = cache
        archive = try DebianArchive(sourcesOf: suites, cache: cache)
    }

    /// Every version of a source package in the index, with its files.
    public func records(of package: String) async throws -> [Record] {
        try await archive.refresh()
        let options = archive.options
        let result = try await archive.readLocked {
            try await ProcessRunner.run("apt-cache", options + ["showsrc", "--only-source", package], timeout: .seconds(60))
        }
        return Self.parse(showsrc: result.output, package: package)
    }

    /// Reads `apt-cache showsrc` stanzas: the version and the Checksums-Sha256 list.
    static func parse(showsrc text: String, package: String) -> [Record] {
        text.components(separatedBy: "\n\n").compactMap { stanza -> Record? in
            var name: String?
            var version: String?
            var files: [File] = []
            var inChecksums = false
            for line in stanza.split(separator: "\n") {
                if line.hasPrefix(" ") {
                    guard inChecksums else { continue }
                    let words = line.split(separator: " ")
                    if words.count == 3, words[0].count == 64 { files.append(File(name: String(words[2]), sha256: String(words[0]))) }
                    continue
                }
                inChecksums = line.hasPrefix("Checksums-Sha256:")
                if line.hasPrefix("Package:") { name = line.dropFirst("Package:".count).trimmingCharacters(in: .whitespaces) }
                if line.hasPrefix("Version:") { version = line.dropFirst("Version:".count).trimmingCharacters(in: .whitespaces) }
            }
            guard name == package, let version, !files.isEmpty else { return nil }
            return Record(version: version, files: files)
        }
    }

    /// The files of `package` at `version` named in `needed` (all when nil), verified, in a
    /// cache folder of their own; fetched when missing or when one no longer has its recorded
    /// hash. Only the needed files must arrive: some mirrors keep an orig tarball after the
    /// .dsc beside it is gone, and the hash that matters is the signed index's.
    public func fetch(_ package: String, record: Record, needed: Set<String>? = nil,
                      progress: @escaping @Sendable (String) -> Void = { _ in }) async throws -> String {
        guard package.allSatisfy({ $0.isLetter || $0.isNumber || "+-.".contains($0) }),
              record.version.allSatisfy({ $0.isLetter || $0.isNumber || "+-.:~".contains($0) }) else {
            throw NdctlTestError.noSource("'\(package)=\(record.version)' is not a Debian source package and version")
        }
        let wanted = Record(version: record.version, files: record.files.filter { needed?.contains($0.name) ?? true })
        let folder = try cache.folder("sources", package, record.version.replacingOccurrences(of: ":", with: "%3a"))
        return try await FileLock.withLock(folder + ".lock") {
            let damaged = try Self.mismatches(wanted, in: folder)
            if damaged.isEmpty { return folder }
            for name in damaged { try? FileManager.default.removeItem(atPath: folder + "/" + name) }
            progress("fetching \(package) \(record.version)'s source (apt-get source)")
            let result = try await self.archive.readLocked {
                try await ProcessRunner.run("apt-get", self.archive.options + ["-q", "source", "--download-only", "\(package)=\(record.version)"],
                                            currentDirectory: folder, timeout: .seconds(600))
            }
            let still = try Self.mismatches(wanted, in: folder)
            guard still.isEmpty else {
                let apt = result.succeeded ? "" : " (apt-get: \(result.errorOutput.split(separator: "\n").suffix(3).joined(separator: "; ")))"
                for name in still { try? FileManager.default.removeItem(atPath: folder + "/" + name) }
                throw NdctlTestError.noSource("\(still.joined(separator: ", ")) of \(package) \(record.version) did not arrive with the SHA-256 "
                    + "of Debian's signed Sources index\(apt)")
            }
            return folder
        }
    }

    /// The files of a record that are missing from `folder` or differ from their hash.
    static func mismatches(_ record: Record, in folder: String) throws -> [String] {
        try record.files.filter { file in
            let path = folder + "/" + file.name
            guard FileManager.default.fileExists(atPath: path) else { return true }
            return try FileDigest.sha256(ofFile: path) != file.sha256
        }.map(\.name)
    }
}
