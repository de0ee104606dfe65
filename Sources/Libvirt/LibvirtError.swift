import CLibvirt

/// A failed libvirt call, copied from libvirt's thread-local last error right after the call.
public struct LibvirtError: Error, Sendable, CustomStringConvertible {
    /// libvirt's `virErrorNumber`, kept open so codes this wrapper does not name still round-trip.
    public struct Code: RawRepresentable, Hashable, Sendable {
        public let rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }
        init(_ number: virErrorNumber) { self.rawValue = Int32(bitPattern: number.rawValue) }

        public static let noDomain = Code(VIR_ERR_NO_DOMAIN)
        public static let operationInvalid = Code(VIR_ERR_OPERATION_INVALID)
        public static let systemError = Code(VIR_ERR_SYSTEM_ERROR)
        public static let xmlError = Code(VIR_ERR_XML_ERROR)
        /// Malformed XML, with the parser's detail in the message.
        public static let xmlDetail = Code(VIR_ERR_XML_DETAIL)
        public static let noConnect = Code(VIR_ERR_NO_CONNECT)
        public static let noSupport = Code(VIR_ERR_NO_SUPPORT)
        public static let domainExists = Code(VIR_ERR_DOM_EXIST)
        public static let operationTimeout = Code(VIR_ERR_OPERATION_TIMEOUT)
        public static let noDomainMetadata = Code(VIR_ERR_NO_DOMAIN_METADATA)
        public static let internalError = Code(VIR_ERR_INTERNAL_ERROR)
    }

    public let code: Code
    /// libvirt's `virErrorDomain`: which part of libvirt raised it.
    public let domain: Int32
    public let message: String
    /// The wrapper call that failed, so a message says what was being attempted.
    public let operation: String

    public init(code: Code, domain: Int32 = 0, message: String, operation: String) {
        self.code = code
        self.domain = domain
        self.message = message
        self.operation = operation
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
        let domain = error.pointee.domain
        let message = error.pointee.message.map { String(cString: $0) } ?? "unknown libvirt error"
        virResetLastError()
        return LibvirtError(code: code, domain: domain, message: message, operation: operation())
    }
}
