import Foundation
import HostSupport
import Testing

/// Blocking work waits on threads of its own: the cooperative pool (a thread per core) keeps
/// serving async tasks meanwhile.
@Suite struct OffThePoolTests {
    /// Twice as many blocking waits as the pool has threads, released only by a task on the
    /// pool: were the waits on the pool, that task could never run and the test would hang
    /// until its time limit.
    @Test(.timeLimit(.minutes(1))) func blockingWorkLeavesThePoolFree() async {
        let blockers = ProcessInfo.processInfo.activeProcessorCount * 2
        let gate = DispatchSemaphore(value: 0)
        async let blocked: [Int] = withTaskGroup(of: Int.self) { group in
            for index in 0..<blockers {
                group.addTask { await offThePool { gate.wait(); return index } }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        await Task { for _ in 0..<blockers { gate.signal() } }.value
        #expect(await blocked.sorted() == Array(0..<blockers))
    }

    @Test func errorsComeBack() async {
        struct Refused: Error {}
        await #expect(throws: Refused.self) { try await offThePool { () throws -> Int in throw Refused() } }
    }
}
