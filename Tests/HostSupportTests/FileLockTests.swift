import Foundation
@testable import HostSupport
import Synchronization
import Testing

/// Lock waits end at their deadline, and both the wait and its failure name who holds the
/// lock.
@Suite(.timeLimit(.minutes(1))) struct FileLockTests {
    func lockPath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("cxllab-lock-\(UUID().uuidString.prefix(6)).lock").path
    }

    /// Heard from the lock while it waits.
    final class Heard: Sendable {
        let lines = Mutex<[String]>([])
    }

    /// util-linux's flock holds the file while its command sleeps.
    @Test func aWaitForALockAnotherProcessHoldsEndsAndNamesIt() async throws {
        let path = lockPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: try ExecutableLocator.require("flock"))
        // -o: flock itself holds the lock, not the sleep it runs, so killing flock lets go.
        holder.arguments = ["-o", path, "sleep", "300"]
        try holder.run()
        // Foundation starts it in a session of its own: the whole group, sleep too, goes.
        let stop = { kill(-holder.processIdentifier, SIGKILL); kill(holder.processIdentifier, SIGKILL); holder.waitUntilExit() }
        defer { stop() }
        // Until flock has the lock.
        let probe = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        defer { close(probe) }
        var tries = 0
        while tries < 500, FileLock.tryLock(probe, LOCK_EX) {
            flock(probe, LOCK_UN)
            usleep(10_000)
            tries += 1
        }
        let heard = Heard()
        let clock = ContinuousClock()
        let start = clock.now
        do {
            _ = try await FileLock.withLock(path, deadline: .milliseconds(500), onWait: { line in heard.lines.withLock { $0.append(line) } }) {
                Issue.record("the lock was had while flock held it")
            }
            Issue.record("the wait did not end with an error")
        } catch let timeout as FileLockTimeout {
            #expect(timeout.holders.map(\.pid) == [holder.processIdentifier])
            #expect(timeout.description.contains("pid \(holder.processIdentifier) (") && timeout.description.contains("flock")
                    && timeout.description.contains(path) && timeout.description.contains("kill \(holder.processIdentifier)"), "\(timeout)")
        }
        #expect(clock.now - start < .seconds(60), "a 0.5 s deadline ends the wait, not the holder")
        let lines = heard.lines.withLock { $0 }
        #expect(lines.count == 1 && lines.first?.contains("held by pid \(holder.processIdentifier)") == true, "\(lines)")
        // Once the holder is gone the lock is had at once.
        stop()
        #expect(try await FileLock.withLock(path, deadline: .seconds(5)) { 7 } == 7)
    }

    /// Two descriptors of one process exclude each other: the inner wait names this process.
    @Test func aWaitForALockThisProcessHoldsEndsAndNamesIt() async throws {
        let path = lockPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try await FileLock.withLock(path) {
            await #expect(throws: FileLockTimeout.self) {
                try await FileLock.withLock(path, exclusive: false, deadline: .milliseconds(200)) {}
            }
            do {
                try await FileLock.withLock(path, deadline: .milliseconds(200)) {}
            } catch let timeout as FileLockTimeout {
                #expect(timeout.holders.map(\.pid) == [getpid()])
                #expect(timeout.description.contains("this process"), "\(timeout)")
            }
        }
    }

    @Test func locksTableLinesAreMatchedByDeviceAndInode() {
        let table = """
            1: FLOCK  ADVISORY  WRITE 4242 fd:01:1234 0 EOF
            1: -> FLOCK  ADVISORY  WRITE 4343 fd:01:1234 0 EOF
            2: POSIX  ADVISORY  WRITE 4444 fd:01:1234 0 EOF
            3: FLOCK  ADVISORY  READ 4545 fd:01:9999 0 EOF
            4: FLOCK  ADVISORY  READ 4646 08:01:1234 0 EOF
            """
        // fd:01 is major 253, minor 1.
        let device = UInt64(253) << 8 | 1
        #expect(FileLock.holders(inLocksTable: table, device: device, inode: 1234).map(\.pid) == [4242])
    }
}
