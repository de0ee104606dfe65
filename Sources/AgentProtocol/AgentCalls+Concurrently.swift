/// Several programs released together, each after its own delay: what a race round does in
/// the guest. The agent sets everything up first (pipes, the registration trace), takes one
/// instant as the release, starts each program at release + its delay, and replies when all
/// have ended or the deadline has passed (then it kills what is left, with its children).
/// Times in the reply are seconds from the release on the guest's monotonic clock.
extension AgentCalls {
    public struct Concurrently: AgentCall {
        public typealias Reply = ConcurrentReport
        public let operations: [ConcurrentOperation]
        public let timeoutSeconds: Int
        /// Record the drivers that register on this bus while the operations run (a kprobe on
        /// the kernel's bus_add_driver, read from tracefs).
        public let traceBus: String?
        /// Module options the agent writes to /etc/modprobe.d/cxllab.conf first, as a real
        /// system keeps them: modprobe of an alias (udev's way) finds them there.
        public let options: [String: [String]]
        public var method: AgentMethod { .concurrently }

        public init(operations: [ConcurrentOperation], timeoutSeconds: Int = 30, traceBus: String? = nil, options: [String: [String]] = [:]) {
            self.operations = operations
            self.options = options
            self.timeoutSeconds = timeoutSeconds
            self.traceBus = traceBus
        }

        public init(params: [String: JSONValue]) throws(AgentError) {
            guard let items = params["operations"]?.arrayValue, !items.isEmpty else {
                throw AgentError(.badParams, "concurrently needs a list of operations")
            }
            var operations: [ConcurrentOperation] = []
            for item in items {
                guard let arguments = item["arguments"]?.arrayValue?.compactMap(\.stringValue), !arguments.isEmpty else {
                    throw AgentError(.badParams, "each operation of concurrently needs its arguments (program first)")
                }
                operations.append(ConcurrentOperation(arguments, delayMicroseconds: Int(clamping: item["delay_us"]?.intValue ?? 0)))
            }
            self.init(operations: operations, timeoutSeconds: Int(clamping: params["timeout"]?.intValue ?? 30),
                      traceBus: params["trace_bus"]?.stringValue, options: ModuleOptions.decode(params["options"]))
        }

        public var params: [String: JSONValue] {
            var params: [String: JSONValue] = [
                "operations": .array(operations.map { ["arguments": .array($0.arguments.map { .string($0) }), "delay_us": .int(Int64($0.delayMicroseconds))] }),
                "timeout": .int(Int64(timeoutSeconds)),
            ]
            if let traceBus { params["trace_bus"] = .string(traceBus) }
            if !options.isEmpty { params["options"] = ModuleOptions.encode(options) }
            return params
        }

        public static func reply(from result: JSONValue) -> ConcurrentReport { ConcurrentReport(json: result) }
    }
}

/// One program of a concurrent release: modprobe or one of the agent's tools, never a shell.
public struct ConcurrentOperation: Sendable, Hashable, Codable {
    public let arguments: [String]
    public let delayMicroseconds: Int

    public init(_ arguments: [String], delayMicroseconds: Int) {
        self.arguments = arguments
        self.delayMicroseconds = delayMicroseconds
    }

    public var program: String { arguments.first ?? "" }
    public var commandLine: String { arguments.joined(separator: " ") }
}

/// What one operation did: when it started and ended (seconds from the release), its exit
/// status (124 when the deadline killed it) and the tail of its output.
public struct ConcurrentResult: Sendable, Hashable, Codable {
    public let start: Double
    public let end: Double
    public let status: Int32
    public let output: String

    public init(start: Double, end: Double, status: Int32, output: String) {
        self.start = start
        self.end = end
        self.status = status
        self.output = output
    }
}

/// A driver that registered on the traced bus, at this time (seconds from the release).
public struct DriverRegistration: Sendable, Hashable, Codable {
    public let driver: String
    public let time: Double

    public init(driver: String, time: Double) {
        self.driver = driver
        self.time = time
    }
}

public struct ConcurrentReport: Sendable, Hashable, Codable {
    /// In the order of the request's operations.
    public let results: [ConcurrentResult]
    /// In the order the kernel registered them; empty when nothing was traced.
    public let registrations: [DriverRegistration]
    /// Why no trace was taken (no tracefs, no kprobe events), when one was asked for.
    public let traceProblem: String?
    /// True when the deadline passed before every operation ended.
    public let timedOut: Bool

    public init(results: [ConcurrentResult], registrations: [DriverRegistration], traceProblem: String?, timedOut: Bool) {
        self.results = results
        self.registrations = registrations
        self.traceProblem = traceProblem
        self.timedOut = timedOut
    }

    init(json: JSONValue) {
        results = (json["results"]?.arrayValue ?? []).map { item in
            ConcurrentResult(start: item["start"]?.doubleValue ?? 0, end: item["end"]?.doubleValue ?? 0,
                             status: Int32(clamping: item["status"]?.intValue ?? -1), output: item["output"]?.stringValue ?? "")
        }
        registrations = (json["registrations"]?.arrayValue ?? []).compactMap { item in
            item["driver"]?.stringValue.map { DriverRegistration(driver: $0, time: item["time"]?.doubleValue ?? 0) }
        }
        traceProblem = json["trace_problem"]?.stringValue
        timedOut = json["timed_out"]?.boolValue ?? false
    }

    public var json: JSONValue {
        var fields: [String: JSONValue] = [
            "results": .array(results.map {
                ["start": .double($0.start), "end": .double($0.end), "status": .int(Int64($0.status)), "output": .string($0.output)]
            }),
            "registrations": .array(registrations.map { ["driver": .string($0.driver), "time": .double($0.time)] }),
            "timed_out": .bool(timedOut),
        ]
        if let traceProblem { fields["trace_problem"] = .string(traceProblem) }
        return .object(fields)
    }
}
