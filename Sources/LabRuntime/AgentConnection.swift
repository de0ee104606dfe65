import AgentProtocol
import Foundation
import HostSupport
import Synchronization

public enum AgentConnectionError: Error, Sendable, CustomStringConvertible {
    case cannotConnect(String, String)
    case closed(String)
    case unresponsive(secondsSinceHeartbeat: Double)
    case timedOut(method: String, seconds: Double)
    case agent(AgentError)
    case handshakeRefused(String)

    public var description: String {
        switch self {
        case .cannotConnect(let path, let why): "cannot connect to the agent socket \(path): \(why)"
        case .closed(let why): "the agent's channel closed: \(why)"
        case .unresponsive(let seconds): String(format: "the guest agent stopped answering: no heartbeat for %.0f s (the guest hangs)", seconds)
        case .timedOut(let method, let seconds): String(format: "the agent did not answer %@ within %.0f s, though its heartbeats go on", method, seconds)
        case .agent(let error): "the agent refused: \(error)"
        case .handshakeRefused(let why): "the agent refused the handshake: \(why)"
        }
    }
}

/// Sees the traffic of an agent connection: every request as sent, every reply as received
/// (a `SessionTranscript`).
public protocol AgentTrafficObserver: Sendable {
    func sent(_ request: AgentRequest)
    func received(id: Int64, _ reply: Result<JSONValue, AgentError>)
}

/// The host's end of the agent channel: a Unix socket that libvirt's virtio-serial channel
/// listens on. A reader thread splits frames; replies resume their callers by id; hello and
/// heartbeat events are tracked, so a call fails fast with `unresponsive` when heartbeats
/// stop, and with `timedOut` when only its own answer is late.
///
/// Unchecked only for the watchdog, a Dispatch timer source (thread-safe, but not marked
/// Sendable on Linux); every mutable field is in `state`.
public final class AgentConnection: @unchecked Sendable {
    public let socketPath: String
    /// Heartbeats older than this mean a hung guest (TCG guests stall for a second or two
    /// under load; ten is far beyond that).
    public let heartbeatTimeout: Double

    private struct State {
        var pending: [Int64: CheckedContinuation<JSONValue, Error>] = [:]
        var outputHandlers: [Int64: @Sendable (String, String) -> Void] = [:]
        var nextID: Int64 = 1
        var lastHeartbeat: ContinuousClock.Instant?
        var closedReason: String?
        var observer: (any AgentTrafficObserver)?
    }

    private let descriptor: Int32
    private let state = Mutex(State())
    /// Held while a frame is written, so frames never interleave.
    private let writing = Mutex(())
    private let eventsContinuation: AsyncStream<AgentFrame>.Continuation
    /// hello and heartbeat events as they arrive.
    public let events: AsyncStream<AgentFrame>
    private let watchdog: any DispatchSourceTimer
    /// Sees every request before it is sent and every reply.
    public var observer: (any AgentTrafficObserver)? {
        get { state.withLock { $0.observer } }
        set { state.withLock { $0.observer = newValue } }
    }

    /// Connects to the socket that QEMU listens on (libvirt's channel).
    public convenience init(socketPath: String, heartbeatTimeout: Double = 10) throws {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw AgentConnectionError.cannotConnect(socketPath, String(cString: strerror(errno))) }
        guard var address = UnixSocketAddress.make(socketPath) else {
            Glibc.close(fd)
            throw AgentConnectionError.cannotConnect(socketPath, "path too long for a Unix socket")
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            let why = String(cString: strerror(errno))
            Glibc.close(fd)
            throw AgentConnectionError.cannotConnect(socketPath, why)
        }
        self.init(connected: fd, socketPath: socketPath, heartbeatTimeout: heartbeatTimeout)
    }

    /// Takes over a socket already connected to the agent's channel (one that QEMU connected
    /// to, `AgentListener`); the connection closes it.
    init(connected fd: Int32, socketPath: String, heartbeatTimeout: Double) {
        self.socketPath = socketPath
        self.heartbeatTimeout = heartbeatTimeout
        (events, eventsContinuation) = AsyncStream<AgentFrame>.makeStream(bufferingPolicy: .bufferingNewest(64))
        descriptor = fd
        watchdog = DispatchSource.makeTimerSource(queue: .global())
        startReader()
        startWatchdog()
    }

    deinit {
        watchdog.cancel()
        shutdown(descriptor, Int32(SHUT_RDWR))
        Glibc.close(descriptor)
    }

    /// Stops the connection: pending calls fail, the events stream ends.
    public func close(reason: String = "closed by the host") {
        fail(reason: reason)
        shutdown(descriptor, Int32(SHUT_RDWR))
    }

    /// Waits for the agent to show life (its hello or a heartbeat), then shakes hands. A
    /// restored guest's agent is already serving (its hello went to the host that saved it):
    /// `waitingForLife: false` asks at once instead of waiting up to a heartbeat's interval.
    public func handshake(deadline: Duration, waitingForLife: Bool = true) async throws -> HelloReply {
        let events = self.events
        if waitingForLife {
            try await withDeadline(deadline, what: "the guest agent's first message") {
                for await frame in events {
                    switch frame {
                    case .hello, .heartbeat: return
                    case .reply, .output: continue
                    }
                }
                throw AgentConnectionError.closed(self.closedReasonText)
            }
        }
        do {
            return try await send(AgentCalls.Hello(), timeout: waitingForLife ? .seconds(30) : deadline)
        } catch AgentConnectionError.agent(let error) {
            throw AgentConnectionError.handshakeRefused(error.description)
        }
    }

    /// Sends one typed request and waits for its typed reply. With `onOutput`, the output of
    /// a streamed request (`RunTool`, `Shell` with `stream`) comes as it is written.
    public func send<Call: AgentCall>(_ call: Call, timeout: Duration = .seconds(120),
                                      onOutput: (@Sendable (String, String) -> Void)? = nil) async throws -> Call.Reply {
        Call.reply(from: try await self.call(call.method, call.params, timeout: timeout, onOutput: onOutput))
    }

    /// Sends one request as given (tests send requests the typed calls would never form).
    func call(_ method: AgentMethod, _ params: [String: JSONValue] = [:], timeout: Duration = .seconds(120),
              onOutput: (@Sendable (String, String) -> Void)? = nil) async throws -> JSONValue {
        let (id, observer): (Int64, (any AgentTrafficObserver)?) = state.withLock { state in
            defer { state.nextID += 1 }
            if let onOutput { state.outputHandlers[state.nextID] = onOutput }
            return (state.nextID, state.observer)
        }
        defer { _ = state.withLock { $0.outputHandlers.removeValue(forKey: id) } }
        let request = AgentRequest(id: id, method: method, params: params)
        observer?.sent(request)
        let line = request.line
        let seconds = timeout.seconds
        return try await withCheckedThrowingContinuation { continuation in
            let closed = state.withLock { state -> String? in
                if let reason = state.closedReason { return reason }
                state.pending[id] = continuation
                return nil
            }
            if let closed {
                continuation.resume(throwing: AgentConnectionError.closed(closed))
                return
            }
            DispatchQueue.global().asyncAfter(deadline: .now() + seconds) { [weak self] in
                self?.resolve(id, with: .failure(AgentConnectionError.timedOut(method: method.rawValue, seconds: seconds)))
            }
            if !write(line) {
                resolve(id, with: .failure(AgentConnectionError.closed("writing to the agent failed: \(String(cString: strerror(errno)))")))
            }
        }
    }

    /// Sends raw bytes (tests use it to send malformed frames).
    @discardableResult
    public func write(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        return writing.withLock { _ in
            var offset = 0
            while offset < bytes.count {
                let written = bytes[offset...].withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if written < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                offset += written
            }
            return true
        }
    }

    /// Seconds since the last heartbeat, or nil before the first.
    public var secondsSinceHeartbeat: Double? {
        state.withLock { $0.lastHeartbeat.map { (ContinuousClock.now - $0).seconds } }
    }

    private var closedReasonText: String { state.withLock { $0.closedReason ?? "no reason given" } }

    private func resolve(_ id: Int64, with result: Result<JSONValue, Error>) {
        let continuation: CheckedContinuation<JSONValue, Error>? = state.withLock { $0.pending.removeValue(forKey: id) }
        continuation?.resume(with: result)
    }

    private func fail(reason: String) {
        let waiting: [CheckedContinuation<JSONValue, Error>] = state.withLock { state in
            if state.closedReason == nil { state.closedReason = reason }
            defer { state.pending.removeAll() }
            return Array(state.pending.values)
        }
        for continuation in waiting { continuation.resume(throwing: AgentConnectionError.closed(reason)) }
        eventsContinuation.finish()
    }

    private func failUnresponsive(_ seconds: Double) {
        let waiting: [CheckedContinuation<JSONValue, Error>] = state.withLock { state in
            defer { state.pending.removeAll() }
            return Array(state.pending.values)
        }
        for continuation in waiting { continuation.resume(throwing: AgentConnectionError.unresponsive(secondsSinceHeartbeat: seconds)) }
    }

    private func handle(_ line: [UInt8]) {
        guard let frame = try? AgentFrame.parse(line) else { return }
        switch frame {
        case .reply(let id?, let result):
            observer?.received(id: id, result)
            resolve(id, with: result.mapError { AgentConnectionError.agent($0) })
        case .reply(nil, _):
            eventsContinuation.yield(frame)
        case .hello, .heartbeat:
            state.withLock { $0.lastHeartbeat = ContinuousClock.now }
            eventsContinuation.yield(frame)
        case .output(let id, let stream, let data):
            let handler = state.withLock { $0.outputHandlers[id] }
            handler?(stream, data)
        }
    }

    private func startReader() {
        let thread = Thread { [weak self] in
            guard let fd = self?.descriptor else { return }
            var buffer = [UInt8](repeating: 0, count: 65536)
            // Bounded: a guest that floods the channel without newlines costs at most one
            // frame's worth of memory.
            var reader = FrameReader(limit: AgentProtocol.maximumReplyBytes)
            while true {
                let count = recv(fd, &buffer, buffer.count, 0)
                if count < 0 && errno == EINTR { continue }
                if count <= 0 {
                    self?.fail(reason: count == 0 ? "the guest side went away" : String(cString: strerror(errno)))
                    return
                }
                for item in reader.feed(buffer[0..<count]) {
                    switch item {
                    case .frame(let line):
                        self?.handle(line)
                    case .oversized(let size):
                        self?.fail(reason: "the agent sent a frame of \(size) bytes, over the limit of \(AgentProtocol.maximumReplyBytes): "
                            + "a command's output too large to take")
                        return
                    }
                }
            }
        }
        thread.name = "cxllab-agent-reader"
        thread.start()
    }

    /// Checks once a second whether heartbeats stopped while calls wait.
    private func startWatchdog() {
        let timer = watchdog
        timer.schedule(deadline: .now() + 1, repeating: 1)
        timer.setEventHandler { [weak self] in
            guard let self else { return }
            let (stale, waiting) = self.state.withLock { state -> (Double?, Bool) in
                (state.lastHeartbeat.map { (ContinuousClock.now - $0).seconds }, !state.pending.isEmpty)
            }
            if waiting, let stale, stale > self.heartbeatTimeout { self.failUnresponsive(stale) }
        }
        timer.resume()
    }
}
