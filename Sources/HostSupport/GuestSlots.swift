import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// How many guests run at once. Under TCG each guest keeps a core busy, so by default one per
/// core; the command line may set another limit (`CXLLAB_MAX_GUESTS`). An instance, made with
/// the lab context: labs given the same instance share its limit, and every instance on the
/// host shares the host's slot files (`HostSlotFiles`, under /run/cxllab), so two cxllab
/// commands at once, or a test process and the cxllab commands it runs, together run no more
/// guests than the limit; an idle core is better than two guests missing their deadlines.
public final class GuestSlots: Sendable {
    public let limit: Int
    private let semaphore: AsyncSemaphore
    private let host: HostSlotFiles?
    /// The slot files this process holds, one per acquired slot.
    private let held = Mutex<[Int32]>([])
    /// Who holds slots and for how long, when CXLLAB_SLOT_TRACE names a file (`SlotTrace`).
    private let trace: SlotTrace?

    /// The folder every cxllab on the host shares its slots through.
    public static let hostFolder = "/run/cxllab/guest-slots"

    /// `hostFolder` nil: this instance's slots only (tests of the limit itself).
    /// `label`: who is taking a slot, for the trace (the test process names its current test).
    public init(limit: Int = GuestSlots.defaultLimit, hostFolder: String? = GuestSlots.hostFolder,
                label: (@Sendable () -> String?)? = nil) {
        self.limit = max(1, limit)
        trace = SlotTrace.fromEnvironment(label: label)
        semaphore = AsyncSemaphore(self.limit)
        host = hostFolder.flatMap { HostSlotFiles(folder: $0, count: max(1, limit)) }
    }

    /// One guest per core.
    public static var defaultLimit: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }

    /// Waits for a free slot: first among this instance's labs, then among the host's.
    public func acquire() async {
        trace?.record("wait")
        defer { trace?.record("take") }
        await semaphore.acquire()
        guard let host else { return }
        let descriptor: Int32? = if let free = host.tryTake() { free } else { await offThePool { host.take() } }
        if let descriptor { held.withLock { $0.append(descriptor) } }
    }

    /// Gives a slot back; each `acquire` is matched by one `release`.
    public func release() {
        trace?.record("give")
        if let descriptor = held.withLock({ $0.popLast() }) { close(descriptor) }
        semaphore.release()
    }
}
