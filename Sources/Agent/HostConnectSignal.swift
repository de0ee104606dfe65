#if canImport(Glibc)
import Glibc
#endif

/// The write end of `HostConnectSignal`'s pipe, for the SIGIO handler (a C function pointer
/// captures nothing). Set once, before the handler is installed.
nonisolated(unsafe) private var hostConnectPipe: Int32 = -1

/// A host connecting to the agent's port, as an fd to wait on. virtio-console signals SIGIO to
/// the port's owner when the host side opens (and when data arrives), but read() and poll()
/// cannot wait for that while no host is there (they return 0 and POLLHUP at once). So the port
/// is set to signal this process, and a SIGIO handler writes a byte to a pipe whose read end is
/// `descriptor`. Without it a new host waited for the next heartbeat, half a second on average,
/// before its first request was read (`cxllab exec`).
struct HostConnectSignal {
    /// The pipe's read end; -1 when it could not be made (the heartbeat still wakes the loop).
    let descriptor: Int32

    init(port: Int32) {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else {
            descriptor = -1
            return
        }
        for fd in fds {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        descriptor = fds[0]
        hostConnectPipe = fds[1]
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in
            var byte: UInt8 = 1
            _ = write(hostConnectPipe, &byte, 1)   // async-signal-safe; a full pipe has woken the reader already
        }
        action.sa_flags = SA_RESTART
        sigemptyset(&action.sa_mask)
        sigaction(SIGIO, &action, nil)
        _ = fcntl(port, F_SETOWN, getpid())
        _ = fcntl(port, F_SETFL, fcntl(port, F_GETFL) | O_ASYNC)
    }

    /// Reads the bytes the signals wrote, so the next wait waits.
    func drain() {
        guard descriptor >= 0 else { return }
        var bytes = [UInt8](repeating: 0, count: 64)
        while read(descriptor, &bytes, bytes.count) > 0 {}
    }
}
