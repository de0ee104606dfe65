import AgentProtocol
#if canImport(Glibc)
import Glibc
#endif

/// Runs one test program for `run_test`: in its own process group (so whatever it leaves
/// behind can be found and killed), stdin from /dev/null, stdout and stderr into one pipe (so
/// the tail reads as the terminal would have shown it). The call ends when the program itself
/// has exited, not at the pipe's end: a test may leave a daemon that holds the pipe open.
/// Memory stays bounded by the tail however much the program writes.
enum TestRunner {
    /// Runs the call as given: which programs may run is the handler's check, not this.
    static func run(_ call: AgentCalls.RunTest) -> TestRun {
        let start = Spawn.monotonicSeconds()
        let program = call.command.first ?? ""
        func notStarted(_ why: String) -> TestRun {
            TestRun(status: 127, seconds: Spawn.monotonicSeconds() - start, timedOut: false,
                    output: "cxllab-agent: cannot run \(program): \(why)\n", outputBytes: 0, leftoverKilled: false)
        }
        if let folder = call.workingDirectory {
            // Checked here so a missing folder is named as such, not as the program's ENOENT.
            let descriptor = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard descriptor >= 0 else { return notStarted("working directory \(folder): \(String(cString: strerror(errno)))") }
            close(descriptor)
        }
        // The agent's end never blocks it: the program's end shows in waitpid, not in the pipe.
        guard let ends = Spawn.makePipe(nonBlockingRead: true) else {
            return notStarted("cannot create a pipe: \(String(cString: strerror(errno)))")
        }
        let spawned = spawn(call, output: ends.write)
        close(ends.write)
        let pid: pid_t
        switch spawned {
        case .success(let started): pid = started
        case .failure(let code):
            close(ends.read)
            return notStarted(String(cString: strerror(code.rawValue)))
        }

        var tail = OutputTail(limit: call.tailBytes)
        var reader: Int32? = ends.read
        var buffer = [UInt8](repeating: 0, count: 65536)
        let deadline = start + Double(call.timeoutSeconds)
        var status: Int32 = 124
        var end: Double?
        var timedOut = false
        var note: String?
        while end == nil {
            let now = Spawn.monotonicSeconds()
            if now >= deadline { break }
            // Short waits: the program's end shows only in waitpid (the pipe may stay open).
            let wait = Int32(max(1, min(10, (deadline - now) * 1000)))
            if let fd = reader {
                var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                if poll(&entry, 1, wait) > 0, !tail.readOnce(fd, buffer: &buffer) {
                    close(fd)
                    reader = nil
                }
            } else {
                _ = poll(nil, 0, wait)
            }
            var waitStatus: Int32 = 0
            let reaped = waitpid(pid, &waitStatus, WNOHANG)
            if reaped == pid {
                end = Spawn.monotonicSeconds()
                status = Spawn.exitCode(fromWaitStatus: waitStatus)
            } else if reaped < 0 && errno != EINTR {
                // Only if something else reaped it (SIGCHLD ignored): the status is gone.
                note = "cxllab-agent: lost the program's exit status: \(String(cString: strerror(errno)))"
                end = Spawn.monotonicSeconds()
                status = 125
            }
        }

        var leftoverKilled = false
        if end != nil {
            // The program is reaped, so its pid names the group only while others are in it.
            if kill(-pid, 0) == 0 {
                kill(-pid, SIGKILL)
                leftoverKilled = true
            }
        } else {
            kill(-pid, SIGKILL)
            var waitStatus: Int32 = 0
            while waitpid(pid, &waitStatus, 0) < 0 && errno == EINTR {}
            end = Spawn.monotonicSeconds()
            timedOut = true
            note = "cxllab-agent: killed after \(call.timeoutSeconds) s"
        }
        // What was written before the end is in the pipe already; killed writers add nothing
        // worth waiting for. Bounded: a writer outside the group (one that called setsid) may
        // go on writing, and a pipe holds at most 1 MiB.
        if let fd = reader {
            var reads = 0
            while reads < 32, tail.readOnce(fd, buffer: &buffer) { reads += 1 }
            close(fd)
        }
        var output = tail.text
        if let note {
            if !output.isEmpty && !output.hasSuffix("\n") { output += "\n" }
            output += note + "\n"
        }
        return TestRun(status: status, seconds: (end ?? start) - start, timedOut: timedOut,
                       output: output, outputBytes: tail.total, leftoverKilled: leftoverKilled)
    }

    /// posix_spawn of the program (no PATH search: the path is absolute), in a new process
    /// group, in the working directory, with the merged environment.
    private static func spawn(_ call: AgentCalls.RunTest, output: Int32) -> Result<pid_t, Errno> {
        var arguments = call.command
        var addChdir: AddChdir?
        if let folder = call.workingDirectory {
            addChdir = addChdirAction()
            if addChdir == nil {
                // A glibc before 2.29: the agent's own directory is not to be changed (the
                // heartbeat thread shares it), so a shell changes it and execs the program in
                // its place (same pid, same group).
                arguments = ["/bin/sh", "-c", #"cd -- "$0" || exit 127; exec "$@""#, folder] + arguments
            }
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // A test expects the signals a shell gives it: SIGPIPE at its default (the process
        // that runs the agent may ignore it, and ignoring survives exec) and nothing blocked.
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGPIPE)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var unblocked = sigset_t()
        sigemptyset(&unblocked)
        posix_spawnattr_setsigmask(&attributes, &unblocked)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        posix_spawnattr_setpgroup(&attributes, 0)

        var pid: pid_t = 0
        let failed = Spawn.withStandardStreams(stdout: output, stderr: output) { actions in
            if let addChdir, let folder = call.workingDirectory {
                let failed = addChdir(actions, folder)
                if failed != 0 { return failed }
            }
            return Spawn.withCStrings(arguments, environment(adding: call.environment)) { argv, envp in
                posix_spawn(&pid, arguments[0], actions, &attributes, argv, envp)
            }
        }
        return failed == 0 ? .success(pid) : .failure(Errno(rawValue: failed))
    }

    /// The agent's default environment with the request's variables over it, in a stable order.
    static func environment(adding extra: [String: String]) -> [String] {
        var variables: [String: String] = [:]
        for entry in Spawn.defaultEnvironment {
            let parts = entry.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            variables[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
        }
        variables.merge(extra) { _, new in new }
        return variables.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
    }

    private typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32

    /// posix_spawn_file_actions_addchdir_np: in glibc since 2.29, but declared only under
    /// _GNU_SOURCE, which Swift's Glibc module does not import; found at run time instead.
    private static func addChdirAction() -> AddChdir? {
        guard let symbol = dlsym(nil, "posix_spawn_file_actions_addchdir_np") else { return nil }
        return unsafeBitCast(symbol, to: AddChdir.self)
    }

    /// An errno from posix_spawn or the file actions.
    struct Errno: Error {
        let rawValue: Int32
    }
}

/// The last `limit` bytes of a stream and how many went by: trimmed in batches (the buffer
/// may reach twice the limit), so each byte is moved about once however long the stream.
struct OutputTail {
    let limit: Int
    private(set) var bytes: [UInt8] = []
    private(set) var total = 0

    init(limit: Int) { self.limit = max(0, limit) }

    mutating func append(_ chunk: ArraySlice<UInt8>) {
        total += chunk.count
        if chunk.count >= limit {
            bytes = Array(chunk.suffix(limit))
            return
        }
        bytes += chunk
        if bytes.count > 2 * limit { bytes.removeFirst(bytes.count - limit) }
    }

    /// One read from a non-blocking descriptor; false at its end (or on an error other than
    /// "nothing yet"), when it should be closed.
    mutating func readOnce(_ fd: Int32, buffer: inout [UInt8]) -> Bool {
        while true {
            let count = read(fd, &buffer, buffer.count)
            if count > 0 {
                append(buffer[0..<count])
                return true
            }
            if count < 0 && errno == EINTR { continue }
            return false
        }
    }

    /// The tail as text, starting at a whole character: the cut may fall inside a UTF-8
    /// sequence (at most three continuation bytes to skip).
    var text: String {
        var kept = bytes.suffix(limit)
        if total > limit {
            var skipped = 0
            while skipped < 3, let first = kept.first, first & 0xC0 == 0x80 {
                kept = kept.dropFirst()
                skipped += 1
            }
        }
        return String(decoding: kept, as: UTF8.self)
    }
}

extension AgentHandler {
    /// Why `run_test` may not run this call's program, or nil: only programs cxllab installed
    /// under `RunTest.programFolder`, shell flag or not (`shell` is for anything else). The
    /// dynamic loader's variables would let any code in by the back door, so they may only
    /// name paths under that folder too.
    static func runTestRefusal(_ call: AgentCalls.RunTest) -> String? {
        let folder = AgentCalls.RunTest.programFolder
        let program = call.command.first ?? ""
        guard program.hasPrefix(folder), program.count > folder.count else {
            return "run_test runs only programs under \(folder) (where cxllab installs test suites), not \(program)"
        }
        for (name, value) in call.environment.sorted(by: { $0.key < $1.key }) where name.hasPrefix("LD_") {
            let paths = value.split(separator: ":", omittingEmptySubsequences: false)
            guard paths.allSatisfy({ $0.hasPrefix(folder) && !$0.split(separator: "/").contains("..") }) else {
                return "run_test's \(name) may only name paths under \(folder), not \(value)"
            }
        }
        return nil
    }
}
