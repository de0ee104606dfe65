import Foundation
import Synchronization

/// How many guests this process runs at once. Under TCG each guest keeps a core busy, so
/// by default one per core; the command line may set another limit (`CXLLAB_MAX_GUESTS`)
/// before the first guest starts.
public enum GuestSlots {
    private static let configured = Mutex<Int?>(nil)

    /// Takes effect only before the first use of `shared`.
    public static func configure(limit: Int) {
        configured.withLock { $0 = max(1, limit) }
    }

    public static var limit: Int {
        configured.withLock { $0 } ?? max(1, ProcessInfo.processInfo.activeProcessorCount)
    }

    /// Made at its first use, with the limit then in force.
    public static let shared = AsyncSemaphore(limit)
}
