import Foundation

/// How many guests run at once in the labs that share these slots. Under TCG each guest keeps
/// a core busy, so by default one per core; the command line may set another limit
/// (`CXLLAB_MAX_GUESTS`). An instance, made with the lab context, so a test or a second context
/// counts its own guests; labs given the same instance share the limit.
public final class GuestSlots: Sendable {
    public let limit: Int
    private let semaphore: AsyncSemaphore

    public init(limit: Int = GuestSlots.defaultLimit) {
        self.limit = max(1, limit)
        semaphore = AsyncSemaphore(self.limit)
    }

    /// One guest per core.
    public static var defaultLimit: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }

    /// Waits for a free slot.
    public func acquire() async { await semaphore.acquire() }

    /// Gives a slot back; each `acquire` is matched by one `release`.
    public func release() { semaphore.release() }
}
