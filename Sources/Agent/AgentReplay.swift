import AgentProtocol

/// Runs recorded requests in the guest with no host at the other end: the same handler, the
/// same steps, in order, then a summary line on the console. `cxllab bench` uses it to time a
/// cell's guest work under QEMU alone.
public enum AgentReplay {
    public struct Summary: Sendable, Equatable {
        public var requests = 0
        public var errorReplies = 0
        public var seconds = 0.0

        /// The console line the host looks for.
        public var line: String {
            "cxllab-replay: done: \(requests) requests, \(errorReplies) error replies, \(Int(seconds * 1000)) ms"
        }
    }

    /// Replays every line of `text`; stops after a power_off request has been answered.
    public static func run(_ text: String, handler: AgentHandler) -> Summary {
        var summary = Summary()
        // A recording starts after the handshake (the scenario's own requests), and there is
        // no host to shake hands with: the replay stands in for it.
        handler.handshaken = true
        let start = Spawn.monotonicSeconds()
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            summary.requests += 1
            if case .reply(_, .failure) = handler.reply(to: Array(line.utf8)) { summary.errorReplies += 1 }
            if handler.powerOffRequested { break }
        }
        summary.seconds = Spawn.monotonicSeconds() - start
        return summary
    }
}
