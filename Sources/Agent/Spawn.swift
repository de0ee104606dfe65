#if canImport(Glibc)
import Glibc
#endif

/// What a program run by the agent did.
struct SpawnResult {
    var status: Int32
    var stdout: [UInt8]
    var stderr: [UInt8]
    var timedOut: Bool
}

/// Runs programs with posix_spawn (the agent has no Foundation), reading stdout and stderr
/// with poll so neither pipe fills, and killing the program past its deadline.
enum Spawn {
    static let outputLimit = 4 << 20

    /// `onOutput` sees each chunk as it arrives (stream 1 or 2), for streaming to the host.
    static func run(_ arguments: [String], timeoutSeconds: Int32 = 120, environment: [String] = defaultEnvironment,
                    onOutput: ((Int32, [UInt8]) -> Void)? = nil) -> SpawnResult {
        guard let out = makePipe(nonBlockingRead: false), let err = makePipe(nonBlockingRead: false) else {
            return SpawnResult(status: 127, stdout: [], stderr: Array("cannot create pipes".utf8), timedOut: false)
        }
        var pid: pid_t = 0
        let spawned = withStandardStreams(stdout: out.write, stderr: err.write) { actions in
            withCStrings(arguments, environment) { argv, envp in posix_spawnp(&pid, arguments[0], actions, nil, argv, envp) }
        }
        close(out.write)
        close(err.write)
        guard spawned == 0 else {
            close(out.read)
            close(err.read)
            return SpawnResult(status: 127, stdout: [], stderr: Array("cannot run \(arguments[0]): \(String(cString: strerror(spawned)))".utf8), timedOut: false)
        }
        var result = SpawnResult(status: 0, stdout: [], stderr: [], timedOut: false)
        var open: [Int32] = [out.read, err.read]
        let deadline = monotonicSeconds() + Double(timeoutSeconds)
        var buffer = [UInt8](repeating: 0, count: 65536)
        while !open.isEmpty {
            let remaining = deadline - monotonicSeconds()
            if remaining <= 0 {
                kill(pid, SIGKILL)
                result.timedOut = true
                break
            }
            var fds = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            let ready = poll(&fds, nfds_t(fds.count), Int32(min(remaining * 1000, 1000)))
            if ready < 0 && errno != EINTR { break }
            for entry in fds where entry.revents != 0 {
                let count = read(entry.fd, &buffer, buffer.count)
                if count <= 0 {
                    open.removeAll { $0 == entry.fd }
                    close(entry.fd)
                } else if entry.fd == out.read {
                    onOutput?(1, Array(buffer[0..<count]))
                    if result.stdout.count < outputLimit { result.stdout += buffer[0..<count] }
                } else {
                    onOutput?(2, Array(buffer[0..<count]))
                    if result.stderr.count < outputLimit { result.stderr += buffer[0..<count] }
                }
            }
        }
        for fd in open { close(fd) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        if !result.timedOut {
            result.status = exitCode(fromWaitStatus: status)
        } else {
            result.status = 124
        }
        return result
    }

    /// WIFEXITED / WEXITSTATUS, spelled out (the macros do not import into Swift): the exit
    /// status, or 128 + the signal that ended the program.
    static func exitCode(fromWaitStatus status: Int32) -> Int32 {
        (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }

    static let defaultEnvironment = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C"]

    /// A pipe whose ends both close on exec (only a child's dup2'ed copies survive it), the
    /// read end non-blocking when the reader polls several; nil when none can be made.
    static func makePipe(nonBlockingRead: Bool) -> (read: Int32, write: Int32)? {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { return nil }
        for fd in ends { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        if nonBlockingRead { _ = fcntl(ends[0], F_SETFL, fcntl(ends[0], F_GETFL) | O_NONBLOCK) }
        return (ends[0], ends[1])
    }

    /// File actions for a program the agent runs: stdin from /dev/null, stdout and stderr to
    /// these descriptors (one pipe for both, or two); `body` may add its own.
    static func withStandardStreams<R>(stdout: Int32, stderr: Int32,
                                       _ body: (UnsafeMutablePointer<posix_spawn_file_actions_t>) -> R) -> R {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, stdout, 1)
        posix_spawn_file_actions_adddup2(&actions, stderr, 2)
        return body(&actions)
    }

    /// argv and envp as the NULL-terminated C arrays posix_spawn takes, freed after `body`.
    static func withCStrings<R>(_ arguments: [String], _ environment: [String],
                                _ body: ([UnsafeMutablePointer<CChar>?], [UnsafeMutablePointer<CChar>?]) -> R) -> R {
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup($0) } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        return body(argv, envp)
    }

    static func monotonicSeconds() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }
}
