import CLibvirt
import Foundation
import HostSupport
import Glibc

/// A libvirt version number, decoded from libvirt's `major * 1_000_000 + minor * 1_000 + micro`.
public struct VersionNumber: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let major: Int
    public let minor: Int
    public let micro: Int

    public init(major: Int, minor: Int, micro: Int = 0) {
        self.major = major
        self.minor = minor
        self.micro = micro
    }

    public init(encoded: UInt) {
        self.init(major: Int(encoded / 1_000_000), minor: Int(encoded / 1_000 % 1_000), micro: Int(encoded % 1_000))
    }

    public var description: String { "\(major).\(minor).\(micro)" }

    public static func < (lhs: VersionNumber, rhs: VersionNumber) -> Bool {
        (lhs.major, lhs.minor, lhs.micro) < (rhs.major, rhs.minor, rhs.micro)
    }
}

/// A connection to a libvirt driver (`virConnectPtr`), shared across tasks.
// @unchecked: libvirt connections are thread-safe; the pointer never changes and is closed only in deinit.
public final class Connection: @unchecked Sendable {
    let handle: OpaquePointer

    /// How long opening a connection may take, and how a daemon that stops answering later is
    /// noticed: keep-alive every 5 s, given up after 6 unanswered (about 35 s; virsh's own
    /// setting), after which every pending and later call on the connection fails instead of
    /// waiting. libvirtd answers keep-alives from its event loop, within a second even on a
    /// host whose cores all run TCG guests; six missed in a row is a daemon that is gone.
    public static let openDeadlineSeconds = 30
    public static let keepAliveInterval: Int32 = 5
    public static let keepAliveCount: UInt32 = 6

    /// Opens `uri` (for example `qemu:///system`, or `test:///default` for libvirt's mock driver)
    /// within `openDeadlineSeconds`: a daemon that accepts the socket but never answers (stopped,
    /// wedged) is an error that says so, not a hang. It blocks its thread meanwhile: async
    /// code opens with `open`, off the cooperative pool.
    public init(uri: String = "qemu:///system", deadlineSeconds: Int = Connection.openDeadlineSeconds) throws {
        try LibvirtRuntime.ensureStarted()
        let attempt = OpenAttempt()
        Thread.detachNewThread {
            let opened = virConnectOpen(uri)
            let error = opened == nil ? LibvirtError.last("open \(uri)") : nil
            if !attempt.finish(opened, error), let opened {
                // Nobody waits any more: the late connection is closed, not leaked.
                virConnectClose(opened)
            }
        }
        switch attempt.wait(seconds: deadlineSeconds) {
        case .opened(let opened):
            self.handle = opened
        case .failed(let error):
            throw error
        case .timedOut:
            throw LibvirtError(code: .internalError,
                               message: "libvirtd accepted the connection but did not answer within \(deadlineSeconds) s: it is stopped or wedged "
                                   + "(`virsh list` would wait too). Continue it (kill -CONT), or restart it with scripts/start-libvirtd.sh",
                               operation: "open \(uri)")
        }
        // Without the event loop keep-alive cannot run; the test driver has none to offer.
        if uri.hasPrefix("qemu") { try? enableKeepAlive() }
    }

    /// Opens `uri` as `init` does, from async code: the open waits on a thread of its own,
    /// never on the cooperative pool (a wedged daemon holds it up to the deadline).
    public static func open(uri: String = "qemu:///system", deadlineSeconds: Int = Connection.openDeadlineSeconds) async throws -> Connection {
        try await offThePool { try Connection(uri: uri, deadlineSeconds: deadlineSeconds) }
    }

    deinit {
        virConnectClose(handle)
    }

    /// The version of the libvirt library linked on this side of the connection.
    public func libraryVersion() throws -> VersionNumber {
        var version: UInt = 0
        guard virConnectGetLibVersion(handle, &version) == 0 else { throw LibvirtError.last("read libvirt version") }
        return VersionNumber(encoded: version)
    }

    /// The version of the hypervisor behind the driver (for qemu:///system, QEMU's version).
    public func hypervisorVersion() throws -> VersionNumber {
        var version: UInt = 0
        guard virConnectGetVersion(handle, &version) == 0 else { throw LibvirtError.last("read hypervisor version") }
        return VersionNumber(encoded: version)
    }

    /// The host capabilities XML.
    public func capabilities() throws -> String {
        try takeString(virConnectGetCapabilities(handle), operation: "read capabilities")
    }

    /// The domain capabilities XML for a virtualization type (`kvm` or `qemu`), with libvirt's
    /// default emulator, architecture and machine.
    public func domainCapabilities(virtualizationType: String) throws -> String {
        try takeString(
            virConnectGetDomainCapabilities(handle, nil, nil, nil, virtualizationType, 0),
            operation: "read domain capabilities"
        )
    }

    /// Starts a transient domain from XML: it exists only while it runs, so nothing stays
    /// defined in libvirt once it is destroyed.
    public func createDomain(xml: String, flags: DomainCreateFlags = []) throws -> Domain {
        guard let domain = virDomainCreateXML(handle, xml, flags.rawValue) else {
            throw LibvirtError.last("create domain")
        }
        return Domain(handle: domain, connection: self)
    }

    /// The QEMU command line libvirt would run for a domain XML (`qemu-argv`), as one
    /// shell-quoted line with libvirt's environment first. Nothing is started.
    public func nativeCommandLine(forDomainXML xml: String) throws -> String {
        try takeString(virConnectDomainXMLToNative(handle, "qemu-argv", xml, 0), operation: "convert domain XML to a QEMU command line")
    }

    /// The domain named `name`, or nil when there is none.
    public func lookupDomain(named name: String) throws -> Domain? {
        if let domain = virDomainLookupByName(handle, name) {
            return Domain(handle: domain, connection: self)
        }
        let error = LibvirtError.last("look up domain \(name)")
        if error.code == .noDomain { return nil }
        throw error
    }

    /// Every domain libvirt knows on this connection, running or only defined.
    public func allDomains() throws -> [Domain] {
        var list: UnsafeMutablePointer<OpaquePointer?>?
        let count = virConnectListAllDomains(handle, &list, 0)
        guard count >= 0, let list else { throw LibvirtError.last("list domains") }
        defer { free(list) }
        return (0..<Int(count)).compactMap { index in
            list[index].map { Domain(handle: $0, connection: self) }
        }
    }

    /// Asks libvirt to check the connection with keep-alive messages, so a daemon that goes
    /// away is noticed within about `interval * (count + 1)` seconds instead of never.
    public func enableKeepAlive(interval: Int32 = Connection.keepAliveInterval, count: UInt32 = Connection.keepAliveCount) throws {
        guard virConnectSetKeepAlive(handle, interval, count) >= 0 else {
            throw LibvirtError.last("enable keep-alive")
        }
    }

    /// Whether the connection to the daemon is still open.
    public var isAlive: Bool { virConnectIsAlive(handle) == 1 }
}

/// Copies and frees a string that libvirt allocated for the caller.
func takeString(_ pointer: UnsafeMutablePointer<CChar>?, operation: String) throws -> String {
    guard let pointer else { throw LibvirtError.last(operation) }
    defer { free(pointer) }
    return String(cString: pointer)
}

/// Flags for `Connection.createDomain`.
public struct DomainCreateFlags: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// Destroy the domain when the connection that created it closes: a crashed cxllab then
    /// leaves no running guest behind.
    public static let autodestroy = DomainCreateFlags(rawValue: VIR_DOMAIN_START_AUTODESTROY.rawValue)
}

/// One `virConnectOpen` on its own thread, waited for with a deadline: libvirt's open has no
/// timeout of its own, and keep-alive starts only once a connection exists.
// @unchecked: every field is guarded by `condition`.
private final class OpenAttempt: @unchecked Sendable {
    enum Outcome {
        case opened(OpaquePointer)
        case failed(LibvirtError)
        case timedOut
    }

    private let condition = NSCondition()
    private var outcome: Outcome?
    private var abandoned = false

    /// Records the result; false when the waiter has given up (the caller then closes it).
    func finish(_ opened: OpaquePointer?, _ error: LibvirtError?) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard !abandoned else { return false }
        if let opened { outcome = .opened(opened) } else { outcome = .failed(error ?? LibvirtError(code: .internalError, message: "no connection", operation: "open")) }
        condition.signal()
        return true
    }

    func wait(seconds: Int) -> Outcome {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date(timeIntervalSinceNow: TimeInterval(seconds))
        while outcome == nil {
            if !condition.wait(until: deadline) { break }
        }
        if let outcome { return outcome }
        abandoned = true
        return .timedOut
    }
}
