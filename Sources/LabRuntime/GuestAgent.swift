import AgentProtocol
import Foundation
import Synchronization

/// What a scenario needs of a guest: typed agent calls. A `RunningLab` is one (a real guest,
/// whatever its `LabBackend`); a `TranscriptAgent` another (a recorded session, for tests
/// without a VM).
public protocol GuestAgent: Sendable {
    /// The typed reply, or `AgentConnectionError.agent` when the agent refused or the
    /// operation failed in the guest; other errors mean the guest or its channel is gone.
    func send<Call: AgentCall>(_ call: Call, timeout: Duration) async throws -> Call.Reply
}

extension GuestAgent {
    public func send<Call: AgentCall>(_ call: Call) async throws -> Call.Reply {
        try await send(call, timeout: .seconds(120))
    }
}

/// A guest that answers from a recorded session: each request must be the next one recorded
/// (method and parameters), and gets the reply recorded for it. A scenario whose steps changed
/// fails here, naming the first request that differs. The session's handshake (`hello`) is the
/// lab's, not the scenario's, and is left out.
public final class TranscriptAgent: GuestAgent {
    public struct Mismatch: Error, CustomStringConvertible {
        public let description: String
    }

    private struct Recorded: Sendable {
        let method: String
        let params: JSONValue
        let reply: Result<JSONValue, AgentError>
    }

    private let recorded: [Recorded]
    private let position = Mutex(0)
    public let source: String

    /// Reads the JSON lines that `SessionTranscript.jsonLines` writes.
    public init(jsonLines text: String, source: String = "transcript") throws {
        self.source = source
        var recorded: [Recorded] = []
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
            let value: JSONValue
            do { value = try JSONValue(parsing: Array(line.utf8)) } catch {
                throw Mismatch(description: "\(source):\(index + 1): not JSON: \(error)")
            }
            guard let method = value["method"]?.stringValue else { throw Mismatch(description: "\(source):\(index + 1): no method") }
            if method == AgentMethod.hello.rawValue { continue }
            let reply: Result<JSONValue, AgentError>
            if let error = value["error"] {
                reply = .failure(AgentError(AgentError.Code(rawValue: error["code"]?.stringValue ?? "failed"), error["message"]?.stringValue ?? ""))
            } else {
                reply = .success(value["result"] ?? .null)
            }
            recorded.append(Recorded(method: method, params: value["params"] ?? .object([:]), reply: reply))
        }
        self.recorded = recorded
    }

    public convenience init(file: String) throws {
        try self.init(jsonLines: try String(contentsOfFile: file, encoding: .utf8), source: (file as NSString).lastPathComponent)
    }

    /// Requests answered so far, and recorded in all.
    public var consumed: Int { position.withLock { $0 } }
    public var count: Int { recorded.count }

    public func send<Call: AgentCall>(_ call: Call, timeout: Duration) async throws -> Call.Reply {
        let index = position.withLock { position in
            defer { position += 1 }
            return position
        }
        guard index < recorded.count else {
            throw Mismatch(description: "\(source): request \(index + 1) (\(call.method.rawValue) \(JSONValue.object(call.params).serialized)) "
                + "is past the \(recorded.count) recorded")
        }
        let entry = recorded[index]
        guard entry.method == call.method.rawValue, entry.params == .object(call.params) else {
            throw Mismatch(description: "\(source): request \(index + 1) differs: sent \(call.method.rawValue) \(JSONValue.object(call.params).serialized), "
                + "recorded \(entry.method) \(entry.params.serialized)")
        }
        switch entry.reply {
        case .success(let result): return Call.reply(from: result)
        case .failure(let error): throw AgentConnectionError.agent(error)
        }
    }
}
