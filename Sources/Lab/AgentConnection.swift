import AgentProtocol
import Foundation
import HostSupport

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

/// The host's end of the agent channel: a Unix socket that libvirt's virtio-serial channel
/// listens on. A reader thread splits frames; replies resume their callers by id; hello and
/// heartbeat events are tracked, so a call fails fast with `unresponsive` when heartbeats
/// stop, and with `timedOut` when only its own answer is late.
public final class AgentConnection: @unchecked Sendable {
    public let socketPath: String
    /// Heartbeats older than this mean a hung guest (TCG guests stall for a second or two
    /// under load; ten is far beyond that).
    public let heartbeatTimeout: Double

    private let descriptor: Int32
    private let lock = NSLock()
    private var pending: [Int64: CheckedContinuation<JSONValue, Error>] = [:]
    private var outputHandlers: [Int64: @Sendable (String, String) -> Void] = [:]
    private var nextID: Int64 = 1
    private var lastHeartbeat: ContinuousClock.Instant?
    private var closedReason: String?
    private let writeLock = NSLock()
    private let eventsContinuation: AsyncStream<AgentFrame>.Continuation
    /// hello and heartbeat events as they arrive.
    public let events: AsyncStream<AgentFrame>
    private var watchdog: DispatchSourceTimer?
    /// Sees every request line before it is sent, and whether each reply was an error (a
    /// `SessionTranscript`).
    public var onRequest: (@Sendable (String) -> Void)? {
        get { lock.withLock { requestObserver } }
        set { lock.withLock { requestObserver = newValue } }
    }
    public var onReply: (@Sendable (_ failed: Bool) -> Void)? {
        get { lock.withLock { replyObserver } }
        set { lock.withLock { replyObserver = newValue } }
    }
    private var requestObserver: (@Sendable (String) -> Void)?
    private var replyObserver: (@Sendable (Bool) -> Void)?

    public init(socketPath: String, heartbeatTimeout: Double = 10) throws {
        self.socketPath = socketPath
        self.heartbeatTimeout = heartbeatTimeout
        (events, eventsContinuation) = AsyncStream<AgentFrame>.makeStream(bufferingPolicy: .bufferingNewest(64))
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw AgentConnectionError.cannotConnect(socketPath, String(cString: strerror(errno))) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(socketPath.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            Glibc.close(fd)
            throw AgentConnectionError.cannotConnect(socketPath, "path too long for a Unix socket")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            let why = String(cString: strerror(errno))
            Glibc.close(fd)
            throw AgentConnectionError.cannotConnect(socketPath, why)
        }
        descriptor = fd
        startReader()
        startWatchdog()
    }

    deinit {
        watchdog?.cancel()
        shutdown(descriptor, Int32(SHUT_RDWR))
        Glibc.close(descriptor)
    }

    /// Stops the connection: pending calls fail, the events stream ends.
    public func close(reason: String = "closed by the host") {
        fail(reason: reason)
        shutdown(descriptor, Int32(SHUT_RDWR))
    }

    /// Waits for the agent to show life (its hello or a heartbeat), then shakes hands.
    public func handshake(deadline: Duration) async throws -> JSONValue {
        let events = self.events
        try await withDeadline(deadline, what: "the guest agent's first message") {
            for await frame in events {
                switch frame {
                case .hello, .heartbeat: return
                case .reply, .output: continue
                }
            }
            throw AgentConnectionError.closed(self.closedReasonText)
        }
        do {
            return try await call(.hello, ["version": .int(AgentProtocol.version)], timeout: .seconds(30))
        } catch AgentConnectionError.agent(let error) {
            throw AgentConnectionError.handshakeRefused(error.description)
        }
    }

    /// Sends one request and waits for its reply.
    /// With `onOutput`, the request asks for its output as it comes (stream name, text).
    public func call(_ method: AgentMethod, _ params: [String: JSONValue] = [:], timeout: Duration = .seconds(120),
                     onOutput: (@Sendable (String, String) -> Void)? = nil) async throws -> JSONValue {
        var params = params
        if onOutput != nil { params["stream"] = true }
        let id: Int64 = lock.withLock {
            defer { nextID += 1 }
            if let onOutput { outputHandlers[nextID] = onOutput }
            return nextID
        }
        defer { _ = lock.withLock { outputHandlers.removeValue(forKey: id) } }
        let line = AgentRequest(id: id, method: method, params: params).line
        onRequest?(line)
        let seconds = timeout.seconds
        return try await withCheckedThrowingContinuation { continuation in
            lock.lock()
            if let reason = closedReason {
                lock.unlock()
                continuation.resume(throwing: AgentConnectionError.closed(reason))
                return
            }
            pending[id] = continuation
            lock.unlock()
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
        return writeLock.withLock {
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
        lock.withLock { lastHeartbeat.map { (ContinuousClock.now - $0).seconds } }
    }

    private var closedReasonText: String { lock.withLock { closedReason ?? "no reason given" } }

    private func resolve(_ id: Int64, with result: Result<JSONValue, Error>) {
        let continuation: CheckedContinuation<JSONValue, Error>? = lock.withLock { pending.removeValue(forKey: id) }
        continuation?.resume(with: result)
    }

    private func fail(reason: String) {
        let waiting: [CheckedContinuation<JSONValue, Error>] = lock.withLock {
            if closedReason == nil { closedReason = reason }
            defer { pending.removeAll() }
            return Array(pending.values)
        }
        for continuation in waiting { continuation.resume(throwing: AgentConnectionError.closed(reason)) }
        eventsContinuation.finish()
    }

    private func failUnresponsive(_ seconds: Double) {
        let waiting: [CheckedContinuation<JSONValue, Error>] = lock.withLock {
            defer { pending.removeAll() }
            return Array(pending.values)
        }
        for continuation in waiting { continuation.resume(throwing: AgentConnectionError.unresponsive(secondsSinceHeartbeat: seconds)) }
    }

    private func handle(_ line: [UInt8]) {
        guard let frame = try? AgentFrame.parse(line) else { return }
        switch frame {
        case .reply(let id?, let result):
            if case .failure = result { onReply?(true) } else { onReply?(false) }
            resolve(id, with: result.mapError { AgentConnectionError.agent($0) })
        case .reply(nil, _):
            eventsContinuation.yield(frame)
        case .hello, .heartbeat:
            lock.withLock { lastHeartbeat = ContinuousClock.now }
            eventsContinuation.yield(frame)
        case .output(let id, let stream, let data):
            let handler = lock.withLock { outputHandlers[id] }
            handler?(stream, data)
        }
    }

    private func startReader() {
        let thread = Thread { [weak self] in
            guard let fd = self?.descriptor else { return }
            var buffer = [UInt8](repeating: 0, count: 65536)
            var pending: [UInt8] = []
            while true {
                let count = recv(fd, &buffer, buffer.count, 0)
                if count < 0 && errno == EINTR { continue }
                if count <= 0 {
                    self?.fail(reason: count == 0 ? "the guest side went away" : String(cString: strerror(errno)))
                    return
                }
                pending += buffer[0..<count]
                while let newline = pending.firstIndex(of: 0x0A) {
                    let line = Array(pending[..<newline])
                    pending.removeSubrange(...newline)
                    if !line.isEmpty { self?.handle(line) }
                }
            }
        }
        thread.name = "cxllab-agent-reader"
        thread.start()
    }

    /// Checks once a second whether heartbeats stopped while calls wait.
    private func startWatchdog() {
        let timer = DispatchSource.makeTimerSource(queue: .global())
        timer.schedule(deadline: .now() + 1, repeating: 1)
        timer.setEventHandler { [weak self] in
            guard let self else { return }
            let (stale, waiting) = self.lock.withLock { () -> (Double?, Bool) in
                (self.lastHeartbeat.map { (ContinuousClock.now - $0).seconds }, !self.pending.isEmpty)
            }
            if waiting, let stale, stale > self.heartbeatTimeout { self.failUnresponsive(stale) }
        }
        timer.resume()
        watchdog = timer
    }
}
