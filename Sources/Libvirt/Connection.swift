import CLibvirt
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

    /// Opens `uri` (for example `qemu:///system`, or `test:///default` for libvirt's mock driver).
    public init(uri: String = "qemu:///system") throws {
        try LibvirtRuntime.ensureStarted()
        guard let opened = virConnectOpen(uri) else { throw LibvirtError.last("open \(uri)") }
        self.handle = opened
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
    public func enableKeepAlive(interval: Int32 = 5, count: UInt32 = 3) throws {
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
