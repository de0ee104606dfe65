import Foundation
@testable import GuestImage
import HostSupport
import Synchronization
import Testing
import TestSupport
@testable import Kernels
@testable import TestBuilds

/// Real kernels from Debian's archive, real images, real guests booted through libvirt under
/// TCG. Serialized: each guest takes a core.
@Suite(.tags(.vm, .network), .needsHost) struct RealKernelTests {
    let cache = CacheDirectory.resolve(environment: ProcessInfo.processInfo.environment)
    static var root: String { RecipeAndConfigTests.root }

    func recipe() throws -> ImageRecipe { try ImageRecipe.load(path: Self.root + "/images/default.yaml") }

    @Test(arguments: ["bookworm", "bookworm-backports", "trixie-backports"])
    func newestKernelOfSuiteBootsFromItsImage(suite: String) async throws {
        let store = try KernelStore(cache: cache)
        let kernel = try await store.kernel(.debianSuite(suite))
        #expect(try KernelStore.release(ofBzImage: kernel.imagePath) == kernel.release)
        #expect(FileManager.default.fileExists(atPath: kernel.modulesFolder + "/modules.dep"))
        #expect(KernelConfig(contentsOf: kernel.configPath) != nil)
        let image = try await ImageBuilder(cache: cache).build(ImageRequest(recipe: try recipe(), kernel: kernel, features: ["nvdimm"]))
        let console = try await BootHarness.boot(kernel: kernel, image: image)
        #expect(console.contains("cxllab-init: kernel \(kernel.release)"), "console:\n\(console.suffix(2000))")
        #expect(console.contains("cxllab-init: modules loaded"))
        #expect(!console.contains("could not load"), "console:\n\(console.suffix(2000))")
    }

    /// Tools from another suite run in the guest on that suite's own libraries.
    @Test func trixieToolsRunWithTheirOwnLibraries() async throws {
        let kernel = try await KernelStore(cache: cache).kernel(.debianSuite("bookworm-backports"))
        let recipe = try ImageRecipe.load(path: Self.root + "/images/trixie-tools.yaml")
        let image = try await ImageBuilder(cache: cache).build(ImageRequest(recipe: recipe, kernel: kernel, features: ["cxl"]))
        let console = try await BootHarness.boot(kernel: kernel, image: image)
        #expect(console.contains("cxllab-init: cxl 81"), "console:\n\(console.suffix(2000))")
        #expect(console.contains("cxllab-init: ndctl 81"))
    }

    /// `linux-image-6.12` is a name packages provide, not a release: refused before anything
    /// is downloaded, like a release Debian never had.
    @Test(arguments: ["5.99.0-1-amd64", "6.12"]) func unknownDebianVersionListsWhatExists(release: String) async throws {
        let store = try KernelStore(cache: cache)
        let error = try await #require(throws: KernelStoreError.self) {
            try await store.kernel(.debianRelease(release))
        }
        let text = error.description
        #expect(text.contains("Debian has no kernel \(release)"), "said: \(text)")
        #expect(text.contains("Available:"))
        #expect(text.contains("+deb12-amd64"))
    }

    /// A build tree assembled from a Debian package's bzImage, config and modules.
    @Test func buildTreeKernelImportsAndBoots() async throws {
        let store = try KernelStore(cache: cache)
        let debian = try await store.kernel(.debianSuite("bookworm-backports"))
        let tree = FileManager.default.temporaryDirectory.path + "/cxllab-tree-\(UUID().uuidString.prefix(8))"
        let fm = FileManager.default
        try fm.createDirectory(atPath: tree + "/arch/x86/boot", withIntermediateDirectories: true)
        defer { try? fm.removeItem(atPath: tree) }
        try fm.copyItem(atPath: debian.imagePath, toPath: tree + "/arch/x86/boot/bzImage")
        try fm.copyItem(atPath: debian.configPath, toPath: tree + "/.config")
        for folder in ["drivers", "fs", "lib", "crypto", "arch/x86/crypto"] {
            let source = debian.modulesFolder + "/kernel/" + folder
            if fm.fileExists(atPath: source) {
                try fm.createDirectory(atPath: (tree + "/" + folder as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try? fm.copyItem(atPath: source, toPath: tree + "/" + folder)
            }
        }
        try fm.copyItem(atPath: debian.modulesFolder + "/modules.builtin", toPath: tree + "/modules.builtin")
        let kernel = try await store.kernel(.buildTree(tree))
        #expect(kernel.release == debian.release)
        #expect(kernel.origin == "build:\(tree)")
        #expect(kernel.buildTree == tree)
        let again = try await store.kernel(.buildTree(tree))
        #expect(again.folder == kernel.folder)
        defer { try? store.remove(kernel) }
        let image = try await ImageBuilder(cache: cache).build(ImageRequest(recipe: try recipe(), kernel: kernel, features: ["nvdimm"]))
        #expect(image.modules.contains("nd_pmem"))
        let console = try await BootHarness.boot(kernel: kernel, image: image)
        #expect(console.contains("cxllab-init: kernel \(kernel.release)"))
        #expect(!console.contains("could not load"), "console:\n\(console.suffix(2000))")
    }

    @Test func treeWithoutBzImageSaysHowToBuildIt() async throws {
        let store = try KernelStore(cache: cache)
        let error = try await #require(throws: KernelImportError.self) { try await store.kernel(.buildTree("/tmp")) }
        guard case .noImage = error else { Issue.record("expected noImage, got \(error)"); return }
        #expect(error.description.contains("has no arch/x86/boot/bzImage"))
        #expect(error.description.contains("make"))
    }

    @Test func filesKernelTakesAnInstalledModulesFolder() async throws {
        let store = try KernelStore(cache: cache)
        let debian = try await store.kernel(.debianSuite("bookworm-backports"))
        let kernel = try await store.kernel(.files(bzImage: debian.imagePath, modules: debian.modulesRoot, config: debian.configPath))
        defer { try? store.remove(kernel) }
        #expect(kernel.release == debian.release)
        #expect(FileManager.default.fileExists(atPath: kernel.modulesFolder + "/modules.dep"))
        #expect(KernelConfig(contentsOf: kernel.configPath) != nil)
        #expect(throws: KernelImportError.self) { try KernelStore.release(ofBzImage: "/etc/os-release") }
    }
}

@Suite(.serialized, .tags(.network), .needsHost) struct ImageCacheAndModuleTests {
    let cache = CacheDirectory.resolve(environment: ProcessInfo.processInfo.environment)

    func kernel() async throws -> Kernel {
        try await KernelStore(cache: cache).kernel(.debianSuite("bookworm-backports"))
    }

    func request(_ kernel: Kernel, extra: [String] = [], user: [String] = []) throws -> ImageRequest {
        ImageRequest(recipe: try ImageRecipe.load(path: RecipeAndConfigTests.root + "/images/default.yaml"), kernel: kernel,
                     features: ["cxl"], extraModules: extra, userModules: user)
    }

    @Test func sameInputsGiveTheSameBytesAndACacheHit() async throws {
        let kernel = try await kernel()
        let builder = try ImageBuilder(cache: cache)
        let first = try await builder.build(try request(kernel))
        let second = try await builder.build(try request(kernel))
        #expect(second.cacheHit)
        #expect(second.key == first.key)
        // Rebuilt from nothing, the bytes are the same.
        try FileManager.default.removeItem(atPath: (first.path as NSString).deletingLastPathComponent)
        let rebuilt = try await builder.build(try request(kernel))
        #expect(!rebuilt.cacheHit)
        #expect(rebuilt.sha256 == first.sha256)
        #expect(rebuilt.modules.contains("cxl_acpi"))
    }

    @Test func aCorruptedCachedImageIsRebuiltNotUsed() async throws {
        let kernel = try await kernel()
        let builder = try ImageBuilder(cache: cache)
        let image = try await builder.build(try request(kernel, extra: ["kmem"]))
        let handle = try #require(FileHandle(forUpdatingAtPath: image.path))
        try handle.seek(toOffset: 4096)
        try handle.write(contentsOf: Data(repeating: 0xFF, count: 64))
        try handle.close()
        let messages = Messages()
        let again = try await builder.build(try request(kernel, extra: ["kmem"])) { messages.append($0) }
        #expect(!again.cacheHit)
        #expect(again.sha256 == image.sha256)
        #expect(try FileDigest.sha256(ofFile: again.path) == image.sha256)
        #expect(messages.all.contains { $0.contains("corrupted") })
    }

    @Test func moduleSourceBuildsAgainstDebianHeadersAndLoadsInTheGuest() async throws {
        let kernel = try await kernel()
        let source = FileManager.default.temporaryDirectory.path + "/cxllab-hello-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: source) }
        let marker = "hello from cxllab \(UUID().uuidString.prefix(8))"
        try """
            #include <linux/module.h>
            static int __init hello_init(void) { pr_info("\(marker)\\n"); return 0; }
            static void __exit hello_exit(void) {}
            module_init(hello_init);
            module_exit(hello_exit);
            MODULE_LICENSE("GPL");
            """.write(toFile: source + "/cxlhello.c", atomically: true, encoding: .utf8)
        try "obj-m := cxlhello.o\n".write(toFile: source + "/Kbuild", atomically: true, encoding: .utf8)
        let modules = try await ModuleBuilder(cache: cache).resolve([source], for: kernel)
        #expect(modules.files.count == 1)
        try await ModuleBuilder.check(modules.files[0], against: kernel)
        let image = try await ImageBuilder(cache: cache).build(try request(kernel, extra: ["cxlhello"], user: modules.files))
        #expect(image.modules.contains("cxlhello"))
        let console = try await BootHarness.boot(kernel: kernel, image: image, extraCommandLine: "cxllab.init=report loglevel=7")
        #expect(console.contains(marker), "console:\n\(console.suffix(2000))")
    }

    @Test func brokenModuleSourceShowsTheCompilerError() async throws {
        let kernel = try await kernel()
        let source = FileManager.default.temporaryDirectory.path + "/cxllab-broken-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: source) }
        try "#include <linux/module.h>\nint broken( { return 0; }\n".write(toFile: source + "/broken.c", atomically: true, encoding: .utf8)
        try "obj-m := broken.o\n".write(toFile: source + "/Kbuild", atomically: true, encoding: .utf8)
        let error = try await #require(throws: ModuleBuildError.self) { try await ModuleBuilder(cache: cache).resolve([source], for: kernel) }
        guard case .compileFailed = error else { Issue.record("expected compileFailed, got \(error)"); return }
        #expect(error.description.contains("does not compile against \(kernel.release)"))
        #expect(error.description.contains("broken.c"))
    }

    @Test func aModuleBuiltForAnotherKernelIsRefused() async throws {
        let store = try KernelStore(cache: cache)
        let old = try await store.kernel(.debianSuite("bookworm"))
        let new = try await kernel()
        let index = try ModuleIndex(modulesFolder: new.modulesFolder, release: new.release)
        let foreign = new.modulesFolder + "/" + (index.paths["kmem"] ?? "")
        let error = try await #require(throws: ModuleBuildError.self) { try await ModuleBuilder.check(foreign, against: old) }
        guard case .wrongKernel = error else { Issue.record("expected wrongKernel, got \(error)"); return }
        #expect(error.description.contains("built for another kernel"))
        #expect(error.description.contains(old.release))
    }

    @Test func trixieKbuildIsReportedAsNeedingANewerHost() async throws {
        let kernel = try await KernelStore(cache: cache).kernel(.debianSuite("trixie-backports"))
        let source = FileManager.default.temporaryDirectory.path + "/cxllab-t-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: source) }
        try "obj-m := t.o\n".write(toFile: source + "/Kbuild", atomically: true, encoding: .utf8)
        try "#include <linux/module.h>\nMODULE_LICENSE(\"GPL\");\n".write(toFile: source + "/t.c", atomically: true, encoding: .utf8)
        let error = try await #require(throws: ModuleBuildError.self) { try await ModuleBuilder(cache: cache).resolve([source], for: kernel) }
        guard case .kbuildIncompatible = error else { Issue.record("expected kbuildIncompatible, got \(error)"); return }
        #expect(error.description.contains("cannot build modules for \(kernel.release) on this host"))
        #expect(error.description.contains("GLIBC_") || error.description.contains("gcc-"))
    }
}

final class Messages: Sendable {
    private let items = Mutex<[String]>([])
    func append(_ message: String) { items.withLock { $0.append(message) } }
    var all: [String] { items.withLock { $0 } }
}
