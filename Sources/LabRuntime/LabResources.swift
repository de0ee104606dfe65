import Foundation
import HostSupport
import Libvirt
import Topology

/// What a lab has made so far, removable from any thread (signal handlers included). It gives
/// its guest slot back to, and leaves, the slots and registry of the context that made it.
/// Unchecked because a teardown must wait, synchronously (a signal handler has no async
/// context), for an in-flight domain start: an NSCondition does that and a Mutex cannot; every
/// mutable field is read and written under it.
final class LabResources: @unchecked Sendable {
    let folder: String
    private let lock = NSCondition()
    private var creating: (libvirt: Connection, name: String)?
    private var _domain: Domain?
    private var _console: ConsoleWatcher?
    private var _agent: AgentConnection?
    private var _emulator: EmulatorProcess?
    private var _savedCopyClaim: FileLock.Held?
    private var _nameLink: String?
    private var done = false
    private var holdsSlot = true
    private let guestSlots: GuestSlots
    private let sessions: SessionRegistry

    /// A lab that holds one of `guestSlots` already; it registers itself in `sessions`, so an
    /// interrupt from here on removes what it makes.
    init(folder: String, guestSlots: GuestSlots, sessions: SessionRegistry) {
        self.folder = folder
        self.guestSlots = guestSlots
        self.sessions = sessions
        sessions.add(self)
    }

    /// Gives the guest slot back, once.
    func releaseSlot() {
        let held = lock.withLock {
            defer { holdsSlot = false }
            return holdsSlot
        }
        if held { guestSlots.release() }
    }

    /// The lab outlives this process (`cxllab up`): its slot is given back and an interrupt
    /// no longer removes it.
    func handOver() {
        releaseSlot()
        sessions.remove(self)
    }

    var domain: Domain? {
        get { lock.withLock { _domain } }
        set { lock.withLock { _domain = newValue } }
    }
    var console: ConsoleWatcher? {
        get { lock.withLock { _console } }
        set { lock.withLock { _console = newValue } }
    }
    var agent: AgentConnection? {
        get { lock.withLock { _agent } }
        set { lock.withLock { _agent = newValue } }
    }
    /// A QEMU this process runs itself (no domain): killed even before its pid file exists.
    var emulator: EmulatorProcess? {
        get { lock.withLock { _emulator } }
        set { lock.withLock { _emulator = newValue } }
    }

    /// The claim on the saved machine the lab was restored from: let go once the lab is gone.
    var savedCopyClaim: FileLock.Held? {
        get { lock.withLock { _savedCopyClaim } }
        set { lock.withLock { _savedCopyClaim = newValue } }
    }

    /// A kept lab's name link (`LabNameLink`), when it was restored: removed with the lab.
    var nameLink: String? {
        get { lock.withLock { _nameLink } }
        set { lock.withLock { _nameLink = newValue } }
    }

    /// A domain start is in flight: an interrupt now must wait for it, or the domain would
    /// appear after teardown looked for it.
    func beginCreate(libvirt: Connection, domainName: String) {
        lock.withLock { creating = (libvirt, domainName) }
    }

    func endCreate(_ domain: Domain?) {
        lock.withLock {
            _domain = domain
            creating = nil
            lock.broadcast()
        }
    }

    /// Held for a whole teardown, so a second caller (the signal handler while the main flow
    /// tears down, or the reverse) returns only once everything is gone.
    private let teardownLock = NSLock()

    func teardownNow() {
        teardownLock.lock()
        defer { teardownLock.unlock() }
        let (domain, console, agent, emulator, first) = lock.withLock { () -> (Domain?, ConsoleWatcher?, AgentConnection?, EmulatorProcess?, Bool) in
            let deadline = Date().addingTimeInterval(30)
            while creating != nil, lock.wait(until: deadline) {}
            if let (libvirt, name) = creating, _domain == nil {
                // The start did not return in time: find the domain by name instead.
                _domain = try? libvirt.lookupDomain(named: name)
            }
            defer { done = true }
            return (_domain, _console, _agent, _emulator, !done)
        }
        guard first else { return }
        agent?.close(reason: "the lab was torn down")
        if let domain {
            // A daemon that stopped answering fails both calls (its keep-alive closes the
            // connection): the guest's QEMU is then killed by libvirt's pid file, so nothing
            // keeps running on the daemon's behalf.
            let stopped = (try? domain.isActive()) == false || (try? domain.destroy()) != nil
            if !stopped { _ = QEMUPidFile.killLibvirtGuest(named: (folder as NSString).lastPathComponent) }
        }
        emulator?.kill()
        QEMUPidFile.kill(inFolder: folder)
        console?.stop()
        try? FileManager.default.removeItem(atPath: folder)
        if let link = nameLink { LabPaths.removeNameLink(link, to: (folder as NSString).lastPathComponent) }
        LabPaths.release(folder)
        savedCopyClaim?.release()
        sessions.remove(self)
        releaseSlot()
    }
}

enum BackingFiles {
    /// The error for the errno a file operation just set.
    private static func failure(_ what: String, paths: LabPaths) -> LabError {
        let code = errno
        let cause = POSIXError(POSIXErrorCode(rawValue: code) ?? .EIO)
        if code == ENOSPC { return LabError(.diskFull, "\(what): " + LabPaths.diskFullAdvice(paths.root), cause: cause) }
        return LabError(.host, "\(what): \(String(cString: strerror(code)))", cause: cause)
    }

    /// Sparse files of the rendered sizes; those only QEMU's command line names go to the
    /// QEMU user, since libvirt labels only the files its own elements name.
    static func create(_ files: [BackingFile], paths: LabPaths) throws {
        let qemu = getpwnam("libvirt-qemu")
        for file in files {
            let fd = open(file.path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw failure("cannot create \(file.purpose) backing file \(file.path)", paths: paths) }
            defer { close(fd) }
            guard ftruncate(fd, off_t(file.size)) == 0 else {
                throw failure("cannot size \(file.purpose) backing file \(file.path) to \(file.size) bytes", paths: paths)
            }
            if file.qemuCommandLineOnly, let qemu {
                fchown(fd, qemu.pointee.pw_uid, qemu.pointee.pw_gid)
            }
        }
    }
}
