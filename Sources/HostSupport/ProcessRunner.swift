import Foundation
import Synchronization

/// What a finished child process left behind.
public struct ProcessResult: Sendable {
    public let executable: String
    public let arguments: [String]
    public let status: Int32
    public let standardOutput: Data
    public let standardError: Data
    public let duration: Duration
    /// True when the deadline passed and the process was killed.
    public let timedOut: Bool

    public var succeeded: Bool { status == 0 && !timedOut }
    public var output: String { String(decoding: standardOutput, as: UTF8.self) }
    public var errorOutput: String { String(decoding: standardError, as: UTF8.self) }

    /// The command as a person would type it, for messages.
    public var commandLine: String { ([executable] + arguments).map(shellQuoted).joined(separator: " ") }
}

/// A command that did not succeed, with what it printed, so an error message can say why.
public struct CommandFailure: Error, Sendable, CustomStringConvertible {
    public let result: ProcessResult
    public let context: String

    public init(_ result: ProcessResult, context: String) {
        self.result = result
        self.context = context
    }

    public var description: String {
        let why = result.timedOut
            ? "did not finish within its deadline"
            : "exited with status \(result.status)"
        let detail = (result.errorOutput.isEmpty ? result.output : result.errorOutput)
            .split(separator: "\n").suffix(6).joined(separator: "\n  ")
        return "\(context): `\(result.commandLine)` \(why)" + (detail.isEmpty ? "" : "\n  \(detail)")
    }
}

public enum ProcessRunnerError: Error, Sendable, CustomStringConvertible {
    case executableNotFound(String)
    case launchFailed(String, String)

    public var description: String {
        switch self {
        case .executableNotFound(let name): "\(name) was not found on PATH; run `make setup` to install what cxllab needs"
        case .launchFailed(let name, let why): "could not start \(name): \(why)"
        }
    }
}

/// Runs child processes with a deadline. Output is read concurrently so a chatty child never
/// blocks on a full pipe; a child past its deadline gets SIGTERM, then SIGKILL.
public enum ProcessRunner {
    public static func run(
        _ executable: String,
        _ arguments: [String] = [],
        environment: [String: String]? = nil,
        currentDirectory: String? = nil,
        input: Data? = nil,
        timeout: Duration? = nil,
        onOutputLine: (@Sendable (String) -> Void)? = nil
    ) async throws -> ProcessResult {
        let path = try ExecutableLocator.require(executable)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        if let environment { process.environment = environment }
        if let currentDirectory { process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }
        let stdout = Pipe()
        let stderr = Pipe()
        let stdin = input == nil ? nil : Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        process.standardInput = stdin ?? FileHandle.nullDevice

        let clock = ContinuousClock()
        let start = clock.now
        let state = RunState()
        let outputs = CollectedOutput()

        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<ProcessResult, Error>) in
                let group = DispatchGroup()
                for (pipe, isError) in [(stdout, false), (stderr, true)] {
                    group.enter()
                    DispatchQueue.global().async {
                        let data: Data
                        if !isError, let onOutputLine {
                            data = Self.readLines(from: pipe.fileHandleForReading, onLine: onOutputLine)
                        } else {
                            data = Self.readToEnd(from: pipe.fileHandleForReading) { _ in }
                        }
                        // Closed here, not when the last reference goes: a pending deadline
                        // kept the process, and so its pipes, for as long as the deadline.
                        try? pipe.fileHandleForReading.close()
                        outputs.store(data, isError: isError)
                        group.leave()
                    }
                }
                group.enter()
                process.terminationHandler = { _ in group.leave() }
                do {
                    try process.run()
                } catch {
                    continuation.resume(throwing: ProcessRunnerError.launchFailed(executable, "\(error)"))
                    return
                }
                state.started(process)
                try? stdout.fileHandleForWriting.close()
                try? stderr.fileHandleForWriting.close()
                if let input, let stdin {
                    try? stdin.fileHandleForReading.close()
                    DispatchQueue.global().async {
                        try? stdin.fileHandleForWriting.write(contentsOf: input)
                        try? stdin.fileHandleForWriting.close()
                    }
                }
                if let timeout {
                    let nanoseconds = timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000
                    // Weak: a run that ended lets its process go at once, not at its deadline.
                    DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(nanoseconds))) { [weak state] in
                        state?.expire()
                    }
                }
                group.notify(queue: .global()) {
                    let (out, err) = outputs.values
                    continuation.resume(returning: ProcessResult(
                        executable: path,
                        arguments: arguments,
                        status: process.terminationStatus,
                        standardOutput: out,
                        standardError: err,
                        duration: clock.now - start,
                        timedOut: state.didExpire
                    ))
                }
            }
        } onCancel: {
            state.expire()
        }
    }

    /// Reads to the end, handing on each complete line as it arrives (for progress).
    private static func readLines(from handle: FileHandle, onLine: @Sendable (String) -> Void) -> Data {
        var pending = Data()
        let all = readToEnd(from: handle) { chunk in
            pending.append(chunk)
            while let newline = pending.firstIndex(where: { $0 == 0x0A || $0 == 0x0D }) {
                let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
                pending.removeSubrange(pending.startIndex...newline)
                if !line.isEmpty { onLine(line) }
            }
        }
        if !pending.isEmpty { onLine(String(decoding: pending, as: UTF8.self)) }
        return all
    }

    /// Reads to end of file with read(2), retrying when a signal interrupts it: Foundation's
    /// readDataToEndOfFile and availableData trap on EINTR (a `try!` inside), which took a
    /// whole test process down once a signal arrived while a command's output was read.
    private static func readToEnd(from handle: FileHandle, onChunk: (Data) -> Void) -> Data {
        var all = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(handle.fileDescriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            let chunk = Data(buffer[0..<count])
            all.append(chunk)
            onChunk(chunk)
        }
        return all
    }

    /// Runs and throws `CommandFailure` unless the command exits 0 in time.
    @discardableResult
    public static func check(
        _ executable: String,
        _ arguments: [String] = [],
        environment: [String: String]? = nil,
        currentDirectory: String? = nil,
        timeout: Duration? = nil,
        context: String
    ) async throws -> ProcessResult {
        let result = try await run(
            executable, arguments, environment: environment, currentDirectory: currentDirectory, timeout: timeout
        )
        guard result.succeeded else { throw CommandFailure(result, context: context) }
        return result
    }
}

/// Tracks a running child so that a deadline or cancellation can stop it exactly once.
private final class RunState: Sendable {
    private struct State {
        var process: Process?
        var expired = false
        var pendingExpiry = false
    }

    private let state = Mutex(State())

    func started(_ process: Process) {
        let stopNow = state.withLock { state in
            state.process = process
            return state.pendingExpiry
        }
        if stopNow { expire() }
    }

    func expire() {
        let target: Process? = state.withLock { state in
            guard let process = state.process else {
                state.pendingExpiry = true
                return nil
            }
            guard !state.expired, process.isRunning else { return nil }
            state.expired = true
            return process
        }
        guard let process = target else { return }
        // The whole tree, gathered before anything dies (an orphan loses its link to the
        // child): make's compilers, a shell's pipeline. Left alive they would hold the output
        // pipes open, and the run would never end.
        let pids = [process.processIdentifier] + ProcessTree.descendants(of: process.processIdentifier)
        for pid in pids { kill(pid, SIGTERM) }
        DispatchQueue.global().asyncAfter(deadline: .now() + 2) {
            for pid in pids where ProcessTree.exists(pid) { kill(pid, SIGKILL) }
        }
    }

    var didExpire: Bool {
        state.withLock { $0.expired }
    }
}

/// A process's descendants, from /proc's parent links.
public enum ProcessTree {
    public static func descendants(of root: Int32) -> [Int32] {
        var children: [Int32: [Int32]] = [:]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry), let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, let parent = Int32(fields[1]) { children[parent, default: []].append(pid) }
        }
        var found: [Int32] = []
        var queue = [root]
        while let next = queue.popLast() {
            for child in children[next] ?? [] where !found.contains(child) {
                found.append(child)
                queue.append(child)
            }
        }
        return found
    }

    /// Whether the pid still names a process that has not been reaped.
    static func exists(_ pid: Int32) -> Bool { kill(pid, 0) == 0 }
}

/// The two pipes' contents, stored by their reader threads and read once both are done.
private final class CollectedOutput: Sendable {
    private let data = Mutex((output: Data(), error: Data()))

    func store(_ bytes: Data, isError: Bool) {
        data.withLock { data in
            if isError { data.error = bytes } else { data.output = bytes }
        }
    }

    var values: (Data, Data) {
        data.withLock { ($0.output, $0.error) }
    }
}

/// Quotes a word for a POSIX shell only when it needs it, so printed commands can be pasted.
public func shellQuoted(_ word: String) -> String {
    let safe = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-_./=:,+@%"))
    if !word.isEmpty, word.unicodeScalars.allSatisfy({ safe.contains($0) }) { return word }
    return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
