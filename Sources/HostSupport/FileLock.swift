import Foundation

/// An advisory lock on a file (flock), held while `body` runs. It serializes work on shared
/// cache entries between tasks of one process (each call opens its own descriptor) and
/// between cxllab processes. The wait happens off the cooperative thread pool.
public enum FileLock {
    public static func withLock<T: Sendable>(
        _ path: String, exclusive: Bool = true, _ body: @Sendable () async throws -> T
    ) async throws -> T {
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path])
        }
        defer { close(descriptor) }
        let operation = exclusive ? LOCK_EX : LOCK_SH
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                while flock(descriptor, operation) != 0 && errno == EINTR {}
                continuation.resume()
            }
        }
        defer { flock(descriptor, LOCK_UN) }
        return try await body()
    }
}
