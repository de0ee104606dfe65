import CLibvirt
import Foundation
import Glibc

/// Flags for `Domain.save` and `Connection.restoreDomain`.
public struct DomainSaveFlags: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// Resume the guest once restored, whatever state it was saved in.
    public static let running = DomainSaveFlags(rawValue: VIR_DOMAIN_SAVE_RUNNING.rawValue)
    /// Leave the guest paused once restored.
    public static let paused = DomainSaveFlags(rawValue: VIR_DOMAIN_SAVE_PAUSED.rawValue)
}

extension Domain {
    /// Saves the running guest's memory and device state to `path` (`virDomainSaveFlags`); the
    /// domain stops, and a transient one is then gone. It blocks while QEMU writes the state
    /// (seconds): call it off the cooperative pool.
    public func save(to path: String, flags: DomainSaveFlags = []) throws {
        guard virDomainSaveFlags(handle, path, nil, flags.rawValue) == 0 else {
            throw LibvirtError.last("save \(name) to \(path)")
        }
    }
}

extension Connection {
    /// Starts a domain from a save image (`virDomainRestoreFlags`). `xml`, when given, replaces
    /// the image's domain XML; libvirt refuses one whose name, UUID or guest ABI differ from the
    /// saved domain's. It blocks while QEMU reads the state: call it off the cooperative pool.
    /// The restored domain is transient when the saved one was; libvirt offers no autodestroy
    /// for a restore.
    public func restoreDomain(from path: String, xml: String?, flags: DomainSaveFlags = [.running]) throws -> Domain {
        guard virDomainRestoreFlags(handle, path, xml, flags.rawValue) == 0 else {
            throw LibvirtError.last("restore a domain from \(path)")
        }
        let name = try Self.domainName(inXML: xml ?? saveImageXML(path: path))
        guard let domain = try lookupDomain(named: name) else {
            throw LibvirtError(code: .noDomain, message: "libvirt restored \(path) but has no domain named \(name) afterwards",
                               operation: "restore a domain from \(path)")
        }
        return domain
    }

    /// The domain XML a save image holds (`virDomainSaveImageGetXMLDesc`).
    public func saveImageXML(path: String) throws -> String {
        try takeString(virDomainSaveImageGetXMLDesc(handle, path, 0), operation: "read the domain XML of the save image \(path)")
    }

    /// The text of the first `<name>` element of a domain XML (the domain's own: it comes
    /// before `<metadata>` and devices in libvirt's XML).
    public static func domainName(inXML xml: String) throws -> String {
        guard let open = xml.range(of: "<name>"), let close = xml.range(of: "</name>", range: open.upperBound..<xml.endIndex) else {
            throw LibvirtError(code: .internalError, message: "the domain XML names no domain", operation: "read a domain XML's name")
        }
        return String(xml[open.upperBound..<close.lowerBound])
    }
}
