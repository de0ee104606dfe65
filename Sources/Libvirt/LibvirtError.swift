import CLibvirt

/// A failed libvirt call, copied from libvirt's thread-local last error right after the call.
public struct LibvirtError: Error, Sendable, CustomStringConvertible {
    /// libvirt's `virErrorNumber`, kept open so codes this wrapper does not name still round-trip.
    public struct Code: RawRepresentable, Hashable, Sendable {
        public let rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }
        init(_ number: virErrorNumber) { self.rawValue = Int32(bitPattern: number.rawValue) }

        public static let noDomain = Code(VIR_ERR_NO_DOMAIN)
        /// Malformed XML, with the parser's detail in the message.
        public static let xmlDetail = Code(VIR_ERR_XML_DETAIL)
        public static let noDomainMetadata = Code(VIR_ERR_NO_DOMAIN_METADATA)
        public static let internalError = Code(VIR_ERR_INTERNAL_ERROR)
    }

    /// Failures that libvirt reports under a generic code (an internal error), told apart only by
    /// its message: recognised here, once, so callers match a case instead of libvirt's wording.
    public enum Kind: Sendable, Hashable {
        /// QEMU exited while libvirt was starting it: "process exited while connecting to
        /// monitor" before the monitor was up, "QEMU unexpectedly closed the monitor" after.
        case qemuClosedMonitor
    }

    public let code: Code
    public let message: String
    /// The wrapper call that failed, so a message says what was being attempted.
    public let operation: String

    public init(code: Code, message: String, operation: String) {
        self.code = code
        self.message = message
        self.operation = operation
    }

    /// The failure, when it is one that libvirt's code alone does not identify.
    public var kind: Kind? {
        message.contains("QEMU unexpectedly closed the monitor") || message.contains("process exited while connecting to monitor")
            ? .qemuClosedMonitor : nil
    }

    public var description: String { "\(operation): \(message)" }

    /// Reads and resets this thread's last error. Must be called on the thread of the failed call,
    /// before any other libvirt call: every libvirt API resets the last error on entry, so the
    /// operation's description (which may call libvirt, e.g. for a domain's name) is built after.
    static func last(_ operation: @autoclosure () -> String) -> LibvirtError {
        guard let error = virGetLastError() else {
            return LibvirtError(code: .internalError, message: "libvirt reported failure without an error", operation: operation())
        }
        let code = Code(rawValue: error.pointee.code)
        let message = error.pointee.message.map { String(cString: $0) } ?? "unknown libvirt error"
        virResetLastError()
        return LibvirtError(code: code, message: message, operation: operation())
    }
}
