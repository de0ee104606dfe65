import Foundation
@testable import HostSupport
import Synchronization
import Testing

/// Guest slots are shared by every process on the host through their slot files: a slot held
/// elsewhere (another instance, another process) is waited for, and one whose holder dies is
/// free again.
@Suite(.timeLimit(.minutes(1))) struct GuestSlotsTests {
    func folder() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("cxllab-slots-\(UUID().uuidString.prefix(6))").path
    }

    final class Flag: Sendable {
        let value = Mutex(false)
    }

    @Test func twoInstancesShareTheHostsSlots() async throws {
        let shared = folder()
        defer { try? FileManager.default.removeItem(atPath: shared) }
        let first = GuestSlots(limit: 1, hostFolder: shared)
        let second = GuestSlots(limit: 1, hostFolder: shared)
        let files = try #require(HostSlotFiles(folder: shared, count: 1))
        await first.acquire()
        #expect(files.tryTake() == nil, "the first instance's slot is held")
        let acquired = Flag()
        let waiter = Task {
            await second.acquire()
            acquired.value.withLock { $0 = true }
        }
        // The second instance has its own in-process slot free, so only the host's slot can keep it waiting.
        #expect(!acquired.value.withLock { $0 } || files.tryTake() == nil)
        first.release()
        await waiter.value
        #expect(acquired.value.withLock { $0 })
        #expect(files.tryTake() == nil, "now the second instance holds it")
        second.release()
        let free = try #require(files.tryTake())
        close(free)
    }

    /// util-linux's flock stands in for another cxllab holding the only slot; killed, it lets go.
    @Test func aSlotHeldByAnotherProcessIsWaitedForAndFreedByItsDeath() async throws {
        let shared = folder()
        defer { try? FileManager.default.removeItem(atPath: shared) }
        let files = try #require(HostSlotFiles(folder: shared, count: 1))
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: try ExecutableLocator.require("flock"))
        let said = Pipe()
        holder.standardOutput = said
        // -o: flock itself holds the lock; it says so once it has it.
        holder.arguments = ["-o", files.path(0), "sh", "-c", "echo held; exec sleep 300"]
        try holder.run()
        defer { kill(-holder.processIdentifier, SIGKILL); kill(holder.processIdentifier, SIGKILL); holder.waitUntilExit() }
        let line = try said.fileHandleForReading.read(upToCount: 5)
        #expect(line == Data("held\n".utf8))
        #expect(files.tryTake() == nil)
        let slots = GuestSlots(limit: 1, hostFolder: shared)
        let acquired = Flag()
        let waiter = Task {
            await slots.acquire()
            acquired.value.withLock { $0 = true }
        }
        #expect(files.tryTake() == nil, "flock still holds the slot")
        kill(holder.processIdentifier, SIGKILL)
        await waiter.value
        #expect(acquired.value.withLock { $0 })
        slots.release()
    }

    @Test func aFolderThatCannotBeMadeLeavesTheSlotsInProcess() async {
        #expect(HostSlotFiles(folder: "/proc/cxllab-slots", count: 2) == nil)
        let slots = GuestSlots(limit: 1, hostFolder: "/proc/cxllab-slots")
        await slots.acquire()
        slots.release()
    }
}
