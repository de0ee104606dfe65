import AgentProtocol
#if canImport(Glibc)
import Glibc
#endif

/// A race round's release, in the guest: programs started at one instant plus each one's
/// delay, all running at once (each in its own process group, so the deadline can kill a
/// program with its children), their output kept in pipes, their ends reaped as they come.
/// One thread schedules: a started program runs on its own, so the scheduler only has to be
/// on time for the starts (sub-millisecond sleeps for the last stretch of each delay).
struct ConcurrentRelease {
    let files: GuestFiles
    let call: AgentCalls.Concurrently

    static let outputTail = 2048

    private struct Slot {
        var pid: pid_t = 0
        var pipe: Int32 = -1
        var output: [UInt8] = []
        var start: Double?
        var end: Double?
        var status: Int32 = -1
    }

    func run() -> Result<JSONValue, AgentError> {
        if !call.options.isEmpty, let failure = Coldplug.writeModuleOptions(call.options, files: files) { return .failure(failure) }
        var traceProblem: String?
        if let bus = call.traceBus { traceProblem = RegistrationTrace.start(bus: bus, files: files) }
        let operations = call.operations
        var slots = [Slot](repeating: Slot(), count: operations.count)
        let order = operations.indices.sorted { operations[$0].delayMicroseconds < operations[$1].delayMicroseconds }
        // The release: a millisecond ahead, so the first start is not late by the set-up.
        let release = Spawn.monotonicSeconds() + 0.001
        let deadline = release + Double(max(1, min(call.timeoutSeconds, 600)))
        var next = 0
        var buffer = [UInt8](repeating: 0, count: 4096)
        func due(_ position: Int) -> Double { release + Double(operations[order[position]].delayMicroseconds) / 1e6 }
        func running() -> [Int] { slots.indices.filter { slots[$0].start != nil && slots[$0].end == nil } }

        while Spawn.monotonicSeconds() < deadline && (next < order.count || !running().isEmpty) {
            var now = Spawn.monotonicSeconds()
            while next < order.count, due(next) <= now {
                let index = order[next]
                slots[index] = Self.start(operations[index].arguments, at: now - release)
                next += 1
                now = Spawn.monotonicSeconds()
            }
            let untilNext = next < order.count ? due(next) - now : 0.05
            if next < order.count, untilNext < 0.002 {
                // The last stretch before a start: sleep exactly, not by poll's milliseconds.
                var pause = timespec(tv_sec: 0, tv_nsec: Int(max(0, untilNext) * 1e9))
                nanosleep(&pause, nil)
                continue
            }
            let open = slots.indices.filter { slots[$0].pipe >= 0 }
            var entries = open.map { pollfd(fd: slots[$0].pipe, events: Int16(POLLIN), revents: 0) }
            let wait = Int32(max(1, min(untilNext - 0.001, 0.02, deadline - now) * 1000))
            _ = poll(&entries, nfds_t(entries.count), wait)
            for (position, entry) in entries.enumerated() where entry.revents != 0 {
                Self.drain(&slots[open[position]], buffer: &buffer)
            }
            for index in running() {
                var status: Int32 = 0
                if waitpid(slots[index].pid, &status, WNOHANG) == slots[index].pid {
                    slots[index].end = Spawn.monotonicSeconds() - release
                    slots[index].status = Spawn.exitCode(fromWaitStatus: status)
                }
            }
        }
        // Past the deadline: nothing outlives the call.
        let timedOut = next < order.count || !running().isEmpty
        for index in running() {
            kill(-slots[index].pid, SIGKILL)
            var status: Int32 = 0
            while waitpid(slots[index].pid, &status, 0) < 0 && errno == EINTR {}
            slots[index].end = Spawn.monotonicSeconds() - release
            slots[index].status = 124
        }
        for index in slots.indices where slots[index].pipe >= 0 {
            Self.drain(&slots[index], buffer: &buffer, final: true)
        }
        var registrations: [DriverRegistration] = []
        if call.traceBus != nil, traceProblem == nil {
            registrations = RegistrationTrace.read(files: files).map { DriverRegistration(driver: $0.driver, time: $0.time - release) }
        }
        let results = operations.indices.map { index in
            let slot = slots[index]
            var output = String(decoding: slot.output, as: UTF8.self)
            if slot.start == nil { output += "cxllab-agent: never started, the deadline came first" }
            return ConcurrentResult(start: slot.start ?? -1, end: slot.end ?? -1, status: slot.start == nil ? 125 : slot.status, output: output)
        }
        return .success(ConcurrentReport(results: results, registrations: registrations, traceProblem: traceProblem, timedOut: timedOut).json)
    }

    /// Reads what a program wrote, keeping the last `outputTail` bytes; closes the pipe at
    /// its end (or when `final`).
    private static func drain(_ slot: inout Slot, buffer: inout [UInt8], final: Bool = false) {
        while true {
            let count = read(slot.pipe, &buffer, buffer.count)
            if count > 0 {
                slot.output += buffer[0..<count]
                if slot.output.count > outputTail { slot.output.removeFirst(slot.output.count - outputTail) }
                if !final { return }
                continue
            }
            if count < 0 && errno == EINTR { continue }
            if count < 0 && errno == EAGAIN && !final { return }
            close(slot.pipe)
            slot.pipe = -1
            return
        }
    }

    /// Starts a program in its own process group, stdout and stderr into one non-blocking pipe.
    private static func start(_ arguments: [String], at time: Double) -> Slot {
        var slot = Slot()
        slot.start = time
        guard let pipe = Spawn.makePipe(nonBlockingRead: true) else {
            slot.end = time
            slot.status = 127
            slot.output = Array("cxllab-agent: cannot create a pipe".utf8)
            return slot
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)
        var pid: pid_t = 0
        let spawned = Spawn.withStandardStreams(stdout: pipe.write, stderr: pipe.write) { actions in
            Spawn.withCStrings(arguments, Spawn.defaultEnvironment) { argv, envp in posix_spawnp(&pid, arguments[0], actions, &attributes, argv, envp) }
        }
        slot.pid = pid
        close(pipe.write)
        guard spawned == 0 else {
            close(pipe.read)
            slot.end = time
            slot.status = 127
            slot.output = Array("cxllab-agent: cannot run \(arguments[0]): \(String(cString: strerror(spawned)))".utf8)
            return slot
        }
        slot.pipe = pipe.read
        return slot
    }
}
