import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Guest slots shared by every cxllab process on the host: one file per slot in a folder, a
/// slot held while its file is locked (flock). The kernel lets go of a lock when its holder
/// closes the file or dies, so a killed cxllab never keeps a slot. A waiter sleeps on inotify
/// until some holder closes its slot file, then tries the locks again.
public final class HostSlotFiles: Sendable {
    public let folder: String
    public let count: Int

    /// Nil when the folder cannot be made or written (another user's, a read-only /run): slots
    /// are then this process's own only.
    public init?(folder: String, count: Int) {
        self.folder = folder
        self.count = max(1, count)
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        } catch {
            return nil
        }
        guard access(folder, W_OK) == 0 else { return nil }
    }

    func path(_ index: Int) -> String { folder + "/slot-\(index)" }

    /// A slot's lock if one is free now, else nil; the descriptor is the slot (close it to give
    /// the slot back).
    public func tryTake() -> Int32? {
        for index in 0..<count {
            let descriptor = open(path(index), O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            guard descriptor >= 0 else { continue }
            if flock(descriptor, LOCK_EX | LOCK_NB) == 0 { return descriptor }
            close(descriptor)
        }
        return nil
    }

    /// Blocks until a slot is free and takes it (call it off the cooperative pool). Nil when no
    /// slot file can be opened at all (the folder went away): the caller goes on without one.
    public func take() -> Int32? {
        let inotify = inotify_init1(Int32(IN_CLOEXEC))
        defer { if inotify >= 0 { close(inotify) } }
        // Watch before trying, so a slot given back between a try and the wait still wakes it.
        if inotify >= 0 { _ = inotify_add_watch(inotify, folder, UInt32(IN_CLOSE_WRITE)) }
        // The waiter's descriptors stay open while it waits: its own tries make no close events.
        let descriptors = (0..<count).map { open(path($0), O_RDWR | O_CREAT | O_CLOEXEC, 0o644) }
        var taken: Int32?
        defer { for descriptor in descriptors where descriptor >= 0 && descriptor != taken { close(descriptor) } }
        guard descriptors.contains(where: { $0 >= 0 }) else { return nil }
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            if let free = descriptors.first(where: { $0 >= 0 && flock($0, LOCK_EX | LOCK_NB) == 0 }) {
                taken = free
                return free
            }
            var entry = pollfd(fd: inotify, events: Int16(POLLIN), revents: 0)
            // The timeout only guards against a missed notification (no inotify): events wake it first.
            if poll(&entry, 1, inotify >= 0 ? 5000 : 500) > 0 { _ = read(inotify, &buffer, buffer.count) }
        }
    }
}
