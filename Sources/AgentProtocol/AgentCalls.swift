/// Typed requests: each names its method, spells its parameter keys once (the host encodes
/// with `params`, the agent decodes with `init(params:)`), and says what its reply is.
public protocol AgentCall: Sendable {
    associatedtype Reply: Sendable
    var method: AgentMethod { get }
    var params: [String: JSONValue] { get }
    /// The typed reply from the `result` the agent sent.
    static func reply(from result: JSONValue) -> Reply
}

/// The reply of requests that only succeed or fail.
public struct Acknowledged: Sendable, Hashable {
    public init() {}
    public static let json: JSONValue = ["ok": true]
}

extension AgentCall where Reply == Acknowledged {
    public static func reply(from result: JSONValue) -> Acknowledged { Acknowledged() }
}

extension AgentCall where Reply == ToolOutcome {
    public static func reply(from result: JSONValue) -> ToolOutcome { ToolOutcome(json: result) }
}

private func badParams(_ message: String) -> AgentError { AgentError(.badParams, message) }

private func strings(_ value: JSONValue?) -> [String] { value?.arrayValue?.compactMap(\.stringValue) ?? [] }

public enum AgentCalls {
    /// The first request: the host's protocol version.
    public struct Hello: AgentCall {
        public let version: Int64
        public var method: AgentMethod { .hello }
        public init(version: Int64 = AgentProtocol.version) { self.version = version }
        public init(params: [String: JSONValue]) throws(AgentError) {
            guard let version = params["version"]?.intValue else { throw badParams("hello needs the host's protocol version") }
            self.version = version
        }
        public var params: [String: JSONValue] { ["version": .int(version)] }
        public static func reply(from result: JSONValue) -> HelloReply { HelloReply(json: result) }
    }

    /// The kernel, uptime and loaded modules.
    public struct Info: AgentCall {
        public var method: AgentMethod { .info }
        public init() {}
        public var params: [String: JSONValue] { [:] }
        public static func reply(from result: JSONValue) -> GuestInfo { GuestInfo(json: result) }
    }

    /// `modprobe NAME PARAMS...`.
    public struct LoadModule: AgentCall {
        public typealias Reply = ToolOutcome
        public let name: String
        public let parameters: [String]
        public var method: AgentMethod { .loadModule }
        public init(name: String, parameters: [String] = []) {
            self.name = name
            self.parameters = parameters
        }
        public init(params: [String: JSONValue]) throws(AgentError) {
            guard let name = params["name"]?.stringValue else { throw badParams("load_module needs a module name") }
            self.init(name: name, parameters: strings(params["params"]))
        }
        public var params: [String: JSONValue] { ["name": .string(name), "params": .array(parameters.map { .string($0) })] }
    }

    /// `rmmod NAME`.
    public struct UnloadModule: AgentCall {
        public typealias Reply = ToolOutcome
        public let name: String
        public var method: AgentMethod { .unloadModule }
        public init(name: String) { self.name = name }
        public init(params: [String: JSONValue]) throws(AgentError) {
            guard let name = params["name"]?.stringValue else { throw badParams("unload_module needs a module name") }
            self.init(name: name)
        }
        public var params: [String: JSONValue] { ["name": .string(name)] }
    }

    /// Every device of the dax, nd and cxl buses with its driver.
    public struct ListDevices: AgentCall {
        /// One bus (dax, nd or cxl), or nil for all of them.
        public let bus: String?
        public var method: AgentMethod { .listDevices }
        public init(bus: String? = nil) { self.bus = bus }
        public init(params: [String: JSONValue]) throws(AgentError) { self.init(bus: params["bus"]?.stringValue) }
        public var params: [String: JSONValue] { bus.map { ["bus": .string($0)] } ?? [:] }
        public static func reply(from result: JSONValue) -> [BusDevice] {
            (result["devices"]?.arrayValue ?? []).compactMap(BusDevice.init(json:))
        }
    }

    /// A write to one of a bus's control files: bind, unbind, new_id, remove_id, drivers_probe.
    public struct Bus: AgentCall {
        public enum Operation: String, Sendable, CaseIterable {
            case bind, unbind, newID, removeID, driversProbe

            public var method: AgentMethod {
                switch self {
                case .bind: .bind
                case .unbind: .unbind
                case .newID: .newID
                case .removeID: .removeID
                case .driversProbe: .driversProbe
                }
            }

            public init?(method: AgentMethod) {
                guard let found = Self.allCases.first(where: { $0.method == method }) else { return nil }
                self = found
            }
        }

        public let operation: Operation
        public let bus: String
        public let device: String?
        public let driver: String?
        public var method: AgentMethod { operation.method }

        public init(_ operation: Operation, bus: String, device: String?, driver: String? = nil) {
            self.operation = operation
            self.bus = bus
            self.device = device
            self.driver = driver
        }

        public init(method: AgentMethod, params: [String: JSONValue]) throws(AgentError) {
            guard let operation = Operation(method: method) else { throw badParams("\(method.rawValue) is not a bus operation") }
            guard let bus = params["bus"]?.stringValue else { throw badParams("\(method.rawValue) needs a bus") }
            self.init(operation, bus: bus, device: params["device"]?.stringValue, driver: params["driver"]?.stringValue)
        }

        public var params: [String: JSONValue] {
            var params: [String: JSONValue] = ["bus": .string(bus)]
            if let device { params["device"] = .string(device) }
            if let driver { params["driver"] = .string(driver) }
            return params
        }

        public static func reply(from result: JSONValue) -> BusReply { BusReply(json: result) }
    }

    public struct SysfsRead: AgentCall {
        public let path: String
        public var method: AgentMethod { .sysfsRead }
        public init(path: String) { self.path = path }
        public init(params: [String: JSONValue]) throws(AgentError) {
            guard let path = params["path"]?.stringValue else { throw badParams("sysfs_read needs a path under /sys") }
            self.init(path: path)
        }
        public var params: [String: JSONValue] { ["path": .string(path)] }
        public static func reply(from result: JSONValue) -> String { result["value"]?.stringValue ?? "" }
    }

    public struct SysfsWrite: AgentCall {
        public typealias Reply = Acknowledged
        public let path: String
        public let value: String
        public var method: AgentMethod { .sysfsWrite }
        public init(path: String, value: String) {
            self.path = path
            self.value = value
        }
        public init(params: [String: JSONValue]) throws(AgentError) {
            guard let path = params["path"]?.stringValue, let value = params["value"]?.stringValue else {
                throw badParams("sysfs_write needs a path under /sys and a value")
            }
            self.init(path: path, value: value)
        }
        public var params: [String: JSONValue] { ["path": .string(path), "value": .string(value)] }
    }

    /// ndctl, daxctl or cxl with arguments; with `stream`, its output comes as it is written.
    public struct RunTool: AgentCall {
        public typealias Reply = ToolOutcome
        public let tool: String
        public let arguments: [String]
        public let timeoutSeconds: Int
        public let stream: Bool
        public var method: AgentMethod { .runTool }
        public init(_ tool: String, _ arguments: [String], timeoutSeconds: Int = 120, stream: Bool = false) {
            self.tool = tool
            self.arguments = arguments
            self.timeoutSeconds = timeoutSeconds
            self.stream = stream
        }
        public init(params: [String: JSONValue]) throws(AgentError) {
            guard let tool = params["tool"]?.stringValue else { throw badParams("run_tool needs a tool") }
            self.init(tool, strings(params["args"]), timeoutSeconds: Int(clamping: params["timeout"]?.intValue ?? 120),
                      stream: params["stream"]?.boolValue == true)
        }
        public var params: [String: JSONValue] {
            var params: [String: JSONValue] = ["tool": .string(tool), "args": .array(arguments.map { .string($0) }),
                                               "timeout": .int(Int64(timeoutSeconds))]
            if stream { params["stream"] = true }
            return params
        }
    }

    /// `/bin/sh -c COMMAND`, only in labs started with the shell flag.
    public struct Shell: AgentCall {
        public typealias Reply = ToolOutcome
        public let command: String
        public let timeoutSeconds: Int
        public let stream: Bool
        public var method: AgentMethod { .shell }
        public init(_ command: String, timeoutSeconds: Int = 120, stream: Bool = false) {
            self.command = command
            self.timeoutSeconds = timeoutSeconds
            self.stream = stream
        }
        public init(params: [String: JSONValue]) throws(AgentError) {
            guard let command = params["command"]?.stringValue else { throw badParams("shell needs a command") }
            self.init(command, timeoutSeconds: Int(clamping: params["timeout"]?.intValue ?? 120), stream: params["stream"]?.boolValue == true)
        }
        public var params: [String: JSONValue] {
            var params: [String: JSONValue] = ["command": .string(command), "timeout": .int(Int64(timeoutSeconds))]
            if stream { params["stream"] = true }
            return params
        }
    }

    /// The sequence number of the kernel log's newest record.
    public struct DmesgMark: AgentCall {
        public var method: AgentMethod { .dmesgMark }
        public init() {}
        public var params: [String: JSONValue] { [:] }
        public static func reply(from result: JSONValue) -> Int64 { result["mark"]?.intValue ?? -1 }
    }

    /// The kernel log's records after a mark.
    public struct DmesgSince: AgentCall {
        public let mark: Int64
        public var method: AgentMethod { .dmesgSince }
        public init(mark: Int64) { self.mark = mark }
        public init(params: [String: JSONValue]) throws(AgentError) {
            guard let mark = params["mark"]?.intValue else { throw badParams("dmesg_since needs a mark") }
            self.init(mark: mark)
        }
        public var params: [String: JSONValue] { ["mark": .int(mark)] }
        public static func reply(from result: JSONValue) -> [String] { (result["lines"]?.arrayValue ?? []).compactMap(\.stringValue) }
    }

    public struct PowerOff: AgentCall {
        public typealias Reply = Acknowledged
        public var method: AgentMethod { .powerOff }
        public init() {}
        public var params: [String: JSONValue] { [:] }
    }
}

/// The agent's answer to hello.
public struct HelloReply: Sendable, Hashable {
    public let version: Int64
    public let agent: String
    public let kernel: String
    public let shell: Bool

    public init(version: Int64, agent: String, kernel: String, shell: Bool) {
        self.version = version
        self.agent = agent
        self.kernel = kernel
        self.shell = shell
    }

    public init(json: JSONValue) {
        self.init(version: json["version"]?.intValue ?? 0, agent: json["agent"]?.stringValue ?? "",
                  kernel: json["kernel"]?.stringValue ?? "", shell: json["shell"]?.boolValue ?? false)
    }

    public var json: JSONValue { ["version": .int(version), "agent": .string(agent), "kernel": .string(kernel), "shell": .bool(shell)] }
}

/// What `info` reports of the guest.
public struct GuestInfo: Sendable, Hashable {
    public let kernel: String
    public let uptime: Double
    public let modules: [LoadedModule]

    public init(kernel: String, uptime: Double, modules: [LoadedModule]) {
        self.kernel = kernel
        self.uptime = uptime
        self.modules = modules
    }

    public init(json: JSONValue) {
        self.init(kernel: json["kernel"]?.stringValue ?? "", uptime: json["uptime"]?.doubleValue ?? 0,
                  modules: (json["modules"]?.arrayValue ?? []).compactMap(LoadedModule.init(json:)))
    }

    public var json: JSONValue { ["kernel": .string(kernel), "uptime": .double(uptime), "modules": .array(modules.map(\.json))] }
}

/// After a bus operation: the device's driver now, and for an unbind whether it was bound.
public struct BusReply: Sendable, Hashable {
    public let driver: String?
    public let wasBound: Bool

    public init(driver: String?, wasBound: Bool = true) {
        self.driver = driver
        self.wasBound = wasBound
    }

    public init(json: JSONValue) {
        self.init(driver: json["driver"]?.stringValue, wasBound: json["was_bound"]?.boolValue ?? true)
    }

    public var json: JSONValue {
        var fields: [String: JSONValue] = ["ok": true, "driver": driver.map { .string($0) } ?? .null]
        if !wasBound { fields["was_bound"] = false }
        return .object(fields)
    }
}
