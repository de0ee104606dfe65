import Foundation

/// A file the user named that cannot be used, in words that name it, say why and how to fix
/// it (never Foundation's "The operation could not be completed").
public struct InputFileError: Error, Sendable, CustomStringConvertible {
    public let path: String
    /// What the file was to be: "topology", "matrix file", "JUnit file", ...
    public let role: String
    public let reason: String
    public let fix: String

    public init(path: String, role: String, reason: String, fix: String) {
        self.path = path
        self.role = role
        self.reason = reason
        self.fix = fix
    }

    public var description: String { "\(role) \(path): \(reason); \(fix)" }
}

public enum InputFile {
    /// The text of a file the user named, or an `InputFileError` that names it.
    public static func text(_ path: String, role: String, fix: String? = nil) throws -> String {
        if let problem = problem(path, role: role, fix: fix) { throw problem }
        do {
            return try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw InputFileError(path: path, role: role, reason: reason(of: error), fix: fix ?? "check that it is a UTF-8 text file")
        }
    }

    /// Why `path` cannot be read as a file, or nil when it can.
    public static func problem(_ path: String, role: String, fix: String? = nil) -> InputFileError? {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
            let place = path.hasPrefix("/") ? "" : " (a relative path starts in \(FileManager.default.currentDirectoryPath))"
            return InputFileError(path: path, role: role, reason: "no such file" + place, fix: fix ?? "check the path")
        }
        if isFolder.boolValue {
            return InputFileError(path: path, role: role, reason: "is a folder, not a file", fix: fix ?? "name the file inside it")
        }
        if !FileManager.default.isReadableFile(atPath: path) {
            return InputFileError(path: path, role: role, reason: "cannot be read (permission denied)", fix: "give this user read access to it")
        }
        return nil
    }

    /// What went wrong with a file, from a Foundation error's POSIX cause: "no such file or
    /// directory", "permission denied", ... (its own text names no file and no cause).
    public static func reason(of error: any Error) -> String {
        let error = error as NSError
        if let underlying = error.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code))).lowercased()
        }
        if error.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(error.code))).lowercased() }
        switch CocoaError.Code(rawValue: error.code) {
        case .fileReadNoSuchFile, .fileNoSuchFile: return "no such file"
        case .fileReadNoPermission, .fileWriteNoPermission: return "permission denied"
        case .fileReadInapplicableStringEncoding, .fileReadCorruptFile: return "not UTF-8 text"
        case .fileWriteOutOfSpace: return "no space left on the device"
        case .fileWriteVolumeReadOnly: return "the file system is read-only"
        default: return "error \(error.code) (\(error.domain))"
        }
    }

    /// The file a Foundation error is about, when it says.
    public static func path(of error: any Error) -> String? {
        let info = (error as NSError).userInfo
        return info[NSFilePathErrorKey] as? String ?? (info[NSURLErrorKey] as? URL)?.path
    }
}
