/// An operation that did not finish in time.
public struct DeadlineExceeded: Error, Sendable, CustomStringConvertible {
    public let what: String
    public let limit: Duration
    public init(what: String, limit: Duration) {
        self.what = what
        self.limit = limit
    }
    public var description: String { "\(what) did not happen within \(Int(limit.seconds.rounded())) s" }
}

/// Runs `operation`, cancelling it and throwing `DeadlineExceeded` when `limit` passes first.
/// The operation must honour cancellation (async sequences and ProcessRunner do).
public func withDeadline<T: Sendable>(
    _ limit: Duration,
    what: String,
    _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(for: limit)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next() else { throw DeadlineExceeded(what: what, limit: limit) }
        guard let value = first else { throw DeadlineExceeded(what: what, limit: limit) }
        return value
    }
}
