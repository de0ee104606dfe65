import AgentProtocol
import Foundation
import GuestImage
import Synchronization
import Topology
import Kernels

/// What one lab session started from and every request it sent the agent with the reply it
/// got, in order: enough to run the same guest work again without cxllab (`cxllab bench`
/// replays the requests in a guest that QEMU runs directly), and to run a scenario again with
/// no guest at all (`TranscriptAgent`).
public final class SessionTranscript: AgentTrafficObserver {
    public struct Launch: Sendable {
        public let topology: Topology
        public let kernel: Kernel
        public let image: BuiltImage
        public let kernelArguments: [String]
    }

    /// One request and the reply it got (nil while none came).
    public struct Exchange: Sendable, Hashable {
        public let request: AgentRequest
        public var reply: Result<JSONValue, AgentError>?
        /// When it was sent and how long its reply took: where a scenario spends its guest time.
        public var sent: ContinuousClock.Instant? = nil
        public var seconds: Double? = nil
    }

    private struct State {
        var exchanges: [Exchange] = []
        var indexByID: [Int64: Int] = [:]
        var launch: Launch?
    }

    private let state = Mutex(State())

    public init() {}

    func recordLaunch(_ launch: Launch) { state.withLock { $0.launch = launch } }

    public func sent(_ request: AgentRequest) {
        state.withLock { state in
            state.indexByID[request.id] = state.exchanges.count
            state.exchanges.append(Exchange(request: request, reply: nil, sent: .now))
        }
    }

    public func received(id: Int64, _ reply: Result<JSONValue, AgentError>) {
        state.withLock { state in
            guard let index = state.indexByID.removeValue(forKey: id) else { return }
            state.exchanges[index].reply = reply
            if let sent = state.exchanges[index].sent {
                let elapsed = ContinuousClock.now - sent
                state.exchanges[index].seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            }
        }
    }

    public var launch: Launch? { state.withLock { $0.launch } }
    public var exchanges: [Exchange] { state.withLock { $0.exchanges } }
    /// The request frames as sent, newline-terminated.
    public var requests: [String] { exchanges.map(\.request.line) }
    /// Replies that were errors (a scenario expects some: a module that is not loaded, ...).
    public var errorReplies: Int {
        exchanges.filter { if case .failure? = $0.reply { true } else { false } }.count
    }

    /// One line per exchange: `{"method":..., "params":..., "result":...}` or `"error":{...}`,
    /// the format `TranscriptAgent` reads (`cxllab run --transcript FILE` writes it).
    public var jsonLines: String {
        exchanges.map { exchange -> String in
            var fields: [String: JSONValue] = ["method": .string(exchange.request.method.rawValue), "params": .object(exchange.request.params)]
            switch exchange.reply {
            case .success(let result)?: fields["result"] = result
            case .failure(let error)?: fields["error"] = ["code": .string(error.code.rawValue), "message": .string(error.message)]
            case nil: fields["error"] = ["code": "no_reply", "message": "no reply came"]
            }
            // Read by people profiling a scenario; `TranscriptAgent` ignores it.
            if let seconds = exchange.seconds { fields["seconds"] = .double((seconds * 1000).rounded() / 1000) }
            return JSONValue.object(fields).serialized + "\n"
        }.joined()
    }
}
