import Foundation
import HostSupport
import Testing
import TestSupport
import GuestImage
@testable import Kernels
@testable import TestBuilds

/// Names never become paths: a bare word given to `--module` (or `--load-first`) names an
/// in-tree module even when a folder of that name sits in the working folder, which cxllab,
/// running as root, must never build.
@Suite struct ModuleNameTests {
    static let kernel = Kernel(release: "6.12.0-test", origin: "debian:6.12.0-test", packageVersion: nil, suite: nil,
                               imageSHA256: "", folder: "/nonexistent/cxllab-test-kernel")

    @Test func aBareNameIsNeverLookedUpInTheWorkingFolder() async throws {
        // A folder of module source, named like a module, where cxllab happens to run.
        let name = "cxllab_planted_\(UInt32.random(in: 0...UInt32.max))"
        let planted = FileManager.default.currentDirectoryPath + "/" + name
        try FileManager.default.createDirectory(atPath: planted, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: planted) }
        try "obj-m := \(name).o\n".write(toFile: planted + "/Makefile", atomically: true, encoding: .utf8)
        let cache = CacheDirectory(path: NSTemporaryDirectory() + "cxllab-names-\(UUID().uuidString.prefix(8))")
        let resolved = try await ModuleBuilder(cache: cache).resolve([name], for: Self.kernel)
        #expect(resolved.inTree == [name])
        #expect(resolved.files.isEmpty)
    }

    @Test func aPathNeedsASlashAndMustExist() async throws {
        let cache = CacheDirectory(path: NSTemporaryDirectory() + "cxllab-names-\(UUID().uuidString.prefix(8))")
        let builder = ModuleBuilder(cache: cache)
        await #expect(throws: ModuleBuildError.self) { try await builder.resolve(["fsdev_dax.ko"], for: Self.kernel) }
        await #expect(throws: ModuleBuildError.self) { try await builder.resolve(["../x"], for: Self.kernel) }
        let error = await #expect(throws: ModuleBuildError.self) { try await builder.resolve(["./no-such-module-folder"], for: Self.kernel) }
        #expect("\(error.map { "\($0)" } ?? "")".contains("no such file or folder"))
        #expect(ModuleIndex.isModuleName("fsdev_dax"))
        #expect(!ModuleIndex.isModuleName("./fsdev_dax"))
        #expect(!ModuleIndex.isModuleName("fsdev_dax.ko"))
        #expect(!ModuleIndex.isModuleName(""))
    }
}

/// Everything cxllab builds as root comes through apt's signed chain.
@Suite struct SignedDownloadTests {
    @Test func sourceListsAreSignedByDebiansKeyring() throws {
        let cache = CacheDirectory(path: NSTemporaryDirectory() + "cxllab-src-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(atPath: cache.path) }
        let archive = try DebianArchive(sourcesOf: ["trixie"], cache: cache, hostSources: [])
        #expect(archive.sources.flatMap(\.lines) == ["deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main"])
    }

    @Test func showsrcGivesEachFilesSHA256() {
        let text = """
            Package: ndctl
            Binary: ndctl, daxctl
            Version: 81-1
            Checksums-Sha256:
             \(String(repeating: "a", count: 64)) 2170 ndctl_81-1.dsc
             \(String(repeating: "b", count: 64)) 392771 ndctl_81.orig.tar.gz
            Files:
             0123456789abcdef0123456789abcdef 2170 ndctl_81-1.dsc

            Package: ndctl-other
            Version: 1-1
            Checksums-Sha256:
             \(String(repeating: "c", count: 64)) 1 x.dsc
            """
        let records = DebianSource.parse(showsrc: text, package: "ndctl")
        #expect(records == [DebianSource.Record(version: "81-1", files: [
            .init(name: "ndctl_81-1.dsc", sha256: String(repeating: "a", count: 64)),
            .init(name: "ndctl_81.orig.tar.gz", sha256: String(repeating: "b", count: 64)),
        ])])
    }

    @Test func debootstrapChecksSignaturesOrDoesNotRun() throws {
        let arguments = try BuildRoot.debootstrapArguments(suite: "trixie", packages: ["make"], target: "/t", mirror: "http://m/debian")
        #expect(arguments.contains("--force-check-gpg"))
        #expect(arguments.contains("--keyring=/usr/share/keyrings/debian-archive-keyring.gpg"))
        #expect(!arguments.contains("--no-check-gpg"))
        #expect(throws: BuildRootError.self) {
            try BuildRoot.debootstrapArguments(suite: "trixie", packages: [], target: "/t", mirror: "m", keyring: "/nonexistent/keyring.gpg")
        }
    }

    /// ndctl's source from Debian, then a cached file tampered with: the next use finds it
    /// does not match the signed index and fetches it again.
    @Test(.tags(.network), .needsHost, .timeLimit(.minutes(5))) func aTamperedSourceFileIsFetchedAgain() async throws {
        let cache = CacheDirectory(path: NSTemporaryDirectory() + "cxllab-src-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(atPath: cache.path) }
        let source = try DebianSource(cache: cache)
        let record = try #require(try await source.records(of: "ndctl").first)
        let orig = try #require(record.files.first { $0.name.contains(".orig.tar") })
        let folder = try await source.fetch("ndctl", record: record, needed: [orig.name])
        #expect(try FileDigest.sha256(ofFile: folder + "/" + orig.name) == orig.sha256)
        try Data("planted".utf8).write(to: URL(fileURLWithPath: folder + "/" + orig.name))
        #expect(try DebianSource.mismatches(DebianSource.Record(version: record.version, files: [orig]), in: folder) == [orig.name])
        let again = try await source.fetch("ndctl", record: record, needed: [orig.name])
        #expect(try FileDigest.sha256(ofFile: again + "/" + orig.name) == orig.sha256)
    }
}
