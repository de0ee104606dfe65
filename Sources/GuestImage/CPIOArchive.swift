import Foundation

/// An initramfs in the `newc` cpio format, written by cxllab itself so that the same inputs
/// always give the same bytes: entries sorted by path, inode numbers in that order, owner
/// root, every timestamp zero.
public struct CPIOArchive: Sendable {
    public enum Content: Sendable, Hashable {
        case directory
        case bytes(Data)
        /// A host file, read when the archive is written.
        case file(String)
        case symlink(String)
        case characterDevice(major: UInt32, minor: UInt32)
    }

    public struct Entry: Sendable, Hashable {
        public let path: String
        public let mode: UInt32
        public let content: Content
    }

    private(set) var entries: [String: Entry] = [:]

    public init() {}

    public var paths: [String] { entries.keys.sorted() }

    /// Adds an entry (replacing any at the same path) and every missing parent folder.
    public mutating func add(_ path: String, _ content: Content, mode: UInt32? = nil) {
        let path = Self.normalize(path)
        guard !path.isEmpty else { return }
        var parent = (path as NSString).deletingLastPathComponent
        while !parent.isEmpty, entries[parent] == nil {
            entries[parent] = Entry(path: parent, mode: 0o755, content: .directory)
            parent = (parent as NSString).deletingLastPathComponent
        }
        let defaultMode: UInt32 = switch content {
        case .directory: 0o755
        case .symlink: 0o777
        case .characterDevice: 0o600
        case .bytes, .file: 0o644
        }
        entries[path] = Entry(path: path, mode: mode ?? defaultMode, content: content)
    }

    static func normalize(_ path: String) -> String {
        path.split(separator: "/").filter { $0 != "." && !$0.isEmpty }.joined(separator: "/")
    }

    /// Writes the archive; returns its size in bytes.
    @discardableResult
    public func write(to path: String) throws -> Int {
        let fm = FileManager.default
        _ = fm.createFile(atPath: path, contents: nil)
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path])
        }
        defer { try? handle.close() }
        var writer = BufferedWriter(handle: handle)
        for (index, path) in paths.enumerated() {
            let entry = entries[path]!
            try writer.append(entry: entry, inode: UInt32(index + 1))
        }
        try writer.appendTrailer(inode: UInt32(entries.count + 1))
        try writer.flush()
        return writer.written
    }
}

private struct BufferedWriter {
    let handle: FileHandle
    var buffer = Data()
    var written = 0

    init(handle: FileHandle) {
        self.handle = handle
        buffer.reserveCapacity(1 << 20)
    }

    mutating func append(entry: CPIOArchive.Entry, inode: UInt32) throws {
        var type: UInt32
        var data = Data()
        var rdev: (UInt32, UInt32) = (0, 0)
        switch entry.content {
        case .directory: type = 0o040000
        case .bytes(let bytes): type = 0o100000; data = bytes
        case .file(let source):
            type = 0o100000
            data = try Data(contentsOf: URL(fileURLWithPath: source), options: .mappedIfSafe)
        case .symlink(let target): type = 0o120000; data = Data(target.utf8)
        case .characterDevice(let major, let minor): type = 0o020000; rdev = (major, minor)
        }
        let nlink: UInt32 = entry.content == .directory ? 2 : 1
        // newc sizes are 8 hex digits: a file of 4 GiB or more cannot go in an initramfs.
        guard let size = UInt32(exactly: data.count) else {
            throw CPIOArchiveError.tooLarge(path: entry.path, bytes: data.count)
        }
        try header(inode: inode, mode: type | (entry.mode & 0o7777), nlink: nlink, size: size,
                   rdev: rdev, name: entry.path)
        try appendPadded(data)
    }

    mutating func appendTrailer(inode: UInt32) throws {
        try header(inode: 0, mode: 0, nlink: 1, size: 0, rdev: (0, 0), name: "TRAILER!!!")
        // The kernel reads the archive in 512-byte blocks; pad like cpio does.
        let remainder = written % 512
        if remainder != 0 { try appendRaw(Data(count: 512 - remainder)) }
    }

    mutating func header(inode: UInt32, mode: UInt32, nlink: UInt32, size: UInt32, rdev: (UInt32, UInt32), name: String) throws {
        let nameBytes = Data(name.utf8) + [0]
        let fields: [UInt32] = [inode, mode, 0, 0, nlink, 0, size, 0, 0, rdev.0, rdev.1, UInt32(nameBytes.count), 0]
        var header = "070701"
        for field in fields {
            let hex = String(field, radix: 16, uppercase: true)
            header += String(repeating: "0", count: 8 - hex.count) + hex
        }
        try appendRaw(Data(header.utf8))
        try appendPadded(nameBytes)
    }

    mutating func appendPadded(_ data: Data) throws {
        try appendRaw(data)
        let remainder = written % 4
        if remainder != 0 { try appendRaw(Data(count: 4 - remainder)) }
    }

    mutating func appendRaw(_ data: Data) throws {
        buffer.append(data)
        written += data.count
        if buffer.count >= 1 << 20 { try flush() }
    }

    mutating func flush() throws {
        guard !buffer.isEmpty else { return }
        try handle.write(contentsOf: buffer)
        buffer.removeAll(keepingCapacity: true)
    }
}

public enum CPIOArchiveError: Error, Sendable, CustomStringConvertible {
    case tooLarge(path: String, bytes: Int)

    public var description: String {
        switch self {
        case .tooLarge(let path, let bytes):
            "\(path) is \(bytes) bytes; an initramfs (cpio newc) holds files under 4 GiB only: leave it out of the image"
        }
    }
}
