import Foundation
import HostSupport

/// What `machine.json` says of one saved copy.
public struct SavedMachineRecord: Codable, Sendable, Hashable {
    /// One backing file: its name in the lab folder and its size.
    public struct StoredFile: Codable, Sendable, Hashable {
        public var name: String
        public var size: UInt64
    }

    public var key: String
    public var kernelImageSHA256: String
    public var imageKey: String
    /// SHA-256 of the domain XML rendered with a placeholder folder (`SavedMachineKey`).
    public var topologyXMLSHA256: String
    /// The agent's protocol version and name from the handshake before the save.
    public var agentVersion: Int64?
    public var agent: String?
    /// The domain the save image holds, and the lab folder its paths name.
    public var domainName: String
    public var savedFolder: String
    public var saveImageSize: UInt64
    public var files: [StoredFile]
    /// Seconds the boot took that this copy saves, and the save itself.
    public var bootSeconds: Double
    public var saveSeconds: Double?
    public var created: Date
    public var lastUsed: Date
    /// What the copy takes on disk (blocks, so sparse files count what they hold).
    public var bytes: UInt64
}

/// Saved machines under `<cache>/machines/<key>/<n>/`: a save image (`machine.save`), the
/// backing files it was saved with (`files/`, copied sparse) and `machine.json`. A copy is
/// written in `.staging/` and renamed into place only when complete, checked before each use
/// (a damaged or stale one is removed, never used), claimed with a lock (`<key>/<n>.lock`)
/// while a lab runs from it, and the store is kept under `limitBytes`, least recently used
/// copies dropped first.
public struct SavedMachines: Sendable {
    public let root: String
    public let limitBytes: UInt64

    public static let defaultLimitBytes: UInt64 = 4 << 30
    static let recordName = "machine.json"
    static let saveImageName = "machine.save"
    static let filesName = "files"

    public init(root: String, limitBytes: UInt64 = SavedMachines.defaultLimitBytes) {
        self.root = root
        self.limitBytes = limitBytes
    }

    public init(cache: CacheDirectory, limitBytes: UInt64 = SavedMachines.defaultLimitBytes) {
        self.init(root: cache.path + "/machines", limitBytes: limitBytes)
    }

    public func copyFolder(key: String, index: Int) -> String { root + "/\(key)/\(index)" }
    public func saveImage(key: String, index: Int) -> String { copyFolder(key: key, index: index) + "/" + Self.saveImageName }
    public func storedFile(_ name: String, key: String, index: Int) -> String { copyFolder(key: key, index: index) + "/\(Self.filesName)/" + name }

    /// Claims copy `index` of `key` for one lab; nil when another lab holds it.
    public func claim(key: String, index: Int) throws -> FileLock.Held? {
        try FileManager.default.createDirectory(atPath: root + "/\(key)", withIntermediateDirectories: true)
        return try FileLock.tryHold(root + "/\(key)/\(index).lock")
    }

    /// The copy's record, when it has a readable one.
    public func record(key: String, index: Int) -> SavedMachineRecord? {
        Self.readRecord(copyFolder(key: key, index: index))
    }

    static func readRecord(_ folder: String) -> SavedMachineRecord? {
        guard let data = FileManager.default.contents(atPath: folder + "/" + recordName) else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .utcISO8601
        return try? decoder.decode(SavedMachineRecord.self, from: data)
    }

    static func writeRecord(_ record: SavedMachineRecord, in folder: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .utcISO8601
        try encoder.encode(record).write(to: URL(fileURLWithPath: folder + "/" + recordName), options: .atomic)
    }

    /// Why copy `index` of `key` must not be used (nil when it may): missing, its record
    /// unreadable or of another key or domain, a file missing or of another size, or its save
    /// image naming another domain (`imageDomainName` reads the name a save image holds).
    public func problem(key: String, index: Int, domainName: String, imageDomainName: (String) throws -> String) -> String? {
        let folder = copyFolder(key: key, index: index)
        guard FileManager.default.fileExists(atPath: folder) else { return "there is none" }
        guard let record = Self.readRecord(folder) else { return "its \(Self.recordName) is missing or unreadable" }
        guard record.key == key else { return "its \(Self.recordName) names key \(record.key), not \(key)" }
        guard record.domainName == domainName else { return "it holds domain \(record.domainName), not \(domainName)" }
        let image = folder + "/" + Self.saveImageName
        guard Self.size(of: image) == record.saveImageSize else { return "its save image \(image) is missing or not \(record.saveImageSize) bytes" }
        for file in record.files {
            let path = folder + "/\(Self.filesName)/" + file.name
            guard let size = Self.size(of: path) else { return "its backing file \(path) is missing" }
            guard size == file.size else { return "its backing file \(path) is \(size) bytes, not \(file.size)" }
        }
        do {
            let named = try imageDomainName(image)
            guard named == domainName else { return "its save image holds domain \(named), not \(domainName)" }
        } catch {
            return "its save image cannot be read: \(error)"
        }
        return nil
    }

    /// Removes copy `index` of `key` (the caller holds its claim).
    public func remove(key: String, index: Int) {
        try? FileManager.default.removeItem(atPath: copyFolder(key: key, index: index))
    }

    /// A fresh staging folder for copy `index` of `key`, named with this process so a sweep
    /// can tell one a killed cxllab left from one being written.
    public func stagingFolder(key: String, index: Int) throws -> String {
        let folder = root + "/.staging/\(key)-\(index)-\(getpid())"
        try? FileManager.default.removeItem(atPath: folder)
        try FileManager.default.createDirectory(atPath: folder + "/" + Self.filesName, withIntermediateDirectories: true)
        return folder
    }

    /// Moves a complete staging folder into place as copy `index` of `key` (any older copy
    /// there is removed first; the caller holds the claim). The rename is the commit.
    public func commit(staging: String, key: String, index: Int) throws {
        let target = copyFolder(key: key, index: index)
        try? FileManager.default.removeItem(atPath: target)
        try FileManager.default.createDirectory(atPath: root + "/\(key)", withIntermediateDirectories: true)
        guard rename(staging, target) == 0 else {
            throw LabError(.host, "cannot move the saved machine \(staging) to \(target): \(String(cString: strerror(errno)))")
        }
    }

    /// Staging folders whose cxllab is gone (killed while saving): removed.
    public func sweepStaging() {
        let staging = root + "/.staging"
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: staging)) ?? [] {
            guard let pid = entry.split(separator: "-").last.flatMap({ Int32($0) }), !ProcessLiveness.isAlive(pid) else { continue }
            try? FileManager.default.removeItem(atPath: staging + "/" + entry)
        }
    }

    /// Marks copy `index` of `key` used now, for the least-recently-used bound.
    public func touch(key: String, index: Int, now: Date = Date()) {
        let folder = copyFolder(key: key, index: index)
        guard var record = Self.readRecord(folder) else { return }
        record.lastUsed = now
        try? Self.writeRecord(record, in: folder)
    }

    /// Drops the least recently used copies no lab holds until the store is within its bound;
    /// `sparing` (key, index) is never dropped. Returns the copies dropped.
    @discardableResult
    public func trim(sparing: (key: String, index: Int)? = nil) -> [String] {
        var copies: [(folder: String, key: String, index: Int, record: SavedMachineRecord)] = []
        let fm = FileManager.default
        for key in (try? fm.contentsOfDirectory(atPath: root)) ?? [] where !key.hasPrefix(".") {
            for entry in (try? fm.contentsOfDirectory(atPath: root + "/" + key)) ?? [] {
                guard let index = Int(entry), let record = Self.readRecord(root + "/\(key)/\(entry)") else { continue }
                copies.append((root + "/\(key)/\(entry)", key, index, record))
            }
        }
        var total = copies.reduce(UInt64(0)) { $0 + $1.record.bytes }
        var dropped: [String] = []
        for copy in copies.sorted(by: { $0.record.lastUsed < $1.record.lastUsed }) where total > limitBytes {
            if let sparing, sparing.key == copy.key, sparing.index == copy.index { continue }
            // A copy a lab runs from is held: skipped, never pulled from under it.
            guard let held = try? claim(key: copy.key, index: copy.index) else { continue }
            try? fm.removeItem(atPath: copy.folder)
            held.release()
            total -= min(total, copy.record.bytes)
            dropped.append(copy.folder)
        }
        return dropped
    }

    /// Every copy no lab is restoring from (`cxllab clean --machines`), and what a killed
    /// cxllab left half-saved; they are made again when next needed. Returns the copies removed.
    public func removeUnused() -> [String] {
        sweepStaging()
        return SavedMachines(root: root, limitBytes: 0).trim()
    }

    static func size(of path: String) -> UInt64? {
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        return UInt64(info.st_size)
    }

    /// What a folder's files take on disk (allocated blocks: a sparse file counts what it holds).
    static func diskUsage(of folder: String) -> UInt64 {
        var total: UInt64 = 0
        guard let walker = FileManager.default.enumerator(atPath: folder) else { return 0 }
        for case let entry as String in walker {
            var info = stat()
            if lstat(folder + "/" + entry, &info) == 0 { total += UInt64(info.st_blocks) * 512 }
        }
        return total
    }

    /// Copies `source` to `destination` sparse (reflinked where the file system can), keeping
    /// its mode and owner: QEMU's user owns the files only QEMU's command line names.
    static func copySparse(_ source: String, to destination: String) async throws {
        let result = try await ProcessRunner.run("cp", ["--reflink=auto", "--sparse=always", "--preserve=mode,ownership", source, destination],
                                                 timeout: .seconds(300))
        guard result.succeeded else {
            let said = String(decoding: result.standardError, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw LabError(.host, "cannot copy \(source) to \(destination): \(result.timedOut ? "cp took over 300 s" : said)")
        }
    }
}
