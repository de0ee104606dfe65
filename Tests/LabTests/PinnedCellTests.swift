import Foundation
import GuestImage
import HostSupport
@testable import Scenarios
import Synchronization
import Testing
@testable import Kernels

/// A `build:` tree rebuilt between two cells of one matrix: the second cell never boots the
/// new kernel under the id the run gave it for the pinned one.
@Suite struct PinnedCellTests {
    /// A build tree that a developer rebuilds after the first import.
    final class RebuiltTree: KernelResolving {
        private let imports = Mutex(0)
        func kernel(_ reference: KernelReference, progress: @escaping @Sendable (String) -> Void) async throws -> Kernel {
            let build = imports.withLock { count in
                defer { count += 1 }
                return count
            }
            return Kernel(release: "7.3.0-rc1", origin: "build:/src/linux", packageVersion: nil, suite: nil,
                          imageSHA256: FileDigest.sha256(of: Data("bzImage build \(build)".utf8)), folder: "/nonexistent/cxllab-pin-test")
        }
    }

    @Test func aTreeRebuiltAfterThePinIsRefusedWithTheReason() async throws {
        let tree = RebuiltTree()
        let pinned = PinnedKernel(reference: "build:/src/linux", kernel: try await tree.kernel(.buildTree("/src/linux"), progress: { _ in }))
        var cell = ScenarioCell(kernel: pinned.exactReference, topology: "/nonexistent/t.yaml", recipe: try ImageRecipe.load(path: LabSessionTests.root + "/images/default.yaml"),
                                scenario: DriverOrderScenario(standInSource: ""), runID: "run", cellID: "cell", pinned: pinned)
        cell.resolver = tree
        let outcome = await cell.run(context: .forTests(cache: CacheDirectory(path: NSTemporaryDirectory() + "cxllab-pin-\(UUID().uuidString.prefix(6))")))
        #expect(outcome.verdict == .error)
        let error = outcome.outcome.error ?? ""
        #expect(error.contains("is not the one this run pinned"), "\(error)")
        #expect(error.contains(String(pinned.imageSHA256.prefix(12))))
        // The pin the outcome reports is the run's, not the rebuilt tree's.
        #expect(outcome.kernel?.imageSHA256 == pinned.imageSHA256)
    }

    /// A bzImage as the store reads it: the setup header's magic and a release string, and a
    /// tail that a rebuild changes.
    static func writeBzImage(_ path: String, release: String, build: Int) throws {
        var bytes = [UInt8](repeating: 0, count: 0x400)
        bytes.replaceSubrange(0x202..<0x206, with: Array("HdrS".utf8))
        bytes[0x20E] = 0x00
        bytes[0x20F] = 0x01   // the version string at 0x100 + 0x200
        bytes.replaceSubrange(0x300..<(0x300 + release.utf8.count), with: Array(release.utf8))
        bytes += Array("build \(build)".utf8)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    /// Resolved once, a matrix hands the kernel on: a tree rebuilt but not imported again
    /// leaves the pinned image in the store, which the next cell boots; a tree imported again
    /// (by another run) replaces the store's files, and the cell refuses them with the reason.
    @Test func aKernelHandedOnIsCheckedAgainstItsPin() async throws {
        let folder = NSTemporaryDirectory() + "cxllab-pin-\(UUID().uuidString.prefix(6))"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let image = folder + "/bzImage"
        try Self.writeBzImage(image, release: "7.3.0-pin", build: 1)
        let cache = CacheDirectory(path: folder + "/cache")
        let store = try KernelStore(cache: cache)
        let reference = KernelReference.files(bzImage: image, modules: nil, config: nil)
        let first = try await store.importKernel(reference)
        let pinned = PinnedKernel(reference: reference.description, kernel: first)

        // Rebuilt, not imported again: the value handed on is still the pinned image.
        try Self.writeBzImage(image, release: "7.3.0-pin", build: 2)
        try pinned.check(first)

        // Imported again: the folder the value points at now holds another image.
        let second = try await store.importKernel(reference)
        #expect(second.imageSHA256 != pinned.imageSHA256 && second.folder == first.folder)
        let error = #expect(throws: PinMismatch.self) { try pinned.check(first) }
        #expect(error?.foundImage == second.imageSHA256)

        var cell = ScenarioCell(kernel: pinned.exactReference, topology: folder + "/t.yaml", recipe: try ImageRecipe.load(path: LabSessionTests.root + "/images/default.yaml"),
                                scenario: DriverOrderScenario(standInSource: ""), runID: "run", cellID: "cell", pinned: pinned)
        cell.resolved = first
        let outcome = await cell.run(context: .forTests(cache: cache))
        #expect(outcome.verdict == .error)
        #expect(outcome.outcome.error?.contains("is not the one this run pinned") == true, "\(outcome.outcome.error ?? "")")
        #expect(outcome.outcome.failure?.layer == .kernel)
    }
}
