import Foundation
import HostSupport
import Testing

/// Blocking work waits on threads of its own: the cooperative pool (a thread per core) keeps
/// serving async tasks meanwhile.
@Suite struct OffThePoolTests {
    @Test(.timeLimit(.minutes(1))) func blockingWorkLeavesThePoolFree() async throws {
        let blockers = ProcessInfo.processInfo.activeProcessorCount * 2
        let clock = ContinuousClock()
        let started = clock.now
        async let blocked: [Int] = withTaskGroup(of: Int.self) { group in
            for index in 0..<blockers {
                group.addTask { await offThePool { usleep(1_500_000); return index } }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        // Were the sleeps on the pool, this task would wait for them to end (1.5 s or more).
        try await Task.sleep(for: .milliseconds(100))
        let answered = await Task { clock.now }.value
        #expect(answered - started < .seconds(1))
        #expect(await blocked.sorted() == Array(0..<blockers))
    }

    @Test func errorsComeBack() async {
        struct Refused: Error {}
        await #expect(throws: Refused.self) { try await offThePool { () throws -> Int in throw Refused() } }
    }
}
