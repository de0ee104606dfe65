import Foundation
import HostSupport
@testable import Kernels
@testable import Scenarios
import Testing

/// `make:<tree>` on a stand-in kernel tree under git: its Makefile's targets do what a kernel's
/// do to the files cxllab reads (a .config, an x86 bzImage whose setup header names its
/// release), each commit "building" another release, so each step's import can be told from
/// the last. A real kernel build takes hours on this host's two cores.
@Suite(.serialized) struct KernelTreeBuildTests {
    /// A minimal x86 bzImage: the setup header's magic and a version string naming `release`.
    static func bzImage(release: String) -> Data {
        var bytes = [UInt8](repeating: 0, count: 0x400)
        bytes.replaceSubrange(0x202..<0x206, with: Array("HdrS".utf8))
        bytes[0x20E] = 0x00
        bytes[0x20F] = 0x01   // version string at 0x100 + 0x200
        bytes.replaceSubrange(0x300..<(0x300 + release.utf8.count + 16), with: Array((release + " (cxllab@test) #1").utf8))
        return Data(bytes)
    }

    /// A tree whose `bzImage` target writes `image` (or fails with `failure`), whose defconfig
    /// writes a config with DEV_DAX built in, and whose olddefconfig keeps what it was handed.
    struct Tree {
        let root: String

        init() throws {
            root = FileManager.default.temporaryDirectory.appendingPathComponent("cxllab-tree-\(UUID().uuidString.prefix(6))").path
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        }

        func commit(release: String?, failure: String? = nil) async throws {
            if let release { try KernelTreeBuildTests.bzImage(release: release).write(to: URL(fileURLWithPath: root + "/image.bin")) }
            let bzImage = failure.map { "\t@echo '\($0)' >&2; exit 3" } ?? "\tmkdir -p arch/x86/boot && cp image.bin arch/x86/boot/bzImage"
            let makefile = """
                defconfig:
                \tprintf 'CONFIG_DEV_DAX=y\\n# CONFIG_CXL_BUS is not set\\nCONFIG_OTHER=y\\n' > .config
                olddefconfig:
                \tcp .config config-seen-by-olddefconfig
                bzImage:
                \(bzImage)
                modules:
                \t@echo '  LD [M]  modules'

                """
            try makefile.write(toFile: root + "/Makefile", atomically: true, encoding: .utf8)
            _ = try await git(["add", "Makefile"] + (release == nil ? [] : ["image.bin"]))
            _ = try await git(["commit", "-qm", release ?? "broken"])
        }

        func git(_ arguments: [String]) async throws -> ProcessResult {
            let result = try await ProcessRunner.run("git", ["-c", "user.name=cxllab", "-c", "user.email=cxllab@localhost"] + arguments,
                                                     currentDirectory: root, timeout: .seconds(60))
            #expect(result.succeeded, "git \(arguments): \(result.errorOutput)")
            return result
        }

        func remove() { try? FileManager.default.removeItem(atPath: root) }
    }

    @Test func makeIsAKernelFormOfItsOwn() throws {
        #expect(try KernelReference(parsing: "make:/src/linux") == .madeTree("/src/linux"))
        #expect(KernelReference.madeTree("/src/linux").description == "make:/src/linux")
        #expect(try KernelReference(parsing: "build:/src/linux") == .buildTree("/src/linux"))
        #expect(throws: KernelReferenceError.self) { try KernelReference(parsing: "debain:bookworm") }
        #expect("\(KernelReferenceError.unknownScheme("debain:bookworm", "debain"))".contains("make:<dir>"))
    }

    /// The fragment is KernelRequirements' list, the dax drivers as modules (the scenarios
    /// unload them), and merging it replaces what a config said of those options.
    @Test func theFragmentIsTheRequirementsAndWinsOverTheConfig() {
        let lines = KernelConfigFragment.lines
        let options = Set(KernelRequirements.requirements(for: KernelConfigFragment.features, release: "").map(\.option))
        #expect(Set(lines.map { String($0.dropFirst(7).prefix { $0 != "=" }) }) == options)
        #expect(lines.count == options.count)
        #expect(lines.contains("CONFIG_DEV_DAX=m") && lines.contains("CONFIG_DEV_DAX_KMEM=m") && lines.contains("CONFIG_CXL_BUS=y"))
        let merged = KernelConfigFragment.merged(into: "CONFIG_DEV_DAX=y\n# CONFIG_CXL_BUS is not set\nCONFIG_OTHER=y\n# comment\n")
        let mergedLines = merged.split(separator: "\n").map(String.init)
        #expect(!mergedLines.contains("CONFIG_DEV_DAX=y") && !mergedLines.contains("# CONFIG_CXL_BUS is not set"))
        #expect(mergedLines.contains("CONFIG_OTHER=y") && mergedLines.contains("# comment"))
        #expect(mergedLines.filter { $0.hasPrefix("CONFIG_DEV_DAX=") } == ["CONFIG_DEV_DAX=m"])
    }

    /// The README prints the fragment; it must be the code's, line for line.
    @Test func theReadmePrintsTheFragmentTheCodeMerges() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let readme = try String(contentsOfFile: root + "/README.md", encoding: .utf8)
        let start = try #require(readme.range(of: "<!-- kernel-config -->"))
        let end = try #require(readme.range(of: "<!-- /kernel-config -->"))
        let block = readme[start.upperBound..<end.lowerBound].split(separator: "\n").map(String.init).filter { $0.hasPrefix("CONFIG_") }
        #expect(block == KernelConfigFragment.lines)
    }

    /// What `git bisect` does with make:, step by step: each commit's build is the one
    /// imported, a commit that does not build is a build error (125 under --bisect), and the
    /// config make saw had cxllab's fragment merged in. `build:` at the broken commit imports
    /// the previous commit's image: why make: exists.
    @Test func eachCommitImportsWhatItsBuildMade() async throws {
        let tree = try Tree()
        defer { tree.remove() }
        let cacheFolder = tree.root + "-cache"
        defer { try? FileManager.default.removeItem(atPath: cacheFolder) }
        let store = try KernelStore(cache: CacheDirectory(path: cacheFolder))
        _ = try await tree.git(["init", "-q", "-b", "trunk"])
        try await tree.commit(release: "6.90.0-first")
        let first = try await tree.git(["rev-parse", "HEAD"]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        try await tree.commit(release: nil, failure: "error: this commit does not build")
        let broken = try await tree.git(["rev-parse", "HEAD"]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        try await tree.commit(release: "6.91.0-third")

        _ = try await tree.git(["checkout", "-q", first])
        let before = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
        let built = try await store.importKernel(.madeTree(tree.root))
        #expect(built.release == "6.90.0-first")
        #expect(built.origin == "make:\(tree.root)" && built.buildTree == tree.root)
        let record = try #require(built.treeBuild)
        #expect(record.imageSHA256 == built.imageSHA256 && record.started >= before && record.finished >= record.started)
        #expect(try FileDigest.sha256(ofFile: built.imagePath) == FileDigest.sha256(of: Self.bzImage(release: "6.90.0-first")))
        // defconfig ran (no .config), then the fragment was merged before olddefconfig.
        let seen = try String(contentsOfFile: tree.root + "/config-seen-by-olddefconfig", encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(seen.contains("CONFIG_OTHER=y") && seen.contains("CONFIG_DEV_DAX=m") && seen.contains("CONFIG_CXL_BUS=y"))
        #expect(!seen.contains("CONFIG_DEV_DAX=y"))

        _ = try await tree.git(["checkout", "-q", broken])
        await #expect {
            _ = try await store.importKernel(.madeTree(tree.root))
        } throws: { error in
            guard case .makeFailed(_, let step, let status, let tail) = error as? KernelTreeBuildError else { return false }
            let failure = CellOutcome.couldNotRun("driver-order", failure: OutcomeError(error), kernel: nil, topology: "t")
            return step.contains("bzImage") && status != 0 && tail.contains { $0.contains("this commit does not build") }
                && failure.outcome.failure?.layer == .build && failure.verdict.exitStatus(bisect: true) == 125
                && failure.verdict.exitStatus(bisect: false) == 2
        }
        let stale = try await store.importKernel(.buildTree(tree.root))
        #expect(stale.release == "6.90.0-first", "build: imports whatever bzImage is there")

        _ = try await tree.git(["checkout", "-q", "trunk"])
        let third = try await store.importKernel(.madeTree(tree.root))
        #expect(third.release == "6.91.0-third" && third.imageSHA256 != built.imageSHA256)
        #expect(store.cached(.madeTree(tree.root))?.release == "6.91.0-third")
    }

    /// A build that succeeds without writing the image leaves the last build's: refused.
    @Test func anImageOlderThanTheBuildIsRefused() async throws {
        let tree = try Tree()
        defer { tree.remove() }
        let makefile = "defconfig olddefconfig bzImage modules:\n\t@true\n"
        try makefile.write(toFile: tree.root + "/Makefile", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: tree.root + "/arch/x86/boot", withIntermediateDirectories: true)
        let image = tree.root + "/arch/x86/boot/bzImage"
        try Self.bzImage(release: "6.90.0-old").write(to: URL(fileURLWithPath: image))
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -3600)], ofItemAtPath: image)
        await #expect {
            _ = try await KernelTreeBuild(tree: tree.root).run()
        } throws: { error in
            guard case .staleImage(let path, let modified, let started) = error as? KernelTreeBuildError else { return false }
            return path == image && modified < started
        }
        // Touched by the build, the same file is this build's.
        let touching = "defconfig olddefconfig modules:\n\t@true\nbzImage:\n\ttouch arch/x86/boot/bzImage\n"
        try touching.write(toFile: tree.root + "/Makefile", atomically: true, encoding: .utf8)
        let record = try await KernelTreeBuild(tree: tree.root).run()
        #expect(record.imageSHA256 == FileDigest.sha256(of: Self.bzImage(release: "6.90.0-old")))
    }
}
