import Foundation

/// Finds programs on PATH, plus the sbin folders that a non-login root shell may lack
/// (libvirtd, depmod and friends live there).
public enum ExecutableLocator {
    static let extraFolders = ["/usr/local/sbin", "/usr/sbin", "/sbin"]

    public static func find(_ name: String) -> String? {
        if name.contains("/") {
            return FileManager.default.isExecutableFile(atPath: name) ? name : nil
        }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        let folders = path.split(separator: ":").map(String.init) + extraFolders
        for folder in folders {
            let candidate = folder + "/" + name
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    public static func require(_ name: String) throws -> String {
        guard let path = find(name) else { throw ProcessRunnerError.executableNotFound(name) }
        return path
    }
}
