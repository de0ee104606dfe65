import Foundation
import GuestImage
import Topology

/// What one lab session started from and every request it sent the agent, in order: enough
/// to run the same guest work again without cxllab (`cxllab bench` replays it in a guest that
/// QEMU runs directly).
public final class SessionTranscript: @unchecked Sendable {
    public struct Launch: Sendable {
        public let topology: Topology
        public let kernel: Kernel
        public let image: BuiltImage
        public let kernelArguments: [String]
    }

    private let lock = NSLock()
    private var requestLines: [String] = []
    private var launchInputs: Launch?
    private var failedReplies = 0

    public init() {}

    func recordLaunch(_ launch: Launch) { lock.withLock { launchInputs = launch } }
    func recordRequest(_ line: String) { lock.withLock { requestLines.append(line) } }
    func recordReply(failed: Bool) { if failed { lock.withLock { failedReplies += 1 } } }

    public var launch: Launch? { lock.withLock { launchInputs } }
    /// The request frames as sent, newline-terminated.
    public var requests: [String] { lock.withLock { requestLines } }
    /// Replies that were errors (a scenario expects some: a module that is not loaded, ...).
    public var errorReplies: Int { lock.withLock { failedReplies } }
}
