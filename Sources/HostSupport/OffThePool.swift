import Foundation

/// Runs blocking work (a C call that may wait for a daemon, a condition wait, a child's exit)
/// on a thread of its own and resumes the caller when it ends. Swift's cooperative pool has
/// as many threads as cores, two here: one blocking call on it stalls half of every async
/// task in the process, a hung libvirtd all of them.
public func offThePool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try work() }) }
    }
}

/// The same for work that cannot fail.
public func offThePool<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread.detachNewThread { continuation.resume(returning: work()) }
    }
}
