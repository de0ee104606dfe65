import Foundation
import HostSupport
import Synchronization

/// A QEMU that cxllab runs itself (`DirectQEMUBackend`), as a child of this process: what
/// libvirt's domain is to a `LabSession`. Its exit is an event (`exitSignal` becomes readable,
/// `waitForExit` returns), its stderr goes to a log in the lab folder, read as evidence when
/// it died.
final class EmulatorProcess: Sendable {
    /// How QEMU ended.
    struct Exit: Sendable, Equatable {
        let status: Int32
        let bySignal: Bool

        /// QEMU ended by itself with an error or a signal. A guest that powers off or reboots
        /// (a panic with `panic=-1`, under `-no-reboot`) makes QEMU exit 0; the SIGKILL of a
        /// teardown is asked for, and `killed` says so.
        func emulatorFailed(killed: Bool) -> Bool { !killed && (bySignal || status != 0) }

        var description: String { bySignal ? "killed by signal \(status)" : "exit status \(status)" }
    }

    struct State {
        var exit: Exit?
        var killed = false
        /// Held while it runs: Foundation reports the exit to a live `Process` only.
        var process: Process?
        var waiters: [UUID: CheckedContinuation<Exit?, Never>] = [:]
    }

    let pid: Int32
    let logPath: String
    private let tracker = Tracker()
    /// Shared with Foundation's termination handler, which runs before `self` is made.
    final class Tracker: Sendable { let state = Mutex(State()) }
    /// Readable once QEMU has exited: for a `poll` (`AgentListener.accept`).
    private let exitPipe: [Int32]
    var exitSignal: Int32 { exitPipe[0] }
    /// QEMU's exit, once: for the lab's monitor, which tells pending agent calls at once.
    let exits: AsyncStream<Exit>

    /// Starts `executable` with `arguments`; stdin is /dev/null, stdout and stderr go to `logPath`.
    init(executable: String, arguments: [String], logPath: String) throws {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw LabError(.host, "cannot make a pipe: \(String(cString: strerror(errno)))") }
        // Not QEMU's to inherit.
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        exitPipe = fds
        self.logPath = logPath
        let (exits, exitsContinuation) = AsyncStream<Exit>.makeStream(bufferingPolicy: .bufferingNewest(1))
        self.exits = exits
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        do {
            guard FileManager.default.createFile(atPath: logPath, contents: nil), let log = FileHandle(forWritingAtPath: logPath) else {
                throw LabError(.host, "cannot make QEMU's log \(logPath)")
            }
            defer { try? log.close() }
            process.standardOutput = log
            process.standardError = log
            let tracker = tracker, writeEnd = fds[1]
            process.terminationHandler = { process in
                let exit = Exit(status: process.terminationStatus, bySignal: process.terminationReason == .uncaughtSignal)
                let waiters = tracker.state.withLock { state in
                    state.exit = exit
                    state.process = nil
                    defer { state.waiters.removeAll() }
                    return Array(state.waiters.values)
                }
                var byte: UInt8 = 1
                _ = Glibc.write(writeEnd, &byte, 1)
                for waiter in waiters { waiter.resume(returning: exit) }
                exitsContinuation.yield(exit)
                exitsContinuation.finish()
            }
            try process.run()
            tracker.state.withLock { state in if state.exit == nil { state.process = process } }
        } catch {
            close(fds[0])
            close(fds[1])
            throw error as? LabError ?? LabError(.host, "cannot start \(executable): \(error)", cause: error)
        }
        pid = process.processIdentifier
    }

    deinit {
        close(exitPipe[0])
        close(exitPipe[1])
    }

    var exit: Exit? { tracker.state.withLock { $0.exit } }
    /// Whether this process asked for the exit (`kill()`).
    var wasKilled: Bool { tracker.state.withLock { $0.killed } }

    /// SIGKILL, unless it has exited already (its pid may then be another process's).
    /// Idempotent; safe from a signal handler's thread.
    func kill() {
        let running = tracker.state.withLock { state in
            if state.exit == nil { state.killed = true }
            return state.exit == nil
        }
        if running { Glibc.kill(pid, SIGKILL) }
    }

    /// How QEMU ended, once it has; nil when it still runs after `deadline`.
    func waitForExit(deadline: Duration) async -> Exit? {
        if let exit { return exit }
        let id = UUID()
        let tracker = tracker
        enum Registration { case exited(Exit?), waiting }
        return try? await withDeadline(deadline, what: "QEMU's exit") {
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Exit?, Never>) in
                    let registration = tracker.state.withLock { state -> Registration in
                        if let exit = state.exit { return .exited(exit) }
                        if Task.isCancelled { return .exited(nil) }
                        state.waiters[id] = continuation
                        return .waiting
                    }
                    if case .exited(let exit) = registration { continuation.resume(returning: exit) }
                }
            } onCancel: {
                tracker.state.withLock { $0.waiters.removeValue(forKey: id) }?.resume(returning: nil)
            }
        } ?? nil
    }
}
