import Foundation

public struct ELFError: Error, Sendable, CustomStringConvertible {
    public let path: String
    public let reason: String
    public var description: String { "\(path) is not a usable x86-64 ELF file: \(reason)" }
}

/// The dynamic-linking facts of a 64-bit little-endian ELF file: its program interpreter,
/// the libraries it needs (DT_NEEDED) and where it asks to find them (DT_RUNPATH, DT_RPATH).
public struct ELFFile: Sendable, Hashable {
    public let interpreter: String?
    public let needed: [String]
    public let runPaths: [String]
    public var isStatic: Bool { interpreter == nil && needed.isEmpty }

    public init(path: String) throws {
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: path), options: .mappedIfSafe) else {
            throw ELFError(path: path, reason: "cannot be read")
        }
        try self.init(data: data, path: path)
    }

    public init(data: Data, path: String = "<data>") throws {
        let bytes = [UInt8](data.prefix(64))
        guard bytes.count >= 64, bytes[0] == 0x7F, bytes[1] == 0x45, bytes[2] == 0x4C, bytes[3] == 0x46 else {
            throw ELFError(path: path, reason: "no ELF magic")
        }
        guard bytes[4] == 2, bytes[5] == 1 else { throw ELFError(path: path, reason: "not 64-bit little-endian") }
        let reader = ByteReader(data: data, path: path)
        let programHeaders = try reader.int(try reader.u64(0x20, path))
        let entrySize = Int(try reader.u16(0x36, path))
        let count = Int(try reader.u16(0x38, path))
        struct Segment { let type: UInt32; let offset: UInt64; let address: UInt64; let size: UInt64 }
        var segments: [Segment] = []
        for index in 0..<count {
            let base = try reader.sum(programHeaders, index * entrySize)
            segments.append(Segment(
                type: try reader.u32(base, path), offset: try reader.u64(try reader.sum(base, 8), path),
                address: try reader.u64(try reader.sum(base, 16), path), size: try reader.u64(try reader.sum(base, 32), path)
            ))
        }
        var interpreter: String?
        if let interp = segments.first(where: { $0.type == 3 }) {
            interpreter = try reader.cString(try reader.int(interp.offset), path)
        }
        var needed: [String] = []
        var runPaths: [String] = []
        if let dynamic = segments.first(where: { $0.type == 2 }) {
            var tags: [(Int64, UInt64)] = []
            var offset = try reader.int(dynamic.offset)
            let end = try reader.sum(offset, try reader.int(dynamic.size))
            // Every step is checked: a PT_DYNAMIC placed near the top of the offsets would
            // otherwise overflow `offset + 16` and trap.
            while try reader.sum(offset, 16) <= end {
                let tag = Int64(bitPattern: try reader.u64(offset, path))
                if tag == 0 { break }
                tags.append((tag, try reader.u64(try reader.sum(offset, 8), path)))
                offset = try reader.sum(offset, 16)
            }
            // DT_STRTAB is an address: find the loaded segment that holds it.
            guard let table = tags.first(where: { $0.0 == 5 })?.1,
                  let load = segments.first(where: { $0.type == 1 && $0.address <= table && table - $0.address < $0.size })
            else { throw ELFError(path: path, reason: "dynamic section without a string table") }
            let tableOffset = try reader.sum(try reader.int(table - load.address), try reader.int(load.offset))
            for (tag, value) in tags {
                switch tag {
                case 1: needed.append(try reader.cString(try reader.sum(tableOffset, try reader.int(value)), path))
                case 15, 29: runPaths += try reader.cString(try reader.sum(tableOffset, try reader.int(value)), path).split(separator: ":").map(String.init)
                default: break
                }
            }
        }
        self.interpreter = interpreter
        self.needed = needed
        self.runPaths = runPaths
    }
}

/// Reads fields of a file whose every number may lie: an offset or size past what an `Int`
/// holds, or a sum that overflows, is a malformed file, never a crash.
private struct ByteReader {
    let data: Data
    let path: String

    func int(_ value: UInt64) throws -> Int {
        guard let converted = Int(exactly: value) else { throw ELFError(path: path, reason: "a field holds \(value), past any file") }
        return converted
    }

    func sum(_ a: Int, _ b: Int) throws -> Int {
        let (total, overflow) = a.addingReportingOverflow(b)
        guard !overflow else { throw ELFError(path: path, reason: "offsets that overflow") }
        return total
    }

    func bytes(_ offset: Int, _ count: Int, _ path: String) throws -> [UInt8] {
        guard offset >= 0, offset <= data.count - count else { throw ELFError(path: path, reason: "truncated at byte \(offset)") }
        let start = data.startIndex + offset
        return [UInt8](data[start..<start + count])
    }

    func u16(_ offset: Int, _ path: String) throws -> UInt16 {
        try bytes(offset, 2, path).enumerated().reduce(0) { $0 | UInt16($1.element) << (8 * $1.offset) }
    }

    func u32(_ offset: Int, _ path: String) throws -> UInt32 {
        try bytes(offset, 4, path).enumerated().reduce(0) { $0 | UInt32($1.element) << (8 * $1.offset) }
    }

    func u64(_ offset: Int, _ path: String) throws -> UInt64 {
        try bytes(offset, 8, path).enumerated().reduce(0) { $0 | UInt64($1.element) << (8 * $1.offset) }
    }

    func cString(_ offset: Int, _ path: String) throws -> String {
        guard offset >= 0, offset < data.count else { throw ELFError(path: path, reason: "string outside the file") }
        let start = data.startIndex + offset
        guard let end = data[start...].firstIndex(of: 0) else { throw ELFError(path: path, reason: "unterminated string") }
        return String(decoding: data[start..<end], as: UTF8.self)
    }
}

extension ELFFile {
    /// Whether a file starts with ELF's magic bytes.
    public static func isELF(_ path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        return (try? handle.read(upToCount: 4)) == Data([0x7f, 0x45, 0x4c, 0x46])
    }
}
