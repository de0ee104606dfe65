/// The host <-> guest-agent protocol: newline-delimited JSON over a virtio-serial port.
///
/// - The host sends requests `{"id":N,"method":"...","params":{...}}`, one at a time per id.
/// - The agent answers every request exactly once: `{"id":N,"result":{...}}` or
///   `{"id":N,"error":{"code":"...","message":"..."}}`. A frame it cannot read (malformed,
///   over `maximumFrameBytes`, no id) gets an error with `"id":null`; the agent stays up.
/// - The agent sends events unprompted: `{"event":"hello",...}` when it starts and
///   `{"event":"heartbeat","seq":N,"uptime":S}` every `heartbeatInterval`, also while a
///   request runs, so the host can tell a hung guest from a slow one.
/// - The first request is `hello` with the host's protocol version; the agent refuses others.
public enum AgentProtocol {
    public static let version: Int64 = 1
    public static let maximumFrameBytes = 1 << 20
    /// What the host reads of one frame from the agent (a reply carries a tool's output).
    public static let maximumReplyBytes = 16 << 20
    public static let channelName = "org.cxllab.agent.0"
    public static let heartbeatIntervalSeconds = 1
    /// On the kernel command line, lets the agent run arbitrary shell commands (interactive
    /// labs and script scenarios); without it `shell` is refused.
    public static let shellFlag = "cxllab.agent.shell=1"
}

public enum AgentMethod: String, Sendable, CaseIterable {
    case hello
    case info
    case loadModule = "load_module"
    case unloadModule = "unload_module"
    case listDevices = "list_devices"
    case bind
    case unbind
    case newID = "new_id"
    case removeID = "remove_id"
    case driversProbe = "drivers_probe"
    case sysfsRead = "sysfs_read"
    case sysfsWrite = "sysfs_write"
    case runTool = "run_tool"
    case shell
    case dmesgMark = "dmesg_mark"
    case dmesgSince = "dmesg_since"
    case powerOff = "power_off"
    case coldplug
    case concurrently
    case runTest = "run_test"
}

public struct AgentRequest: Sendable, Hashable {
    public let id: Int64
    public let method: AgentMethod
    public let params: [String: JSONValue]

    public init(id: Int64, method: AgentMethod, params: [String: JSONValue] = [:]) {
        self.id = id
        self.method = method
        self.params = params
    }

    public var line: String {
        JSONValue.object(["id": .int(id), "method": .string(method.rawValue), "params": .object(params)]).serialized + "\n"
    }

    /// Reads a request frame; the error says what reply the agent owes (and to which id).
    public static func parse(_ frame: [UInt8]) -> Result<AgentRequest, AgentFailure> {
        guard frame.count <= AgentProtocol.maximumFrameBytes else {
            return .failure(AgentFailure(id: nil, error: AgentError(.frameTooLarge, "frame of \(frame.count) bytes; the limit is \(AgentProtocol.maximumFrameBytes)")))
        }
        let value: JSONValue
        do {
            value = try JSONValue(parsing: frame)
        } catch {
            return .failure(AgentFailure(id: nil, error: AgentError(.malformed, error.description)))
        }
        guard case .object(let fields) = value else {
            return .failure(AgentFailure(id: nil, error: AgentError(.malformed, "a request is a JSON object")))
        }
        guard let id = fields["id"]?.intValue else {
            return .failure(AgentFailure(id: nil, error: AgentError(.malformed, "a request needs an integer id")))
        }
        guard let name = fields["method"]?.stringValue else {
            return .failure(AgentFailure(id: id, error: AgentError(.malformed, "a request needs a method")))
        }
        guard let method = AgentMethod(rawValue: name) else {
            return .failure(AgentFailure(id: id, error: AgentError(.unknownMethod, "unknown method '\(name)'")))
        }
        let params: [String: JSONValue]
        switch fields["params"] {
        case nil, .null?: params = [:]
        case .object(let object)?: params = object
        default: return .failure(AgentFailure(id: id, error: AgentError(.badParams, "params must be an object")))
        }
        return .success(AgentRequest(id: id, method: method, params: params))
    }
}

public struct AgentError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        public static let malformed = Code(rawValue: "malformed")
        public static let frameTooLarge = Code(rawValue: "frame_too_large")
        public static let unknownMethod = Code(rawValue: "unknown_method")
        public static let badParams = Code(rawValue: "bad_params")
        public static let unsupportedVersion = Code(rawValue: "unsupported_version")
        public static let notHandshaken = Code(rawValue: "no_handshake")
        public static let notPermitted = Code(rawValue: "not_permitted")
        /// The operation ran and failed (a sysfs write refused, a module that would not load).
        public static let failed = Code(rawValue: "failed")
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }

    var json: JSONValue { ["code": .string(code.rawValue), "message": .string(message)] }
}

/// An error reply the agent owes, with the request id it answers (nil when unreadable).
public struct AgentFailure: Error, Sendable, Hashable {
    public let id: Int64?
    public let error: AgentError

    public init(id: Int64?, error: AgentError) {
        self.id = id
        self.error = error
    }
}

/// What the agent sends.
public enum AgentFrame: Sendable, Hashable {
    case reply(id: Int64?, Result<JSONValue, AgentError>)
    case hello(version: Int64, agent: String, kernel: String)
    case heartbeat(sequence: Int64, uptime: Double)
    /// Output of a running `shell` or `run_tool` request sent with `"stream": true`, before its reply.
    case output(id: Int64, stream: String, data: String)

    public var line: String {
        let value: JSONValue
        switch self {
        case .reply(let id, .success(let result)):
            value = ["id": id.map { .int($0) } ?? .null, "result": result]
        case .reply(let id, .failure(let error)):
            value = ["id": id.map { .int($0) } ?? .null, "error": error.json]
        case .hello(let version, let agent, let kernel):
            value = ["event": "hello", "version": .int(version), "agent": .string(agent), "kernel": .string(kernel)]
        case .heartbeat(let sequence, let uptime):
            value = ["event": "heartbeat", "seq": .int(sequence), "uptime": .double(uptime)]
        case .output(let id, let stream, let data):
            value = ["event": "output", "id": .int(id), "stream": .string(stream), "data": .string(data)]
        }
        return value.serialized + "\n"
    }

    public static func parse(_ line: [UInt8]) throws(AgentError) -> AgentFrame {
        let value: JSONValue
        do { value = try JSONValue(parsing: line) } catch { throw AgentError(.malformed, "agent sent unreadable frame: \(error)") }
        if let event = value["event"]?.stringValue {
            switch event {
            case "hello":
                return .hello(version: value["version"]?.intValue ?? 0, agent: value["agent"]?.stringValue ?? "",
                              kernel: value["kernel"]?.stringValue ?? "")
            case "heartbeat":
                return .heartbeat(sequence: value["seq"]?.intValue ?? 0, uptime: value["uptime"]?.doubleValue ?? 0)
            case "output":
                return .output(id: value["id"]?.intValue ?? -1, stream: value["stream"]?.stringValue ?? "stdout",
                               data: value["data"]?.stringValue ?? "")
            default:
                throw AgentError(.malformed, "unknown event '\(event)'")
            }
        }
        let id = value["id"]?.intValue
        if let error = value["error"] {
            return .reply(id: id, .failure(AgentError(Code(rawValue: error["code"]?.stringValue ?? "failed"), error["message"]?.stringValue ?? "")))
        }
        guard let result = value["result"] else { throw AgentError(.malformed, "a reply needs a result or an error") }
        return .reply(id: id, .success(result))
    }

    private typealias Code = AgentError.Code
}
