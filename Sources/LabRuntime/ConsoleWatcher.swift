import Foundation
import HostSupport
import Synchronization

/// A line on the guest's console that means trouble.
public struct ConsoleAlert: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable, Codable {
        case panic, oops, bug, warning, hungTask = "hung-task"
        /// Kinds that end a cell at once: the guest is gone or cannot be trusted.
        public var isFatal: Bool { self == .panic }
        /// Kinds after which the guest runs on but its session ends (after `crashGrace`): an
        /// oops or BUG killed the task it hit, and calls that task served never return.
        public var endsSession: Bool { self == .oops || self == .bug }
    }
    public let kind: Kind
    public let line: String
    public var description: String { "\(kind.rawValue): \(line)" }
    /// How long a session outlives an oops or BUG.
    public static let crashGrace = Duration.seconds(5)

    /// Classifies one console line.
    public static func classify(_ line: String) -> ConsoleAlert? {
        let patterns: [(String, Kind)] = [
            ("Kernel panic", .panic), ("Oops:", .oops), ("BUG:", .bug), ("kernel BUG at", .bug),
            ("WARNING:", .warning), ("blocked for more than", .hungTask), ("hung_task", .hungTask),
        ]
        for (pattern, kind) in patterns where line.contains(pattern) {
            return ConsoleAlert(kind: kind, line: line.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return nil
    }
}

/// Follows a guest's console log as QEMU writes it, with inotify (no polling), and reports
/// alarming lines as they appear. Everything read is kept for evidence.
public final class ConsoleWatcher: Sendable {
    public let path: String
    /// A console that grows past this keeps its newest part (the evidence is at the end): a
    /// guest that floods its console costs bounded memory.
    static let keptBytes = 4 << 20
    /// An unterminated line longer than this is taken as it is.
    static let longestLine = 64 << 10

    private struct State {
        var text = ""
        /// Bytes dropped from the front of `text`, so offsets into the whole console stay valid.
        var dropped = 0
        var found: [ConsoleAlert] = []
        var stopped = false
        var fatalWaiters: [UUID: CheckedContinuation<ConsoleAlert?, Never>] = [:]
        var lineWaiters: [UUID: (text: String, continuation: CheckedContinuation<String?, Never>)] = [:]
        var growthWaiters: [UUID: (size: Int, continuation: CheckedContinuation<Void, Never>)] = [:]
    }
    /// The file being followed: touched by the follower thread and by `catchUp()`.
    private struct Reader {
        var file: Int32 = -1
        var offset: off_t = 0
        var partial: [UInt8] = []
    }
    private let state = Mutex(State())
    private let reader = Mutex(Reader())
    private let alertsContinuation: AsyncStream<ConsoleAlert>.Continuation
    public let alerts: AsyncStream<ConsoleAlert>
    private let wakeup: [Int32]

    public init(path: String) {
        self.path = path
        (alerts, alertsContinuation) = AsyncStream<ConsoleAlert>.makeStream(bufferingPolicy: .bufferingNewest(256))
        var fds: [Int32] = [0, 0]
        _ = pipe(&fds)
        wakeup = fds
        let thread = Thread { [self] in self.follow() }
        thread.name = "cxllab-console"
        thread.start()
    }

    deinit {
        Foundation.close(wakeup[0])
        Foundation.close(wakeup[1])
    }

    public func stop() {
        let (waiters, lineWaiting, growthWaiting) = state.withLock { state in
            state.stopped = true
            defer {
                state.fatalWaiters.removeAll()
                state.lineWaiters.removeAll()
                state.growthWaiters.removeAll()
            }
            return (Array(state.fatalWaiters.values), state.lineWaiters.values.map(\.continuation), state.growthWaiters.values.map(\.continuation))
        }
        for waiter in waiters { waiter.resume(returning: nil) }
        for waiter in lineWaiting { waiter.resume(returning: nil) }
        for waiter in growthWaiting { waiter.resume() }
        var byte: UInt8 = 1
        _ = Foundation.write(wakeup[1], &byte, 1)
    }

    /// The console so far (its newest `keptBytes` when it grew past them).
    public var contents: String { state.withLock { $0.text } }

    /// What came after byte `offset` of the whole console, and the offset of its end: for a
    /// follower that prints each byte once, however much was dropped meanwhile.
    public func output(after offset: Int) -> (text: Substring, end: Int) {
        state.withLock { state in
            let end = state.dropped + state.text.utf8.count
            let skip = max(0, offset - state.dropped)
            guard skip < state.text.utf8.count else { return ("", end) }
            return (state.text[state.text.utf8.index(state.text.utf8.startIndex, offsetBy: skip)...], end)
        }
    }
    public var alertsSoFar: [ConsoleAlert] { state.withLock { $0.found } }

    /// The last `count` lines, for evidence.
    public func tail(_ count: Int = 60) -> String {
        contents.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).suffix(count).joined(separator: "\n")
    }

    private func follow() {
        let inotify = inotify_init1(Int32(IN_CLOEXEC))
        defer {
            if inotify >= 0 { Foundation.close(inotify) }
            alertsContinuation.finish()
        }
        var buffer = [UInt8](repeating: 0, count: 65536)
        let folder = (path as NSString).deletingLastPathComponent
        // Watch the folder too: the file may not exist yet when watching starts.
        _ = inotify_add_watch(inotify, folder, UInt32(IN_CREATE))
        var watching = false
        while !state.withLock({ $0.stopped }) {
            if drain(), !watching {
                _ = inotify_add_watch(inotify, path, UInt32(IN_MODIFY | IN_CLOSE_WRITE))
                watching = true
            }
            var fds = [pollfd(fd: inotify, events: Int16(POLLIN), revents: 0), pollfd(fd: wakeup[0], events: Int16(POLLIN), revents: 0)]
            // The timeout only guards against a missed notification; events wake it first.
            _ = poll(&fds, 2, 2000)
            if fds[0].revents != 0 { _ = read(inotify, &buffer, buffer.count) }
        }
        reader.withLock { reader in
            if reader.file >= 0 { Foundation.close(reader.file) }
            reader.file = -1
        }
    }

    /// Reads whatever the file has beyond what was read; true once the file is open.
    @discardableResult
    private func drain() -> Bool {
        // Read and consumed under the reader's lock, so two drains (the follower, `catchUp`)
        // keep the text in order.
        reader.withLock { reader -> Bool in
            // virtlogd may truncate or replace the log once QEMU starts: follow the path, not
            // the first file that stood there.
            var onDisk = stat()
            if reader.file >= 0, stat(path, &onDisk) == 0 {
                var open = stat()
                fstat(reader.file, &open)
                if open.st_ino != onDisk.st_ino {
                    Foundation.close(reader.file)
                    reader = Reader()
                } else if onDisk.st_size < reader.offset {
                    reader.offset = 0
                    reader.partial = []
                }
            }
            if reader.file < 0 { reader.file = open(path, O_RDONLY | O_CLOEXEC) }
            guard reader.file >= 0 else { return false }
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = pread(reader.file, &buffer, buffer.count, reader.offset)
                if count <= 0 { break }
                reader.offset += off_t(count)
                // Split bytes, not Characters: a serial console ends lines with "\r\n", which
                // Swift counts as one Character that is not "\n".
                reader.partial += buffer[0..<count]
                var lines: [String] = []
                var start = reader.partial.startIndex
                while let newline = reader.partial[start...].firstIndex(of: 0x0A) {
                    var line = reader.partial[start..<newline]
                    if line.last == 0x0D { line = line.dropLast() }
                    lines.append(String(decoding: line, as: UTF8.self))
                    start = newline + 1
                }
                reader.partial.removeSubrange(reader.partial.startIndex..<start)
                if reader.partial.count > Self.longestLine {
                    lines.append(String(decoding: reader.partial, as: UTF8.self))
                    reader.partial.removeAll()
                }
                consume(lines, raw: String(decoding: buffer[0..<count], as: UTF8.self))
            }
            return true
        }
    }

    /// Reads the rest of the file now, for a caller that must judge by everything QEMU wrote
    /// (a guest that died may have printed its panic an instant before its channel closed).
    public func catchUp() {
        drain()
    }

    private func consume(_ lines: [String], raw: String) {
        var new: [ConsoleAlert] = []
        for line in lines {
            if let alert = ConsoleAlert.classify(line) { new.append(alert) }
        }
        // The text grows and line waiters are matched under one lock, so a waiter registering
        // meanwhile either sees the new text or is matched here.
        let (matched, grown) = state.withLock { state -> ([(CheckedContinuation<String?, Never>, String)], [CheckedContinuation<Void, Never>]) in
            state.text += raw
            if state.text.utf8.count > Self.keptBytes {
                let keep = Self.keptBytes * 3 / 4
                let cut = state.text.utf8.index(state.text.utf8.endIndex, offsetBy: -keep)
                state.dropped += state.text.utf8.distance(from: state.text.utf8.startIndex, to: cut)
                state.text = String(state.text[cut...])
            }
            var matched: [(CheckedContinuation<String?, Never>, String)] = []
            for (id, waiter) in state.lineWaiters {
                if let line = lines.first(where: { $0.contains(waiter.text) }) {
                    matched.append((waiter.continuation, line))
                    state.lineWaiters.removeValue(forKey: id)
                }
            }
            let size = state.dropped + state.text.utf8.count
            let grown = state.growthWaiters.filter { $0.value.size < size }
            for id in grown.keys { state.growthWaiters.removeValue(forKey: id) }
            return (matched, grown.values.map(\.continuation))
        }
        for (continuation, line) in matched { continuation.resume(returning: line) }
        for continuation in grown { continuation.resume() }
        let fatal = new.first { $0.kind.isFatal }
        let waiters = state.withLock { state -> [CheckedContinuation<ConsoleAlert?, Never>] in
            state.found += new
            guard fatal != nil else { return [] }
            defer { state.fatalWaiters.removeAll() }
            return Array(state.fatalWaiters.values)
        }
        for waiter in waiters { waiter.resume(returning: fatal) }
        for alert in new { alertsContinuation.yield(alert) }
    }

    /// The first line containing `text` (already read or still to come), or nil when none came
    /// in time or the watcher stopped.
    public func waitForLine(containing text: String, deadline: Duration) async -> String? {
        let result = try? await withDeadline(deadline, what: "a console line with \(text)") { [self] () -> String? in
            let id = UUID()
            return await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    let known = state.withLock { state -> String?? in
                        if let line = state.text.split(separator: "\n").first(where: { $0.contains(text) }) { return .some(String(line)) }
                        if state.stopped || Task.isCancelled { return .some(nil) }
                        state.lineWaiters[id] = (text, continuation)
                        return .none
                    }
                    if let known { continuation.resume(returning: known) }
                }
            } onCancel: {
                let waiter = state.withLock { $0.lineWaiters.removeValue(forKey: id) }
                waiter?.continuation.resume(returning: nil)
            }
        }
        return result ?? nil
    }

    /// Returns once the console holds more than `size` bytes, the watcher stops, or the deadline
    /// passes: what a follower (`cxllab console`) waits on instead of polling.
    public func waitForGrowth(beyond size: Int, deadline: Duration) async {
        _ = try? await withDeadline(deadline, what: "more console output") { [self] in
            let id = UUID()
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let ready = state.withLock { state -> Bool in
                        if state.dropped + state.text.utf8.count > size || state.stopped || Task.isCancelled { return true }
                        state.growthWaiters[id] = (size, continuation)
                        return false
                    }
                    if ready { continuation.resume() }
                }
            } onCancel: {
                let waiter = state.withLock { $0.growthWaiters.removeValue(forKey: id) }
                waiter?.continuation.resume()
            }
        }
    }

    /// The first fatal line (a panic), as soon as it is read, or nil when none came in time.
    public func waitForFatal(deadline: Duration) async -> ConsoleAlert? {
        let result = try? await withDeadline(deadline, what: "a fatal console line") { [self] () -> ConsoleAlert? in
            let id = UUID()
            return await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    let known = state.withLock { state -> ConsoleAlert?? in
                        if let fatal = state.found.first(where: { $0.kind.isFatal }) { return .some(fatal) }
                        if state.stopped || Task.isCancelled { return .some(nil) }
                        state.fatalWaiters[id] = continuation
                        return .none
                    }
                    if let known { continuation.resume(returning: known) }
                }
            } onCancel: {
                let waiter = state.withLock { $0.fatalWaiters.removeValue(forKey: id) }
                waiter?.resume(returning: nil)
            }
        }
        return result ?? nil
    }
}
