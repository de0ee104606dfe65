import CLibvirt
import Glibc

/// What a domain is doing, from `virDomainGetState`.
public enum DomainState: Int32, Sendable, CustomStringConvertible {
    case noState = 0, running, blocked, paused, shutdown, shutoff, crashed, pmSuspended

    public var description: String {
        switch self {
        case .noState: "no state"
        case .running: "running"
        case .blocked: "blocked"
        case .paused: "paused"
        case .shutdown: "shutting down"
        case .shutoff: "shut off"
        case .crashed: "crashed"
        case .pmSuspended: "suspended"
        }
    }
}

/// A libvirt domain (`virDomainPtr`). The domain keeps its connection open while it lives.
// @unchecked: libvirt domain handles are thread-safe; the pointer never changes and is freed only in deinit.
public final class Domain: @unchecked Sendable {
    let handle: OpaquePointer
    /// Held so that the connection outlives the domain pointer.
    private let connection: Connection

    init(handle: OpaquePointer, connection: Connection) {
        self.handle = handle
        self.connection = connection
    }

    deinit {
        virDomainFree(handle)
    }

    public var name: String {
        virDomainGetName(handle).map { String(cString: $0) } ?? ""
    }

    public func uuid() throws -> String {
        var buffer = [CChar](repeating: 0, count: Int(VIR_UUID_STRING_BUFLEN))
        guard virDomainGetUUIDString(handle, &buffer) == 0 else { throw LibvirtError.last("read uuid of \(name)") }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public func state() throws -> DomainState {
        var state: Int32 = 0
        var reason: Int32 = 0
        guard virDomainGetState(handle, &state, &reason, 0) == 0 else { throw LibvirtError.last("read state of \(name)") }
        return DomainState(rawValue: state) ?? .noState
    }

    public func isActive() throws -> Bool {
        let active = virDomainIsActive(handle)
        guard active >= 0 else { throw LibvirtError.last("check whether \(name) is active") }
        return active == 1
    }

    /// Stops the domain at once, as pulling the plug does. A transient domain is then gone.
    public func destroy() throws {
        guard virDomainDestroy(handle) == 0 else { throw LibvirtError.last("destroy \(name)") }
    }

    /// Pauses every vCPU: to the guest, time stops.
    public func suspend() throws {
        guard virDomainSuspend(handle) == 0 else { throw LibvirtError.last("suspend \(name)") }
    }

    /// Removes a persistent definition; a running domain becomes transient and goes when it stops.
    public func undefine() throws {
        guard virDomainUndefine(handle) == 0 else { throw LibvirtError.last("undefine \(name)") }
    }

    public func xmlDescription() throws -> String {
        try takeString(virDomainGetXMLDesc(handle, 0), operation: "read XML of \(name)")
    }

    /// Stores `xml` (one element, or nil to remove it) in the domain's `<metadata>` under the
    /// XML namespace `namespace` with the prefix `key`, on the running domain.
    public func setMetadata(_ xml: String?, key: String, namespace: String) throws {
        let status = virDomainSetMetadata(
            handle, Int32(VIR_DOMAIN_METADATA_ELEMENT.rawValue), xml, key, namespace,
            VIR_DOMAIN_AFFECT_LIVE.rawValue
        )
        guard status == 0 else { throw LibvirtError.last("set metadata of \(name)") }
    }

    /// The metadata element stored under `namespace`, or nil when the domain has none.
    public func metadata(namespace: String) throws -> String? {
        let value = virDomainGetMetadata(
            handle, Int32(VIR_DOMAIN_METADATA_ELEMENT.rawValue), namespace, VIR_DOMAIN_AFFECT_LIVE.rawValue
        )
        if let value {
            defer { free(value) }
            return String(cString: value)
        }
        let error = LibvirtError.last("read metadata of \(name)")
        if error.code == .noDomainMetadata { return nil }
        throw error
    }
}
