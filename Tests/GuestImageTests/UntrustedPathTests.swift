import Foundation
import HostSupport
import Testing
@testable import GuestImage

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
