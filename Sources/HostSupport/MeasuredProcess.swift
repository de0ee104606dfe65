import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A child process spawned directly, with a clean signal state, and waited for by its own pid
/// with waitpid(2): Foundation's Process has been seen to miss a child's exit, and children of
/// its Dispatch threads inherit every signal blocked. Standard output goes to a file;
/// standard error lines are handed on as they come (for progress).
public enum MeasuredProcess {
    public struct Result: Sendable {
        public let status: Int32
        public let seconds: Double
        public let standardOutput: String
    }

    public static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                           onErrorLine: @escaping @Sendable (String) -> Void = { _ in }) async throws -> Result {
        let path = try ExecutableLocator.require(executable)
        let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("cxllab-measured-\(UUID().uuidString)").path
        defer { unlink(outputPath) }
        var pipe: [Int32] = [0, 0]
        guard Glibc.pipe(&pipe) == 0 else { throw ProcessRunnerError.launchFailed(executable, String(cString: strerror(errno))) }
        for end in pipe { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, pipe[1], 2)
        var merged = ProcessInfo.processInfo.environment
        merged.merge(environment) { $1 }
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        let envp = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        // A clean signal state: the spawning thread (a Dispatch worker) blocks every signal,
        // and a child would inherit that.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        let clock = ContinuousClock()
        let start = clock.now
        let spawned = posix_spawn(&pid, path, &actions, &attributes, argv, envp)
        close(pipe[1])
        guard spawned == 0 else {
            close(pipe[0])
            throw ProcessRunnerError.launchFailed(executable, String(cString: strerror(spawned)))
        }
        let readEnd = pipe[0]
        let child = pid
        let status = await withCheckedContinuation { (continuation: CheckedContinuation<Int32, Never>) in
            Thread.detachNewThread {
                Self.forwardLines(from: readEnd, to: onErrorLine)
                close(readEnd)
                var status: Int32 = 0
                while waitpid(child, &status, 0) < 0 && errno == EINTR {}
                continuation.resume(returning: (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f))
            }
        }
        let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        return Result(status: status, seconds: (clock.now - start).seconds, standardOutput: output)
    }

    private static func forwardLines(from descriptor: Int32, to onLine: @Sendable (String) -> Void) {
        var pending: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(descriptor, &buffer, buffer.count)
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            for byte in buffer[0..<count] {
                if byte == 0x0A || byte == 0x0D {
                    if !pending.isEmpty { onLine(String(decoding: pending, as: UTF8.self)) }
                    pending.removeAll(keepingCapacity: true)
                } else {
                    pending.append(byte)
                }
            }
        }
        if !pending.isEmpty { onLine(String(decoding: pending, as: UTF8.self)) }
    }
}
