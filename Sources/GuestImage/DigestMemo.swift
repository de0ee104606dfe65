import Foundation
import HostSupport

/// Content hashes of input files, remembered by (size, mtime, inode) so a warm image build
/// does not read every input again. A file that changes gets a new mtime and is hashed anew.
/// Each build owns one memo (never shared, so no lock) and saves it once at its end.
struct DigestMemo: ~Copyable {
    private struct Stamp: Codable, Hashable {
        let size: Int64
        let mtime: Int64
        let inode: UInt64
        let sha256: String
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
        let mtime = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
        if let known = entries[file], known.size == Int64(info.st_size), known.mtime == mtime, known.inode == UInt64(info.st_ino) {
            return known.sha256
        }
        let digest = try FileDigest.sha256(ofFile: file)
        entries[file] = Stamp(size: Int64(info.st_size), mtime: mtime, inode: UInt64(info.st_ino), sha256: digest)
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
