import Foundation
import Synchronization

/// SHA-256s of cached files, each computed once per process while the file stays the same
/// file (a write changes its change time): a matrix's cells share kernels and images.
public enum ContentDigests {
    private static let known = Mutex<[String: String]>([:])

    public static func sha256(ofFile path: String) throws -> String {
        let identity = FileIdentity.of(path)
        if let identity, let digest = known.withLock({ $0[identity] }) { return digest }
        let digest = try FileDigest.sha256(ofFile: path)
        if let identity { known.withLock { $0[identity] = digest } }
        return digest
    }

    /// Forgets every file under `folder` (a kernel folder about to be fetched again).
    public static func forget(under folder: String) {
        known.withLock { memo in memo = memo.filter { !$0.key.hasPrefix(folder + "/") } }
    }
}

enum FileIdentity {
    /// "path:size:ctime:inode", or nil when the file cannot be read.
    static func of(_ path: String) -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return "\(path):\(info.st_size):\(info.st_ctim.tv_sec).\(info.st_ctim.tv_nsec):\(info.st_ino)"
    }
}
