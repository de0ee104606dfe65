import Foundation

/// An advisory lock on a file (flock), held while `body` runs. It serializes work on shared
/// cache entries between tasks of one process (each call opens its own descriptor) and
/// between cxllab processes. A wait has a deadline and names who holds the lock: a cxllab
/// stuck holding one (or killed -STOP) must not leave the next one waiting silently forever.
public enum FileLock {
    /// A process holding a lock, as /proc/locks and /proc/PID/cmdline tell it.
    public struct Holder: Sendable, Hashable, CustomStringConvertible {
        public let pid: Int32
        public let command: String?

        public var description: String {
            let own = pid == getpid() ? ", this process" : ""
            return "pid \(pid)" + (command.map { " (\($0)\(own))" } ?? (own.isEmpty ? "" : " (this process)"))
        }
    }

    /// Long enough for the slowest work done under a lock (a kernel fetched over a slow line,
    /// a module built under TCG-bound load); a lock held longer than this is a stuck holder.
    public static let defaultDeadline: Duration = .seconds(3600)

    /// Runs `body` holding the lock; `onWait` hears once, when the lock is busy, who holds it.
    /// Throws `FileLockTimeout` when the lock is not had within `deadline`.
    public static func withLock<T: Sendable>(
        _ path: String, exclusive: Bool = true, deadline: Duration = defaultDeadline,
        onWait: (@Sendable (String) -> Void)? = nil, _ body: @Sendable () async throws -> T
    ) async throws -> T {
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path])
        }
        defer { close(descriptor) }
        try await acquire(descriptor, path: path, operation: exclusive ? LOCK_EX : LOCK_SH, deadline: deadline, onWait: onWait)
        defer { flock(descriptor, LOCK_UN) }
        return try await body()
    }

    /// The same lock taken on a folder itself (flock works on a directory), so no lock file is
    /// left among what the folder holds. The folder must exist.
    public static func withLock<T: Sendable>(
        onFolder path: String, deadline: Duration = defaultDeadline, _ body: @Sendable () async throws -> T
    ) async throws -> T {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw CocoaError(.fileReadNoPermission, userInfo: [NSFilePathErrorKey: path])
        }
        defer { close(descriptor) }
        try await acquire(descriptor, path: path, operation: LOCK_EX, deadline: deadline, onWait: nil)
        defer { flock(descriptor, LOCK_UN) }
        return try await body()
    }

    /// Polls rather than blocks in flock: a poll can stop at the deadline or on cancellation,
    /// and holds no thread while it waits.
    static func acquire(_ descriptor: Int32, path: String, operation: Int32, deadline: Duration,
                        onWait: (@Sendable (String) -> Void)?) async throws {
        if tryLock(descriptor, operation) { return }
        onWait?("waiting for the lock \(path), held by \(describe(holders(of: descriptor)))")
        let clock = ContinuousClock()
        let start = clock.now
        var pause = Duration.milliseconds(10)
        while true {
            try await Task.sleep(for: min(pause, max(.zero, deadline - (clock.now - start))))
            if tryLock(descriptor, operation) { return }
            if clock.now - start >= deadline {
                throw FileLockTimeout(path: path, waited: deadline, holders: holders(of: descriptor))
            }
            pause = min(pause * 2, .milliseconds(250))
        }
    }

    /// True when the lock is had, or cannot be had for another reason than a holder (a file
    /// system without flock): such a file goes on unlocked, as it always has.
    static func tryLock(_ descriptor: Int32, _ operation: Int32) -> Bool {
        while flock(descriptor, operation | LOCK_NB) != 0 {
            if errno == EINTR { continue }
            return errno != EWOULDBLOCK
        }
        return true
    }

    /// The processes holding a flock on the file open at `descriptor`, from /proc/locks
    /// (matched by device and inode; waiters, marked "->", are not holders).
    static func holders(of descriptor: Int32) -> [Holder] {
        var info = stat()
        guard fstat(descriptor, &info) == 0, let table = try? String(contentsOfFile: "/proc/locks", encoding: .utf8) else { return [] }
        return holders(inLocksTable: table, device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
    }

    /// Lines like `1: FLOCK  ADVISORY  WRITE 4242 fd:01:1234 0 EOF` (major and minor in hex).
    static func holders(inLocksTable table: String, device: UInt64, inode: UInt64) -> [Holder] {
        let major = ((device >> 8) & 0xfff) | ((device >> 32) & ~0xfff)
        let minor = (device & 0xff) | ((device >> 12) & ~0xff)
        var pids: [Int32] = []
        for line in table.split(separator: "\n") where !line.contains("->") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 6, fields[1] == "FLOCK", let pid = Int32(fields[4]), pid > 0 else { continue }
            let place = fields[5].split(separator: ":")
            guard place.count == 3, UInt64(place[0], radix: 16) == major, UInt64(place[1], radix: 16) == minor,
                  UInt64(place[2]) == inode, !pids.contains(pid) else { continue }
            pids.append(pid)
        }
        return pids.map { Holder(pid: $0, command: command(of: $0)) }
    }

    static func command(of pid: Int32) -> String? {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"), !data.isEmpty else { return nil }
        let words = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        let line = words.joined(separator: " ")
        return line.count > 120 ? String(line.prefix(117)) + "..." : line
    }

    static func describe(_ holders: [Holder]) -> String {
        guard !holders.isEmpty else {
            return "a process this host does not list (one that has just let go, or one on another machine sharing the file system)"
        }
        return holders.map(\.description).joined(separator: ", ")
    }
}

/// A lock not had within its deadline, naming the file, the wait and who held the lock.
public struct FileLockTimeout: Error, Sendable, CustomStringConvertible {
    public let path: String
    public let waited: Duration
    public let holders: [FileLock.Holder]

    public var description: String {
        let pids = holders.map { String($0.pid) }.joined(separator: " ")
        let fix = holders.isEmpty ? "try again" : "if it is stuck, stop it (kill \(pids)) and try again; else try again once it has finished"
        let seconds = waited.seconds >= 10 ? "\(Int(waited.seconds)) s" : String(format: "%.1f s", waited.seconds)
        return "waited \(seconds) for the lock \(path), held by \(FileLock.describe(holders)): \(fix)"
    }
}
