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
}
