/// One program of a test suite (ndctl's meson tests, installed into images under
/// `/usr/lib/cxllab/`), run in the guest to its end or its deadline. Unlike `shell` it needs no
/// shell flag, so the agent runs only programs under that folder. A suite's test may leave a
/// daemon behind holding its output: the call ends when the program itself has exited, and
/// what is left of its process group is killed. Only the tail of the output comes back (a
/// test can write megabytes), stdout and stderr merged in the order written.
extension AgentCalls {
    public struct RunTest: AgentCall, Hashable {
        public typealias Reply = TestRun
        /// Where cxllab installs test suites into images; the only programs `run_test` runs.
        public static let programFolder = "/usr/lib/cxllab/"
        public static let defaultTailBytes = 16384
        public static let maximumTailBytes = 1 << 20
        /// A day: generous for the slowest suite, yet never a call that waits forever.
        public static let timeoutRange = 1...86400

        /// The argv, the program's absolute path first.
        public let command: [String]
        /// Added to the agent's environment (PATH, HOME, LANG), replacing variables of the same name.
        public let environment: [String: String]
        /// Absolute; nil runs the program in the agent's own directory.
        public let workingDirectory: String?
        public let timeoutSeconds: Int
        /// How much of the end of the output comes back.
        public let tailBytes: Int
        public var method: AgentMethod { .runTest }

        public init(command: [String], environment: [String: String] = [:], workingDirectory: String? = nil, timeoutSeconds: Int,
                    tailBytes: Int = RunTest.defaultTailBytes) {
            self.command = command
            self.environment = environment
            self.workingDirectory = workingDirectory
            self.timeoutSeconds = timeoutSeconds
            self.tailBytes = tailBytes
        }

        /// Decodes and checks the fields; each refusal names the field it is about.
        public init(params: [String: JSONValue]) throws(AgentError) {
            guard let items = params["command"]?.arrayValue, !items.isEmpty else {
                throw AgentError(.badParams, "run_test needs command: an array of strings, the program's absolute path first")
            }
            var command: [String] = []
            for item in items {
                guard let argument = item.stringValue else { throw AgentError(.badParams, "run_test's command holds only strings, not \(item.serialized)") }
                command.append(argument)
            }
            var environment: [String: String] = [:]
            switch params["environment"] {
            case nil, .null?: break
            case .object(let fields)?:
                for (name, value) in fields {
                    guard let text = value.stringValue else { throw AgentError(.badParams, "run_test's environment value of \(name) must be a string") }
                    environment[name] = text
                }
            default: throw AgentError(.badParams, "run_test's environment must be an object of strings")
            }
            var workingDirectory: String?
            switch params["working_directory"] {
            case nil, .null?: break
            case .string(let folder)?: workingDirectory = folder
            default: throw AgentError(.badParams, "run_test's working_directory must be a string")
            }
            guard let timeout = params["timeout"]?.intValue else {
                throw AgentError(.badParams, "run_test needs timeout: whole seconds, \(Self.timeoutRange.lowerBound) to \(Self.timeoutRange.upperBound)")
            }
            var tailBytes = Self.defaultTailBytes
            if let value = params["tail_bytes"], value != .null {
                guard let bytes = value.intValue else { throw AgentError(.badParams, "run_test's tail_bytes must be an integer") }
                tailBytes = Int(clamping: bytes)
            }
            self.init(command: command, environment: environment, workingDirectory: workingDirectory, timeoutSeconds: Int(clamping: timeout),
                      tailBytes: tailBytes)
            if let problem { throw AgentError(.badParams, problem) }
        }

        public var params: [String: JSONValue] {
            var params: [String: JSONValue] = [
                "command": .array(command.map { .string($0) }),
                "timeout": .int(Int64(timeoutSeconds)),
                "tail_bytes": .int(Int64(tailBytes)),
            ]
            if !environment.isEmpty { params["environment"] = .object(environment.mapValues { .string($0) }) }
            if let workingDirectory { params["working_directory"] = .string(workingDirectory) }
            return params
        }

        /// What makes this call malformed, naming the field; nil when it is well formed. (Which
        /// programs may run is the agent's policy, checked there.)
        public var problem: String? {
            guard let program = command.first else { return "run_test's command is empty" }
            guard program.hasPrefix("/") else { return "run_test's command must start with the program's absolute path, not \(program)" }
            if program.split(separator: "/").contains("..") { return "run_test's program path must not contain '..': \(program)" }
            // execve and the environment take C strings: a NUL would silently cut them short.
            if command.contains(where: { $0.contains("\0") }) { return "run_test's command must not contain NUL characters" }
            for (name, value) in environment.sorted(by: { $0.key < $1.key }) {
                guard Self.isVariableName(name) else { return "run_test's environment name '\(name)' is not [A-Za-z_][A-Za-z0-9_]*" }
                if value.contains("\0") { return "run_test's environment value of \(name) must not contain NUL characters" }
            }
            if let folder = workingDirectory {
                guard folder.hasPrefix("/") else { return "run_test's working_directory must be an absolute path, not \(folder)" }
                if folder.contains("\0") { return "run_test's working_directory must not contain NUL characters" }
            }
            guard Self.timeoutRange.contains(timeoutSeconds) else {
                return "run_test's timeout is \(Self.timeoutRange.lowerBound) to \(Self.timeoutRange.upperBound) s, not \(timeoutSeconds)"
            }
            guard (0...Self.maximumTailBytes).contains(tailBytes) else {
                return "run_test's tail_bytes is 0 to \(Self.maximumTailBytes), not \(tailBytes)"
            }
            return nil
        }

        static func isVariableName(_ name: String) -> Bool {
            guard let first = name.utf8.first, first == UInt8(ascii: "_") || isLetter(first) else { return false }
            return name.utf8.allSatisfy { $0 == UInt8(ascii: "_") || isLetter($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
        }

        private static func isLetter(_ byte: UInt8) -> Bool {
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
        }

        public static func reply(from result: JSONValue) -> TestRun { TestRun(json: result) }
    }
}

/// What one test program did. `status` is its exit status, 128 + the signal that ended it,
/// 124 when the deadline killed it, 127 when it could not start (the output says why).
public struct TestRun: Sendable, Hashable, Codable {
    public let status: Int32
    /// Wall time from the start to the program's end, on the guest's monotonic clock.
    public let seconds: Double
    public let timedOut: Bool
    /// The last `tailBytes` of stdout and stderr as written (one pipe for both), decoded as
    /// UTF-8; then a note of the agent's when it killed the program at the deadline.
    public let output: String
    /// All the bytes the program wrote, kept or not.
    public let outputBytes: Int
    /// Processes of the program's group outlived it (a daemon a test left behind) and were killed.
    public let leftoverKilled: Bool

    public init(status: Int32, seconds: Double, timedOut: Bool, output: String, outputBytes: Int, leftoverKilled: Bool) {
        self.status = status
        self.seconds = seconds
        self.timedOut = timedOut
        self.output = output
        self.outputBytes = outputBytes
        self.leftoverKilled = leftoverKilled
    }

    public init(json: JSONValue) {
        self.init(status: Int32(clamping: json["status"]?.intValue ?? -1), seconds: json["seconds"]?.doubleValue ?? 0,
                  timedOut: json["timed_out"]?.boolValue ?? false, output: json["output"]?.stringValue ?? "",
                  outputBytes: Int(clamping: json["output_bytes"]?.intValue ?? 0), leftoverKilled: json["leftover_killed"]?.boolValue ?? false)
    }

    public var json: JSONValue {
        ["status": .int(Int64(status)), "seconds": .double(seconds), "timed_out": .bool(timedOut), "output": .string(output),
         "output_bytes": .int(Int64(outputBytes)), "leftover_killed": .bool(leftoverKilled)]
    }
}
