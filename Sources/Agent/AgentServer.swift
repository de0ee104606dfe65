import AgentProtocol
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The agent's I/O: finds its virtio-serial port by name, says hello, sends heartbeats from a
/// thread of their own (so they flow while a request runs), and answers frames in order.
public final class AgentServer: @unchecked Sendable {
    let files: GuestFiles
    let handler: AgentHandler
    let descriptor: Int32
    let writeLock = Mutex(())
    let started = Spawn.monotonicSeconds()

    public init(descriptor: Int32, handler: AgentHandler, files: GuestFiles = GuestFiles()) {
        self.descriptor = descriptor
        self.handler = handler
        self.files = files
        handler.emit = { [unowned self] frame in self.send(frame) }
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

    public func send(_ frame: AgentFrame) {
        let bytes = Array(frame.line.utf8)
        writeLock.withLock { _ in
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
        }
    }

    /// Serves until power_off; never returns otherwise.
    public func serve() {
        send(.hello(version: AgentProtocol.version, agent: AgentHandler.agentName, kernel: handler.kernelRelease))
        startHeartbeat()
        var reader = FrameReader()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = read(descriptor, &buffer, buffer.count)
            if count < 0 && errno == EINTR { continue }
            if count <= 0 {
                // No host on the other end: wait for one instead of spinning.
                var fds = [pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)]
                _ = poll(&fds, 1, 1000)
                continue
            }
            for item in reader.feed(buffer[0..<count]) {
                switch item {
                case .frame(let frame):
                    send(handler.reply(to: frame))
                    if handler.powerOffRequested { powerOff() }
                case .oversized(let size):
                    send(.reply(id: nil, .failure(AgentError(.frameTooLarge, "frame of \(size) bytes; the limit is \(AgentProtocol.maximumFrameBytes)"))))
                }
            }
        }
    }

    func startHeartbeat() {
        let box = Unmanaged.passRetained(self)
        var thread = pthread_t()
        pthread_create(&thread, nil, { context in
            let server = Unmanaged<AgentServer>.fromOpaque(context!).takeUnretainedValue()
            var sequence: Int64 = 0
            while true {
                var interval = timespec(tv_sec: AgentProtocol.heartbeatIntervalSeconds, tv_nsec: 0)
                nanosleep(&interval, nil)
                sequence += 1
                server.send(.heartbeat(sequence: sequence, uptime: Spawn.monotonicSeconds() - server.started))
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
