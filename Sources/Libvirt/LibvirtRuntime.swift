import CLibvirt
import Foundation

/// Process-wide libvirt set-up that must happen once, before the first connection: a silent
/// error handler (libvirt would otherwise print every error to stderr itself), and the default
/// event loop, registered before any connection and run on one dedicated thread so lifecycle
/// events reach their callbacks without anyone polling.
enum LibvirtRuntime {
    private static let started: Bool = {
        virSetErrorFunc(nil, silentErrorHandler)
        guard virInitialize() == 0 else { return false }
        guard virEventRegisterDefaultImpl() == 0 else { return false }
        let thread = Thread {
            while true {
                // Blocks in poll() until a handle or timer fires; errors here are transient.
                _ = virEventRunDefaultImpl()
            }
        }
        thread.name = "libvirt-events"
        thread.stackSize = 1 << 20
        thread.start()
        return true
    }()

    static func ensureStarted() throws {
        guard started else {
            throw LibvirtError.last("initialize libvirt event loop")
        }
    }
}

private func silentErrorHandler(_: UnsafeMutableRawPointer?, _: virErrorPtr?) {}
