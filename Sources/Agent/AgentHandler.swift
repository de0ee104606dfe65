import AgentProtocol
#if canImport(Glibc)
import Glibc
#endif

/// The agent's mechanics, one request at a time: every request gets exactly one result or
/// error, and nothing here throws past it. Policy (what to load in which order, what to
/// check) stays on the host.
public final class AgentHandler {
    public static let agentName = "cxllab-agent 0.1"
    static let buses = ["dax", "nd", "cxl"]
    static let tools = ["ndctl", "daxctl", "cxl"]

    let files: GuestFiles
    /// Read incrementally for the agent's life (see `KernelLog`).
    let kernelLog: KernelLog
    public let shellEnabled: Bool
    var handshaken = false
    /// Set once power_off has been answered; the server then powers the guest off.
    public private(set) var powerOffRequested = false
    /// Sends frames while a request runs (streamed output); set by the server.
    public var emit: (AgentFrame) -> Void = { _ in }

    public init(files: GuestFiles = GuestFiles(), shellEnabled: Bool) {
        self.files = files
        kernelLog = KernelLog(files: files)
        self.shellEnabled = shellEnabled
    }

    /// Reads the kernel command line for the shell flag.
    public static func shellFlagSet(files: GuestFiles = GuestFiles()) -> Bool {
        (files.read("/proc/cmdline") ?? "").split(whereSeparator: { $0 == " " || $0 == "\n" })
            .contains { $0 == Substring(AgentProtocol.shellFlag) }
    }

    public var kernelRelease: String {
        var names = utsname()
        uname(&names)
        return withUnsafeBytes(of: names.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    /// The reply frame for one frame of input.
    public func reply(to frame: [UInt8]) -> AgentFrame {
        switch AgentRequest.parse(frame) {
        case .failure(let failure):
            return .reply(id: failure.id, .failure(failure.error))
        case .success(let request):
            return .reply(id: request.id, handle(request))
        }
    }

    func handle(_ request: AgentRequest) -> Result<JSONValue, AgentError> {
        do {
            return try handleTyped(request)
        } catch {
            return .failure(error)
        }
    }

    /// Each request decoded by its own type (AgentProtocol spells the keys once); what a
    /// request may touch is checked here, in the guest.
    private func handleTyped(_ request: AgentRequest) throws(AgentError) -> Result<JSONValue, AgentError> {
        let params = request.params
        if request.method == .hello { return hello(try AgentCalls.Hello(params: params)) }
        guard handshaken else { return .failure(AgentError(.notHandshaken, "send hello with protocol version \(AgentProtocol.version) first")) }
        switch request.method {
        case .hello: return hello(try AgentCalls.Hello(params: params))
        case .info: return .success(info().json)
        case .loadModule:
            let call = try AgentCalls.LoadModule(params: params)
            guard Self.isPlainName(call.name), call.parameters.allSatisfy(Self.isModuleParameter) else {
                return badParams("load_module needs a module name and name=value parameters (none starting with -)")
            }
            return runChecked(["modprobe", call.name] + call.parameters, what: "load \(call.name)")
        case .unloadModule:
            let call = try AgentCalls.UnloadModule(params: params)
            guard Self.isPlainName(call.name) else { return badParams("unload_module needs a module name") }
            return runChecked(["rmmod", call.name], what: "unload \(call.name)")
        case .listDevices:
            let call = try AgentCalls.ListDevices(params: params)
            guard call.bus.map(Self.buses.contains) ?? true else { return badParams("list_devices takes bus \(Self.buses.joined(separator: ", "))") }
            return .success(.object(["devices": .array(listDevices(bus: call.bus).map(\.json))]))
        case .bind, .unbind, .newID, .removeID, .driversProbe: return busOperation(try AgentCalls.Bus(method: request.method, params: params))
        case .sysfsRead:
            let call = try AgentCalls.SysfsRead(params: params)
            guard Self.isSysfsPath(call.path) else { return badParams("sysfs_read needs a path under /sys") }
            guard let text = files.read(call.path) else { return .failure(AgentError(.failed, "cannot read \(call.path): \(String(cString: strerror(errno)))")) }
            return .success(["value": .string(text)])
        case .sysfsWrite:
            let call = try AgentCalls.SysfsWrite(params: params)
            guard Self.isSysfsPath(call.path) else { return badParams("sysfs_write needs a path under /sys and a value") }
            if let failure = files.write(call.path, call.value) { return .failure(AgentError(.failed, failure)) }
            return .success(Acknowledged.json)
        case .runTool:
            let call = try AgentCalls.RunTool(params: params)
            guard Self.tools.contains(call.tool) else { return badParams("run_tool takes tool \(Self.tools.joined(separator: ", "))") }
            return .success(run([call.tool] + call.arguments, timeout: Int64(call.timeoutSeconds), streamTo: call.stream ? request.id : nil).jsonValue)
        case .shell:
            guard shellEnabled else {
                return .failure(AgentError(.notPermitted, "shell commands are off in this lab (the host enables them with \(AgentProtocol.shellFlag))"))
            }
            let call = try AgentCalls.Shell(params: params)
            return .success(run(["/bin/sh", "-c", call.command], timeout: Int64(call.timeoutSeconds), streamTo: call.stream ? request.id : nil).jsonValue)
        case .dmesgMark: return .success(["mark": .int(kernelLog.lastSequence())])
        case .dmesgSince:
            let call = try AgentCalls.DmesgSince(params: params)
            return .success(["lines": .array(kernelLog.lines(after: call.mark).map { .string($0) })])
        case .coldplug:
            let call = try AgentCalls.Coldplug(params: params)
            guard Self.buses.contains(call.bus) else { return badParams("coldplug takes bus \(Self.buses.joined(separator: ", "))") }
            guard Self.areModuleOptions(call.options) else {
                return badParams("coldplug options are module names with name=value parameters (none starting with -)")
            }
            return Coldplug(files: files, call: call).run()
        case .concurrently:
            let call = try AgentCalls.Concurrently(params: params)
            if let problem = Self.concurrencyProblem(call) { return badParams(problem) }
            return ConcurrentRelease(files: files, call: call).run()
        case .runTest:
            let call = try AgentCalls.RunTest(params: params)
            if let refusal = Self.runTestRefusal(call) { return .failure(AgentError(.notPermitted, refusal)) }
            return .success(TestRunner.run(call).json)
        case .powerOff:
            powerOffRequested = true
            return .success(Acknowledged.json)
        }
    }

    func hello(_ call: AgentCalls.Hello) -> Result<JSONValue, AgentError> {
        guard call.version == AgentProtocol.version else {
            return .failure(AgentError(.unsupportedVersion, "this agent speaks version \(AgentProtocol.version), the host \(call.version)"))
        }
        if !handshaken {
            // On the console, so whoever reads it knows the host is driving the guest now.
            print("cxllab-agent: the host shook hands (protocol \(call.version))")
            fflush(nil)
        }
        handshaken = true
        return .success(HelloReply(version: AgentProtocol.version, agent: Self.agentName, kernel: kernelRelease, shell: shellEnabled).json)
    }

    func info() -> GuestInfo {
        let uptime = Double((files.read("/proc/uptime") ?? "0").split(separator: " ").first ?? "0") ?? 0
        return GuestInfo(kernel: kernelRelease, uptime: uptime, modules: loadedModules())
    }

    func loadedModules() -> [LoadedModule] {
        (files.read("/proc/modules") ?? "").split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ")
            guard fields.count >= 4 else { return nil }
            let users = fields[3] == "-" ? [] : fields[3].split(separator: ",").map(String.init).filter { !$0.isEmpty }
            return LoadedModule(name: String(fields[0]), size: Int64(fields[1]) ?? 0, usedBy: users)
        }
    }

    func listDevices(bus only: String? = nil) -> [BusDevice] {
        Self.buses.filter { only == nil || $0 == only }.flatMap { bus in
            files.list("/sys/bus/\(bus)/devices").map { name in
                let base = "/sys/bus/\(bus)/devices/\(name)"
                var attributes: [String: String] = [:]
                for attribute in ["size", "target_node", "align", "mode", "devtype"] {
                    if let value = files.read(base + "/" + attribute, limit: 256) {
                        attributes[attribute] = value.trimmingTrailingNewlines
                    }
                }
                if let uevent = files.read(base + "/uevent", limit: 4096),
                   let line = uevent.split(separator: "\n").first(where: { $0.hasPrefix("DEVTYPE=") }) {
                    attributes["devtype"] = String(line.dropFirst(8))
                }
                return BusDevice(bus: bus, name: name, driver: files.linkName(base + "/driver"), attributes: attributes)
            }
        }
    }

    func busOperation(_ call: AgentCalls.Bus) -> Result<JSONValue, AgentError> {
        let (bus, device, driver) = (call.bus, call.device, call.driver)
        guard Self.isPlainName(bus), device.map(Self.isPlainName) ?? true, driver.map(Self.isPlainName) ?? true else {
            return badParams("bus, device and driver names are plain names")
        }
        let target: String
        let value: String
        switch call.operation {
        case .bind, .newID, .removeID:
            guard let driver, let device else { return badParams("\(call.method.rawValue) needs a driver and a device") }
            let file = call.operation == .bind ? "bind" : call.operation == .newID ? "new_id" : "remove_id"
            target = "/sys/bus/\(bus)/drivers/\(driver)/\(file)"
            value = device
        case .unbind:
            guard let device else { return badParams("unbind needs a device") }
            if let driver {
                target = "/sys/bus/\(bus)/drivers/\(driver)/unbind"
            } else {
                guard files.exists("/sys/bus/\(bus)/devices/\(device)/driver") else {
                    return .success(BusReply(driver: nil, wasBound: false).json)
                }
                target = "/sys/bus/\(bus)/devices/\(device)/driver/unbind"
            }
            value = device
        case .driversProbe:
            guard let device else { return badParams("drivers_probe needs a device") }
            target = "/sys/bus/\(bus)/drivers_probe"
            value = device
        }
        if let failure = files.write(target, value) { return .failure(AgentError(.failed, failure)) }
        let now = device.flatMap { files.linkName("/sys/bus/\(bus)/devices/\($0)/driver") }
        return .success(BusReply(driver: now).json)
    }

    func run(_ arguments: [String], timeout: Int64?, streamTo id: Int64? = nil) -> ToolOutcome {
        let emit = self.emit
        let onOutput: ((Int32, [UInt8]) -> Void)? = id.map { id in
            { stream, bytes in emit(.output(id: id, stream: stream == 1 ? "stdout" : "stderr", data: String(decoding: bytes, as: UTF8.self))) }
        }
        let result = Spawn.run(arguments, timeoutSeconds: Int32(clamping: timeout ?? 120), onOutput: onOutput)
        let stdout = String(decoding: result.stdout, as: UTF8.self)
        var stderr = String(decoding: result.stderr, as: UTF8.self)
        if result.timedOut { stderr += "\ncxllab-agent: killed after \(timeout ?? 120) s" }
        let trimmed = stdout.trimmingTrailingNewlines
        let json = (trimmed.hasPrefix("{") || trimmed.hasPrefix("[")) ? try? JSONValue(parsing: trimmed) : nil
        return ToolOutcome(status: result.status, stdout: stdout, stderr: stderr, json: json)
    }

    func runChecked(_ arguments: [String], what: String) -> Result<JSONValue, AgentError> {
        let outcome = run(arguments, timeout: 120)
        guard outcome.status == 0 else {
            let output = (outcome.stderr + outcome.stdout).trimmingTrailingNewlines
            return .failure(AgentError(.failed, "could not \(what) (status \(outcome.status)): \(output)"))
        }
        return .success(outcome.jsonValue)
    }

    func badParams(_ message: String) -> Result<JSONValue, AgentError> { .failure(AgentError(.badParams, message)) }

    static func isPlainName(_ name: String) -> Bool {
        !name.isEmpty && name.count < 256 && !name.contains("/") && name != "." && name != ".." && !name.hasPrefix("-")
    }

    /// `name=value` (or a bare boolean), never an option of modprobe's own (`-r`).
    static func isModuleParameter(_ parameter: String) -> Bool {
        !parameter.isEmpty && !parameter.hasPrefix("-") && parameter.count < 4096
    }

    /// Module names with their `name=value` parameters, as modprobe.d takes them.
    static func areModuleOptions(_ options: [String: [String]]) -> Bool {
        options.allSatisfy { isPlainName($0.key) && $0.value.allSatisfy(isModuleParameter) }
    }

    /// What a concurrent release may run: modprobe of a plain name or alias (`-b` allowed, as
    /// udev passes it) with `name=value` parameters, or one of the tools; at most 64 programs,
    /// none delayed past 10 s, and a bus name to trace.
    static func concurrencyProblem(_ call: AgentCalls.Concurrently) -> String? {
        guard call.operations.count <= 64 else { return "concurrently takes at most 64 operations" }
        if let bus = call.traceBus, !buses.contains(bus) { return "concurrently traces bus \(buses.joined(separator: ", "))" }
        guard areModuleOptions(call.options) else {
            return "concurrently's options are module names with name=value parameters (none starting with -)"
        }
        for operation in call.operations {
            guard (0...10_000_000).contains(operation.delayMicroseconds) else { return "an operation's delay is 0 to 10 s (delay_us)" }
            var arguments = operation.arguments[...]
            let program = arguments.removeFirst()
            if program == "modprobe" {
                if arguments.first == "-b" { arguments.removeFirst() }
                guard let name = arguments.first, isPlainName(name), arguments.dropFirst().allSatisfy(isModuleParameter) else {
                    return "concurrently runs modprobe [-b] NAME with name=value parameters (none starting with -)"
                }
            } else if !tools.contains(program) {
                return "concurrently runs modprobe or \(tools.joined(separator: ", ")), not \(program)"
            }
        }
        return nil
    }

    static func isSysfsPath(_ path: String) -> Bool {
        path.hasPrefix("/sys/") && !path.split(separator: "/").contains("..")
    }
}

extension String {
    var trimmingTrailingNewlines: String {
        var text = self
        while let last = text.last, last == "\n" || last == " " { text.removeLast() }
        return text
    }
}
