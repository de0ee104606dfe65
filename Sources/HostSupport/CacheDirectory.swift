import Foundation

/// Where cxllab keeps what it fetches and builds: `--cache-dir`, else `$CXLLAB_CACHE`,
/// else `$XDG_CACHE_HOME/cxllab`, else `~/.cache/cxllab`.
public struct CacheDirectory: Sendable, Hashable {
    public let path: String

    public init(path: String) {
        self.path = (path as NSString).standardizingPath
    }

    /// The environment is the caller's to give: the command line passes its own, read once.
    public static func resolve(explicit: String? = nil, environment: [String: String]) -> CacheDirectory {
        if let explicit, !explicit.isEmpty { return CacheDirectory(path: absolute(explicit)) }
        if let fromEnvironment = environment["CXLLAB_CACHE"], !fromEnvironment.isEmpty {
            return CacheDirectory(path: absolute(fromEnvironment))
        }
        if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty {
            return CacheDirectory(path: absolute(xdg) + "/cxllab")
        }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return CacheDirectory(path: home + "/.cache/cxllab")
    }

    /// A folder inside the cache, created when missing.
    public func folder(_ components: String...) throws -> String {
        let folder = ([path] + components).joined(separator: "/")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        return folder
    }

    /// Bytes free on the file system holding the cache (or its nearest existing parent).
    public func freeBytes() -> UInt64? {
        var probe = path
        while !FileManager.default.fileExists(atPath: probe), probe != "/" {
            probe = (probe as NSString).deletingLastPathComponent
        }
        return DiskSpace.free(at: probe)
    }

    private static func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    }
}

public enum DiskSpace {
    /// Bytes an unprivileged writer may still use on the file system holding `path`, or nil
    /// when it cannot be read.
    public static func free(at path: String) -> UInt64? {
        var stats = statvfs()
        guard statvfs(path, &stats) == 0 else { return nil }
        return UInt64(stats.f_bavail) * UInt64(stats.f_frsize)
    }
}
