import Foundation
import HostSupport

/// Content hashes of input files, remembered by what stat says of them (device, inode,
/// size, mtime and ctime, to the nanosecond) so a warm image build does not read every input
/// again. mtime alone can be set back (`touch -d`, tar, rsync -t): ctime cannot be set, and
/// any write or attribute change moves it, so a rewritten file is hashed anew.
/// Each build owns one memo (never shared, so no lock) and saves it once at its end.
struct DigestMemo: ~Copyable {
    private struct Stamp: Codable, Hashable {
        let device: UInt64
        let inode: UInt64
        let size: Int64
        let mtime: Int64
        let ctime: Int64
        let sha256: String

        /// What stat says of a file, with no digest yet.
        init(_ info: stat, sha256: String = "") {
            device = UInt64(info.st_dev)
            inode = UInt64(info.st_ino)
            size = Int64(info.st_size)
            mtime = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
            ctime = Int64(info.st_ctim.tv_sec) * 1_000_000_000 + Int64(info.st_ctim.tv_nsec)
            self.sha256 = sha256
        }

        func sameFile(as other: Stamp) -> Bool {
            device == other.device && inode == other.inode && size == other.size && mtime == other.mtime && ctime == other.ctime
        }
    }

    private let path: String
    private var entries: [String: Stamp]
    private var dirty = false

    init(path: String) {
        self.path = path
        let data = FileManager.default.contents(atPath: path)
        self.entries = data.flatMap { try? JSONDecoder().decode([String: Stamp].self, from: $0) } ?? [:]
    }

    mutating func sha256(of file: String) throws -> String {
        var info = stat()
        guard stat(file, &info) == 0 else {
            throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: file])
        }
        let now = Stamp(info)
        if let known = entries[file], known.sameFile(as: now) {
            return known.sha256
        }
        let digest = try FileDigest.sha256(ofFile: file)
        entries[file] = Stamp(info, sha256: digest)
        dirty = true
        return digest
    }

    /// Saves new entries atomically; concurrent builders may each save, the last one wins.
    mutating func save() {
        guard dirty, let data = try? JSONEncoder().encode(entries) else { return }
        try? data.write(to: URL(fileURLWithPath: path), options: .atomic)
        dirty = false
    }
}
