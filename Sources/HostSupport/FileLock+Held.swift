import Foundation

extension FileLock {
    /// A lock held past one call: a claim on a cache entry for as long as something uses it
    /// (a saved machine while a lab runs from it). The lock goes with `release()`, or with the
    /// process.
    public final class Held: Sendable {
        public let path: String
        private let descriptor: Int32

        init(path: String, descriptor: Int32) {
            self.path = path
            self.descriptor = descriptor
        }

        deinit { close(descriptor) }

        /// Lets the lock go (closing the descriptor does); idempotent through deinit.
        public func release() { flock(descriptor, LOCK_UN) }
    }

    /// The lock on `path` (made when missing), when no one holds it now; nil when another
    /// descriptor, of this process or another, holds it. Never waits.
    public static func tryHold(_ path: String) throws -> Held? {
        let descriptor = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO, userInfo: [NSLocalizedDescriptionKey: "cannot open the lock file \(path)"])
        }
        while flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            if errno == EINTR { continue }
            close(descriptor)
            return nil
        }
        return Held(path: path, descriptor: descriptor)
    }
}
