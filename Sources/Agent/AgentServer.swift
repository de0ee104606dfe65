import AgentProtocol
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The agent's I/O: finds its virtio-serial port by name, says hello, sends heartbeats from a
/// thread of their own (so they flow while a request runs), and answers frames in order.
/// The server and its handler stay on the thread that calls `serve`; only the `FrameWriter`
/// is shared with the heartbeat thread.
public final class AgentServer {
    let handler: AgentHandler
    let descriptor: Int32
    let writer: FrameWriter

    public init(descriptor: Int32, handler: AgentHandler) {
        self.descriptor = descriptor
        self.handler = handler
        let writer = FrameWriter(descriptor: descriptor)
        self.writer = writer
        handler.emit = { frame in writer.send(frame) }
    }

    /// The /dev node of the virtio-serial port named `name`, waiting up to `seconds` for the
    /// virtio modules to have created it.
    public static func findPort(named name: String, files: GuestFiles = GuestFiles(), seconds: Double = 20) -> String? {
        let deadline = Spawn.monotonicSeconds() + seconds
        repeat {
            for port in files.list("/sys/class/virtio-ports") {
                if files.read("/sys/class/virtio-ports/\(port)/name")?.trimmingTrailingNewlines == name {
                    return "/dev/" + port
                }
            }
            // sysfs offers no change notification to wait on; the port normally exists already
            // because init loads the virtio modules synchronously before starting the agent.
            var pause = timespec(tv_sec: 0, tv_nsec: 100_000_000)
            nanosleep(&pause, nil)
        } while Spawn.monotonicSeconds() < deadline
        return nil
    }

    /// Serves until power_off; never returns otherwise.
    public func serve() {
        let hostConnects = HostConnectSignal(port: descriptor)
        writer.send(.hello(version: AgentProtocol.version, agent: AgentHandler.agentName, kernel: handler.kernelRelease))
        startHeartbeat()
        var reader = FrameReader()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = read(descriptor, &buffer, buffer.count)
            if count < 0 && errno == EINTR { continue }
            if count <= 0 {
                // No host on the other end. virtio-console then answers read() with 0 and
                // poll() with POLLHUP at once, so neither can wait for the host to come. It
                // sends SIGIO when a host connects, though (`HostConnectSignal`), and its
                // writes wait: the heartbeat thread's next frame goes through only once a host
                // is connected. Either wakes this loop; a timeout bounds the wait besides.
                writer.waitForDelivery(seconds: 5, orReadable: hostConnects.descriptor)
                hostConnects.drain()
                continue
            }
            for item in reader.feed(buffer[0..<count]) {
                switch item {
                case .frame(let frame):
                    writer.send(handler.reply(to: frame))
                    if handler.powerOffRequested { powerOff() }
                case .oversized(let size):
                    writer.send(.reply(id: nil, .failure(AgentError(.frameTooLarge, "frame of \(size) bytes; the limit is \(AgentProtocol.maximumFrameBytes)"))))
                }
            }
        }
    }

    /// The heartbeat thread gets the writer (Sendable) and nothing else of the server.
    func startHeartbeat() {
        let box = Unmanaged.passRetained(writer)
        var thread = pthread_t()
        pthread_create(&thread, nil, { context in
            let writer = Unmanaged<FrameWriter>.fromOpaque(context!).takeUnretainedValue()
            var sequence: Int64 = 0
            while true {
                var interval = timespec(tv_sec: AgentProtocol.heartbeatIntervalSeconds, tv_nsec: 0)
                nanosleep(&interval, nil)
                sequence += 1
                writer.send(.heartbeat(sequence: sequence, uptime: Spawn.monotonicSeconds() - writer.started))
            }
        }, box.toOpaque())
    }

    func powerOff() -> Never {
        sync()
        // reboot(2) is not exported to Swift; busybox's poweroff -f makes the same call.
        _ = Spawn.run(["poweroff", "-f"], timeoutSeconds: 10)
        exit(0)
    }
}

/// Writes whole frames to the port: the serving thread (replies, streamed output) and the
/// heartbeat thread both send, so each frame is written under one lock and never interleaves.
final class FrameWriter: Sendable {
    let descriptor: Int32
    let started = Spawn.monotonicSeconds()
    private let lock = Mutex(())
    /// A byte is written here after each frame that went through: what a reader with no host
    /// waits on.
    private let delivered: [Int32]

    init(descriptor: Int32) {
        self.descriptor = descriptor
        var fds: [Int32] = [-1, -1]
        _ = pipe(&fds)
        for fd in fds {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        delivered = fds
    }

    /// Returns once a frame went through after the call (a host is there), `other` turned
    /// readable, or after `seconds`.
    func waitForDelivery(seconds: Int32, orReadable other: Int32 = -1) {
        var drain = [UInt8](repeating: 0, count: 64)
        while read(delivered[0], &drain, drain.count) > 0 {}
        var fds = [pollfd(fd: delivered[0], events: Int16(POLLIN), revents: 0), pollfd(fd: other, events: Int16(POLLIN), revents: 0)]
        _ = poll(&fds, other >= 0 ? 2 : 1, seconds * 1000)
    }

    func send(_ frame: AgentFrame) {
        let bytes = Array(frame.line.utf8)
        lock.withLock { _ in
            var offset = 0
            while offset < bytes.count {
                let written = bytes[offset...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
                if written < 0 {
                    if errno == EINTR { continue }
                    if errno == EAGAIN {
                        var fds = [pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)]
                        _ = poll(&fds, 1, 1000)
                        continue
                    }
                    return
                }
                offset += written
            }
            var one: UInt8 = 1
            _ = write(delivered[1], &one, 1)
        }
    }
}
