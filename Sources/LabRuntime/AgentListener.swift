import Foundation
import HostSupport

enum UnixSocketAddress {
    /// The address of a Unix socket at `path`, or nil when the path is too long for one.
    static func make(_ path: String) -> sockaddr_un? {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return address
    }
}

/// The host's end of the agent channel of a QEMU that cxllab runs itself: a socket the host
/// listens on before QEMU starts, and QEMU connects to as it creates its devices. That
/// connection is the sign that QEMU is up; QEMU's exit, told through `exitSignal`, ends the
/// wait as well, so an emulator that dies at start-up fails the boot at once.
final class AgentListener: Sendable {
    let path: String
    private let descriptor: Int32

    init(path: String) throws {
        self.path = path
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw LabError(.host, "cannot make the agent socket \(path): \(String(cString: strerror(errno)))") }
        guard var address = UnixSocketAddress.make(path) else {
            close(fd)
            throw LabError(.host, "cannot make the agent socket \(path): the path is too long for a Unix socket")
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, listen(fd, 1) == 0 else {
            let why = String(cString: strerror(errno))
            close(fd)
            throw LabError(.host, "cannot listen on the agent socket \(path): \(why)")
        }
        descriptor = fd
    }

    deinit { close(descriptor) }

    /// The connection QEMU makes, once it makes it; an error when QEMU exited first (the
    /// `exitSignal` descriptor became readable) or `deadline` passed. Blocks: call it off the pool.
    func accept(deadline: Duration, exitSignal: Int32, heartbeatTimeout: Double) throws -> AgentConnection {
        var fds = [pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0), pollfd(fd: exitSignal, events: Int16(POLLIN), revents: 0)]
        let end = ContinuousClock.now + deadline
        while true {
            let left = max(0, Int32(((end - ContinuousClock.now).seconds * 1000).rounded(.up)))
            let ready = poll(&fds, 2, left)
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { throw DeadlineExceeded(what: "QEMU's connection to the agent socket \(path)", limit: deadline) }
            if fds[0].revents != 0 {
                let connected = Glibc.accept(descriptor, nil, nil)
                if connected < 0 && errno == EINTR { continue }
                guard connected >= 0 else {
                    throw LabError(.host, "cannot accept QEMU's connection on \(path): \(String(cString: strerror(errno)))")
                }
                _ = fcntl(connected, F_SETFD, FD_CLOEXEC)
                return AgentConnection(connected: connected, socketPath: path, heartbeatTimeout: heartbeatTimeout)
            }
            throw AgentConnectionError.closed("QEMU exited before it connected to the agent socket")
        }
    }
}
