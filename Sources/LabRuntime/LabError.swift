import Foundation

/// Every failure of the lab runtime: a code to branch on (never the text), the words for
/// people, the console's last lines when a guest was involved, and the error underneath.
public struct LabError: Error, Sendable, CustomStringConvertible {
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// The guest did not come up (no agent within the deadline, QEMU refused).
        public static let bootFailed = Code(rawValue: "boot-failed")
        public static let guestPanicked = Code(rawValue: "guest-panicked")
        /// QEMU itself died (an assertion or a signal in the emulator): the host's fault, not
        /// the guest's.
        public static let emulatorDied = Code(rawValue: "emulator-died")
        /// A lab of that name is running already.
        public static let labExists = Code(rawValue: "lab-exists")
        /// A lab that another cxllab process, still running, owns.
        public static let ownerAlive = Code(rawValue: "owner-alive")
        /// No such lab.
        public static let notFound = Code(rawValue: "not-found")
        /// A name or id that cannot become a lab or file name.
        public static let invalidName = Code(rawValue: "invalid-name")
        /// The disk that holds the labs is full.
        public static let diskFull = Code(rawValue: "disk-full")
        /// An input (topology, kernel, agent) cannot be used.
        public static let input = Code(rawValue: "input")
        /// A host operation failed (a file, a process).
        public static let host = Code(rawValue: "host")
    }

    public let code: Code
    public let message: String
    /// The guest console's last lines, when a guest was involved.
    public let console: String?
    public let cause: (any Error)?

    public init(_ code: Code, _ message: String, console: String? = nil, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.console = console
        self.cause = cause
    }

    public var description: String {
        guard let console, !console.isEmpty else { return message }
        return message + "\n--- console (last lines) ---\n" + console
    }

    /// Whether an error (a LabError, Foundation's or a POSIX one, or what it wraps) means the
    /// disk is full: judged by codes, never by words.
    public static func isOutOfSpace(_ error: any Error) -> Bool {
        if let lab = error as? LabError { return lab.code == .diskFull || lab.cause.map(isOutOfSpace) == true }
        if let cocoa = error as? CocoaError, cocoa.code == .fileWriteOutOfSpace { return true }
        if let posix = error as? POSIXError, posix.code == .ENOSPC { return true }
        let ns = error as NSError
        if ns.domain == NSPOSIXErrorDomain && ns.code == Int(ENOSPC) { return true }
        if ns.domain == NSCocoaErrorDomain && ns.code == CocoaError.fileWriteOutOfSpace.rawValue { return true }
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError { return isOutOfSpace(underlying) }
        return false
    }
}
