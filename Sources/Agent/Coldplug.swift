import AgentProtocol
#if canImport(Glibc)
import Glibc
#endif

/// Coldplug as udev does it, in the guest: a netlink socket on the kernel's uevent group,
/// `add` replayed to every device of a bus, and `modprobe -b MODALIAS` for each add event that
/// carries one, up to `workers` at once (systemd-udevd handles events in parallel workers, so
/// two modprobes of the same alias race each other as they do on a real machine). Debian's
/// kernels have no uevent helper (CONFIG_UEVENT_HELPER is off), so the agent listens itself.
struct Coldplug {
    let files: GuestFiles
    let call: AgentCalls.Coldplug

    /// Linux's netlink family and the kernel's uevent protocol and multicast group.
    static let netlinkFamily: Int32 = 16
    static let ueventProtocol: Int32 = 15

    func run() -> Result<JSONValue, AgentError> {
        let socketFD = socket(Self.netlinkFamily, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), Self.ueventProtocol)
        guard socketFD >= 0 else { return .failure(AgentError(.failed, "cannot open a uevent socket: \(String(cString: strerror(errno)))")) }
        defer { close(socketFD) }
        // struct sockaddr_nl { u16 family; u16 pad; u32 pid; u32 groups } with group 1, the
        // kernel's uevents.
        var address = [UInt8](repeating: 0, count: 12)
        address[0] = UInt8(Self.netlinkFamily)
        address[8] = 1
        let bound = address.withUnsafeBytes { raw in
            bind(socketFD, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(raw.count))
        }
        guard bound == 0 else { return .failure(AgentError(.failed, "cannot listen for uevents: \(String(cString: strerror(errno)))")) }

        if let failure = Self.writeModuleOptions(call.options, files: files) { return .failure(failure) }
        let start = Spawn.monotonicSeconds()
        let deadline = start + Double(max(1, min(call.timeoutSeconds, 600)))
        let devices = files.list("/sys/bus/\(call.bus)/devices")
        var waiting = Set(devices)
        for device in devices {
            if let failure = files.write("/sys/bus/\(call.bus)/devices/\(device)/uevent", "add") {
                return .failure(AgentError(.failed, "cannot replay add to \(device): \(failure)"))
            }
        }
        var queue: [(device: String, alias: String)] = []
        var running: [pid_t: (device: String, alias: String, start: Double)] = [:]
        var done: [ColdplugWorker] = []
        var buffer = [UInt8](repeating: 0, count: 8192)
        let workers = max(1, min(call.workers, 16))
        while Spawn.monotonicSeconds() < deadline && (!waiting.isEmpty || !queue.isEmpty || !running.isEmpty) {
            // Start what the workers can take.
            while running.count < workers, !queue.isEmpty {
                let next = queue.removeFirst()
                if let pid = Self.spawn(["modprobe", "-b", next.alias]) {
                    running[pid] = (next.device, next.alias, Spawn.monotonicSeconds() - start)
                } else {
                    done.append(ColdplugWorker(device: next.device, modalias: next.alias, start: 0, end: 0, status: 127))
                }
            }
            // Reap finished workers.
            for pid in Array(running.keys) {
                var status: Int32 = 0
                if waitpid(pid, &status, WNOHANG) == pid, let worker = running.removeValue(forKey: pid) {
                    let code = Spawn.exitCode(fromWaitStatus: status)
                    done.append(ColdplugWorker(device: worker.device, modalias: worker.alias, start: worker.start,
                                               end: Spawn.monotonicSeconds() - start, status: code))
                }
            }
            // Events: wait a little when nothing else is due.
            var entry = pollfd(fd: socketFD, events: Int16(POLLIN), revents: 0)
            if poll(&entry, 1, running.isEmpty && queue.isEmpty ? 100 : 5) > 0 {
                let count = recv(socketFD, &buffer, buffer.count, 0)
                if count > 0, let event = Self.parse(Array(buffer[0..<count])), event.action == "add",
                   event.subsystem == call.bus, let device = event.devpath.split(separator: "/").last.map(String.init) {
                    waiting.remove(device)
                    if let alias = event.modalias { queue.append((device, alias)) }
                }
            }
        }
        // Past the deadline: no worker outlives the call.
        for pid in running.keys { kill(pid, SIGKILL); var status: Int32 = 0; waitpid(pid, &status, 0) }
        return .success(ColdplugReport(workers: done.sorted { $0.start < $1.start }, missing: waiting.sorted()).json)
    }

    /// One kernel uevent: `ACTION@DEVPATH`, then `KEY=VALUE` fields, NUL-separated.
    static func parse(_ bytes: [UInt8]) -> (action: String, devpath: String, subsystem: String?, modalias: String?)? {
        let fields = bytes.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        var values: [String: String] = [:]
        for field in fields.dropFirst() {
            guard let equals = field.firstIndex(of: "=") else { continue }
            values[String(field[..<equals])] = String(field[field.index(after: equals)...])
        }
        guard let action = values["ACTION"], let devpath = values["DEVPATH"] else { return nil }
        return (action, devpath, values["SUBSYSTEM"], values["MODALIAS"])
    }

    /// Module options where modprobe reads them, as a real system keeps them; a fresh file each
    /// time, so none outlive the plan of the call that wrote them.
    static func writeModuleOptions(_ options: [String: [String]], files: GuestFiles) -> AgentError? {
        let conf = options.sorted { $0.key < $1.key }.filter { !$0.value.isEmpty }
            .map { "options \($0.key) \($0.value.joined(separator: " "))\n" }.joined()
        guard let failure = writeFile("/etc/modprobe.d/cxllab.conf", conf, files: files) else { return nil }
        return AgentError(.failed, "cannot write /etc/modprobe.d/cxllab.conf: \(failure)")
    }

    /// Writes a whole file (creating its folder), outside /sys.
    static func writeFile(_ path: String, _ text: String, files: GuestFiles) -> String? {
        let full = files.path(path)
        let folder = String(full[..<(full.lastIndex(of: "/") ?? full.endIndex)])
        _ = mkdir(folder, 0o755)
        let fd = open(full, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return String(cString: strerror(errno)) }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        return written == bytes.count ? nil : String(cString: strerror(errno))
    }

    /// Starts a program with no pipes (its output goes to the console, as udev's workers' goes
    /// to the journal).
    static func spawn(_ arguments: [String]) -> pid_t? {
        var pid: pid_t = 0
        let spawned = Spawn.withCStrings(arguments, Spawn.defaultEnvironment) { argv, envp in posix_spawnp(&pid, arguments[0], nil, nil, argv, envp) }
        return spawned == 0 ? pid : nil
    }
}
