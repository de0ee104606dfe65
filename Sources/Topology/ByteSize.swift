import Foundation
import YAMLGuard
import Yams

/// Sizes as topology files write them (`512M`, `1G`, `256MiB`, `131072`) and as cxllab
/// prints them. Units are binary: K, M, G and T are 1024, 1024², 1024³ and 1024⁴ bytes, as
/// in QEMU and libvirt.
public enum ByteSize {
    public static let kib: UInt64 = 1 << 10
    public static let mib: UInt64 = 1 << 20
    public static let gib: UInt64 = 1 << 30
    public static let tib: UInt64 = 1 << 40

    /// Why a text is not a size, said so that the reader knows what to write instead.
    public enum ParseError: Error, Sendable, Hashable, CustomStringConvertible {
        case empty
        case notANumber(String)
        case fraction(String)
        case decimalUnit(String)
        case unknownUnit(String)
        case tooLarge(String)

        public var description: String {
            switch self {
            case .empty: "the size is empty"
            case .notANumber(let text): "`\(text)` is not a size"
            case .fraction(let text): "`\(text)` is not a whole number of bytes in its unit"
            case .decimalUnit(let text): "`\(text)` uses a decimal unit, which cxllab does not guess at"
            case .unknownUnit(let text): "`\(text)` has an unknown unit"
            case .tooLarge(let text): "`\(text)` is too large"
            }
        }

        /// How to write the size instead.
        public var fix: String {
            switch self {
            case .fraction: "write a whole number in a smaller unit, e.g. 1536M instead of 1.5G"
            case .decimalUnit(let text):
                "write \(text.filter(\.isNumber))\(text.first(where: \.isLetter).map { $0.uppercased() } ?? "M") (or \(text.filter(\.isNumber))\(text.first(where: \.isLetter).map { $0.uppercased() } ?? "M")iB): sizes are binary (1M = 1024 KiB), as in QEMU and libvirt"
            case .tooLarge: "use a size below 1024 TiB"
            default: "write a number of bytes, or a number with a unit: K, M, G, T (or KiB, MiB, GiB, TiB), e.g. 512M or 1G"
            }
        }
    }

    /// Parses a size. Accepts plain bytes (`4096`), `B`, and the binary units K, M, G, T with
    /// or without `iB` (`256M`, `256MiB`, `1g`); a space between number and unit is allowed.
    public static func parse(_ text: String) -> Result<UInt64, ParseError> {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { return .failure(.empty) }
        let digits = trimmed.prefix { $0.isASCII && $0.isNumber }
        var unit = trimmed.dropFirst(digits.count).trimmingCharacters(in: .whitespaces)
        if digits.isEmpty { return .failure(.notANumber(trimmed)) }
        if unit.hasPrefix(".") || unit.hasPrefix(",") {
            let rest = unit.dropFirst()
            return rest.first?.isNumber == true ? .failure(.fraction(trimmed)) : .failure(.notANumber(trimmed))
        }
        unit = unit.lowercased()
        let multiplier: UInt64
        switch unit {
        case "", "b": multiplier = 1
        case "k", "kib": multiplier = kib
        case "m", "mib": multiplier = mib
        case "g", "gib": multiplier = gib
        case "t", "tib": multiplier = tib
        case "kb", "mb", "gb", "tb": return .failure(.decimalUnit(trimmed))
        default: return .failure(unit.allSatisfy(\.isLetter) ? .unknownUnit(trimmed) : .notANumber(trimmed))
        }
        guard digits.count <= 19, let number = UInt64(digits) else { return .failure(.tooLarge(trimmed)) }
        let (bytes, overflow) = number.multipliedReportingOverflow(by: multiplier)
        guard !overflow, bytes < 1024 * tib else { return .failure(.tooLarge(trimmed)) }
        return .success(bytes)
    }

    /// For people: the largest binary unit that divides the size exactly (`1 GiB`, `1026 MiB`,
    /// `128 KiB`, `300 B`).
    public static func describe(_ bytes: UInt64) -> String {
        for (unit, name) in [(tib, "TiB"), (gib, "GiB"), (mib, "MiB"), (kib, "KiB")] where bytes >= unit && bytes % unit == 0 {
            return "\(bytes / unit) \(name)"
        }
        return "\(bytes) B"
    }

    /// For QEMU's command line: the largest unit suffix that divides exactly (`4G`, `256M`,
    /// `1050624K`), else plain bytes.
    public static func qemu(_ bytes: UInt64) -> String {
        for (unit, name) in [(tib, "T"), (gib, "G"), (mib, "M"), (kib, "K")] where bytes >= unit && bytes % unit == 0 {
            return "\(bytes / unit)\(name)"
        }
        return "\(bytes)"
    }

    /// `value` rounded up to a multiple of `alignment` (a power of two), or nil on overflow.
    static func alignUp(_ value: UInt64, to alignment: UInt64) -> UInt64? {
        let (sum, overflow) = value.addingReportingOverflow(alignment - 1)
        return overflow ? nil : sum & ~(alignment - 1)
    }
}

extension Sequence where Element == UInt64 {
    /// The sum, or nil if it does not fit: sizes come from users and may be absurd.
    var checkedSum: UInt64? {
        var total: UInt64 = 0
        for value in self {
            let (sum, overflow) = total.addingReportingOverflow(value)
            if overflow { return nil }
            total = sum
        }
        return total
    }
}

extension MappingReader {
    func size(_ key: String, example: String = "1G") -> Located<UInt64>? {
        guard let node = node(key) else { return nil }
        return MappingReader.size(node, name: "`\(key)` in \(what)", example: "\(key): \(example)", sink: sink)
    }

    static func size(_ node: Node, name: String, example: String, sink: DiagnosticSink) -> Located<UInt64>? {
        guard case .scalar(let scalar) = node else {
            sink.error(node.location, "\(name) should be a size, but is \(node.kindDescription)", fix: "write a size such as `\(example)`")
            return nil
        }
        if scalar.string.hasPrefix("-") {
            sink.error(node.location, "\(name) is negative", fix: "write a size such as `\(example)`")
            return nil
        }
        switch ByteSize.parse(scalar.string) {
        case .success(let bytes): return Located(value: bytes, location: node.location)
        case .failure(let problem):
            sink.error(node.location, "\(name): \(problem)", fix: problem.fix)
            return nil
        }
    }
}
