// Reading one YAML mapping of a cxllab file (topology, matrix) into typed values, reporting
// unknown keys and values of the wrong type.

import HostSupport
import Yams

/// Reads one YAML mapping: reports keys it does not know (with the nearest known key), and
/// hands out typed values, reporting those of the wrong type. Every getter returns nil after
/// reporting, so a reader carries on and finds the next problem.
public struct MappingReader {
    public let what: String
    public let location: SourcePosition
    public let sink: DiagnosticSink
    /// The file's top mapping: a mapping under it is named by its key alone.
    private let isRoot: Bool
    private var entries: [String: (key: SourcePosition, value: Node)] = [:]
    /// Known keys that an unknown key was taken for: not reported missing on top of it.
    private var suggested: Set<String> = []

    /// Nil (after reporting) when `node` is not a mapping.
    public init?(_ node: Node, what: String, known: [String], sink: DiagnosticSink, isRoot: Bool = false) {
        self.what = what
        self.isRoot = isRoot
        self.location = node.location
        self.sink = sink
        guard case .mapping(let mapping) = node else {
            sink.error(node.location, "\(what) should be a mapping (key: value lines), but is \(node.kindDescription)",
                       fix: "write it as indented `key: value` lines; it takes: \(known.joined(separator: ", "))")
            return nil
        }
        for (keyNode, value) in mapping {
            guard case .scalar(let scalar) = keyNode else {
                sink.error(keyNode.location, "a key in \(what) is \(keyNode.kindDescription), not a name",
                           fix: "use one of: \(known.joined(separator: ", "))")
                continue
            }
            let key = scalar.string
            guard known.contains(key) else {
                let nearest = Spelling.nearest(to: key, in: known)
                let hint = nearest.map { "did you mean `\($0)`? " } ?? ""
                if let nearest { suggested.insert(nearest) }
                sink.error(keyNode.location, "unknown key `\(key)` in \(what)",
                           fix: "\(hint)\(what) takes: \(known.joined(separator: ", "))")
                continue
            }
            entries[key] = (keyNode.location, value)
        }
    }

    public func has(_ key: String) -> Bool { entries[key] != nil }

    public func keyLocation(_ key: String) -> SourcePosition? { entries[key]?.key }

    /// The value node, or nil when absent; a null value (`key:` with nothing) is reported.
    public func node(_ key: String) -> Node? {
        guard let entry = entries[key] else { return nil }
        if entry.value.isNull {
            sink.error(entry.key, "`\(key)` in \(what) has no value", fix: "give `\(key)` a value, or delete the line")
            return nil
        }
        return entry.value
    }

    /// Reports a missing required key at the start of this mapping.
    public func require(_ key: String, _ example: String) {
        if entries[key] == nil, !suggested.contains(key) {
            sink.error(location, "\(what) has no `\(key)`", fix: "add `\(key): \(example)`")
        }
    }

    public func string(_ key: String) -> Located<String>? {
        guard let node = node(key) else { return nil }
        guard case .scalar(let scalar) = node else {
            sink.error(node.location, "`\(key)` in \(what) should be text, but is \(node.kindDescription)", fix: "write `\(key): <text>` on one line")
            return nil
        }
        return Located(value: scalar.string, location: node.location)
    }

    public func int(_ key: String, example: String = "0") -> Located<Int>? {
        guard let node = node(key) else { return nil }
        return MappingReader.int(node, name: "`\(key)` in \(what)", example: "\(key): \(example)", sink: sink)
    }

    public static func int(_ node: Node, name: String, example: String, sink: DiagnosticSink) -> Located<Int>? {
        guard case .scalar = node, let value = node.int else {
            sink.error(node.location, "\(name) should be a whole number, but is \(node.kindDescription)", fix: "write a number, e.g. `\(example)`")
            return nil
        }
        return Located(value: value, location: node.location)
    }

    public func bool(_ key: String) -> Located<Bool>? {
        guard let node = node(key) else { return nil }
        guard case .scalar = node, let value = node.bool else {
            sink.error(node.location, "`\(key)` in \(what) should be true or false, but is \(node.kindDescription)", fix: "write `\(key): true` or `\(key): false`")
            return nil
        }
        return Located(value: value, location: node.location)
    }

    public func list(_ key: String, example: String) -> (value: [Node], location: SourcePosition)? {
        guard let node = node(key) else { return nil }
        guard case .sequence(let sequence) = node else {
            sink.error(node.location, "`\(key)` in \(what) should be a list, but is \(node.kindDescription)",
                       fix: "write a list: one `- ` item per line below `\(key):`, or `\(key): [\(example)]`")
            return nil
        }
        return (Array(sequence), node.location)
    }

    public func mapping(_ key: String, known: [String]) -> MappingReader? {
        guard let node = node(key) else { return nil }
        return MappingReader(node, what: isRoot ? "`\(key)`" : "`\(key)` of \(what)", known: known, sink: sink)
    }
}

/// A value with the place in the file it came from.
public struct Located<Value: Sendable & Hashable>: Sendable, Hashable {
    public var value: Value
    public var location: SourcePosition

    public init(value: Value, location: SourcePosition) {
        self.value = value
        self.location = location
    }
}

extension Node {
    public var location: SourcePosition { mark.map(SourcePosition.init) ?? .start }

    /// How a user would call this kind of node, for "expected X, found Y".
    public var kindDescription: String {
        switch self {
        case .mapping: "a mapping (key: value lines)"
        case .sequence: "a list"
        case .alias: "an alias"
        case .scalar(let scalar):
            if Node.scalar(scalar).isNull { "nothing" }
            else { "`\(scalar.string)`" }
        }
    }

    public var isNull: Bool {
        guard case .scalar(let scalar) = self else { return false }
        return scalar.style == .plain && ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }
}

extension SourcePosition {
    public init(_ mark: Mark) { self.init(line: max(mark.line, 1), column: max(mark.column, 1)) }

    public init(_ text: String, utf8Offset: Int) {
        let prefix = text.utf8.prefix(max(0, utf8Offset))
        let lines = prefix.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        self.init(line: lines.count, column: (lines.last?.count ?? 0) + 1)
    }
}
