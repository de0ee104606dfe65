/// Coldplug as udev does it: the agent listens for the kernel's uevents, replays `add` to every
/// device of a bus, and for each add event with a MODALIAS runs `modprobe -b MODALIAS`,
/// several at once (systemd-udevd runs one worker per event). Replies when every replayed
/// event has been handled and no worker is left.
extension AgentCalls {
    public struct Coldplug: AgentCall {
        public typealias Reply = ColdplugReport
        public let bus: String
        public let workers: Int
        public let timeoutSeconds: Int
        /// Module options for modprobe, as a real system keeps them in /etc/modprobe.d: the
        /// agent writes them there first (module name to `name=value` parameters).
        public let options: [String: [String]]
        public var method: AgentMethod { .coldplug }

        public init(bus: String, workers: Int, timeoutSeconds: Int = 60, options: [String: [String]] = [:]) {
            self.bus = bus
            self.workers = workers
            self.timeoutSeconds = timeoutSeconds
            self.options = options
        }

        public init(params: [String: JSONValue]) throws(AgentError) {
            guard let bus = params["bus"]?.stringValue else { throw AgentError(.badParams, "coldplug needs a bus") }
            self.init(bus: bus, workers: Int(clamping: params["workers"]?.intValue ?? 4), timeoutSeconds: Int(clamping: params["timeout"]?.intValue ?? 60),
                      options: ModuleOptions.decode(params["options"]))
        }

        public var params: [String: JSONValue] {
            var params: [String: JSONValue] = ["bus": .string(bus), "workers": .int(Int64(workers)), "timeout": .int(Int64(timeoutSeconds))]
            if !options.isEmpty { params["options"] = ModuleOptions.encode(options) }
            return params
        }

        public static func reply(from result: JSONValue) -> ColdplugReport { ColdplugReport(json: result) }
    }
}

/// Module options (module name to `name=value` parameters) as requests carry them: a JSON
/// object of string arrays.
enum ModuleOptions {
    static func decode(_ value: JSONValue?) -> [String: [String]] {
        guard case .object(let fields)? = value else { return [:] }
        return fields.mapValues { ($0.arrayValue ?? []).compactMap(\.stringValue) }
    }

    static func encode(_ options: [String: [String]]) -> JSONValue {
        .object(options.mapValues { .array($0.map { .string($0) }) })
    }
}

/// What one modprobe of a coldplug did, with times in seconds from the start of the call.
public struct ColdplugWorker: Sendable, Hashable, Codable {
    public let device: String
    public let modalias: String
    public let start: Double
    public let end: Double
    public let status: Int32

    public init(device: String, modalias: String, start: Double, end: Double, status: Int32) {
        self.device = device
        self.modalias = modalias
        self.start = start
        self.end = end
        self.status = status
    }
}

public struct ColdplugReport: Sendable, Hashable, Codable {
    public let workers: [ColdplugWorker]
    /// Devices whose add event never came back before the deadline.
    public let missing: [String]

    public init(workers: [ColdplugWorker], missing: [String]) {
        self.workers = workers
        self.missing = missing
    }

    init(json: JSONValue) {
        workers = (json["workers"]?.arrayValue ?? []).compactMap { item in
            guard let device = item["device"]?.stringValue, let alias = item["modalias"]?.stringValue else { return nil }
            return ColdplugWorker(device: device, modalias: alias, start: item["start"]?.doubleValue ?? 0, end: item["end"]?.doubleValue ?? 0,
                                  status: Int32(clamping: item["status"]?.intValue ?? -1))
        }
        missing = (json["missing"]?.arrayValue ?? []).compactMap(\.stringValue)
    }

    public var json: JSONValue {
        ["workers": .array(workers.map { worker in
            ["device": .string(worker.device), "modalias": .string(worker.modalias), "start": .double(worker.start),
             "end": .double(worker.end), "status": .int(Int64(worker.status))]
        }), "missing": .array(missing.map { .string($0) })]
    }
}
