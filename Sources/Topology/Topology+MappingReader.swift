// Reading one YAML mapping of a topology file into typed values, reporting unknown keys
// and values of the wrong type.

import Foundation
import Yams

/// Reads one YAML mapping: reports keys it does not know (with the nearest known key), and
/// hands out typed values, reporting those of the wrong type. Every getter returns nil after
/// reporting, so a reader carries on and finds the next problem.
struct MappingReader {
    let what: String
    let location: SourcePosition
    let sink: DiagnosticSink
    private var entries: [String: (key: SourcePosition, value: Node)] = [:]
    /// Known keys that an unknown key was taken for: not reported missing on top of it.
    private var suggested: Set<String> = []

    /// Nil (after reporting) when `node` is not a mapping.
    init?(_ node: Node, what: String, known: [String], sink: DiagnosticSink) {
        self.what = what
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

    func has(_ key: String) -> Bool { entries[key] != nil }

    func keyLocation(_ key: String) -> SourcePosition? { entries[key]?.key }

    /// The value node, or nil when absent; a null value (`key:` with nothing) is reported.
    func node(_ key: String) -> Node? {
        guard let entry = entries[key] else { return nil }
        if entry.value.isNull {
            sink.error(entry.key, "`\(key)` in \(what) has no value", fix: "give `\(key)` a value, or delete the line")
            return nil
        }
        return entry.value
    }

    /// Reports a missing required key at the start of this mapping.
    func require(_ key: String, _ example: String) {
        if entries[key] == nil, !suggested.contains(key) {
            sink.error(location, "\(what) has no `\(key)`", fix: "add `\(key): \(example)`")
        }
    }

    func string(_ key: String) -> Located<String>? {
        guard let node = node(key) else { return nil }
        guard case .scalar(let scalar) = node else {
            sink.error(node.location, "`\(key)` in \(what) should be text, but is \(node.kindDescription)", fix: "write `\(key): <text>` on one line")
            return nil
        }
        return Located(value: scalar.string, location: node.location)
    }

    func int(_ key: String, example: String = "0") -> Located<Int>? {
        guard let node = node(key) else { return nil }
        return MappingReader.int(node, name: "`\(key)` in \(what)", example: "\(key): \(example)", sink: sink)
    }

    static func int(_ node: Node, name: String, example: String, sink: DiagnosticSink) -> Located<Int>? {
        guard case .scalar = node, let value = node.int else {
            sink.error(node.location, "\(name) should be a whole number, but is \(node.kindDescription)", fix: "write a number, e.g. `\(example)`")
            return nil
        }
        return Located(value: value, location: node.location)
    }

    func bool(_ key: String) -> Located<Bool>? {
        guard let node = node(key) else { return nil }
        guard case .scalar = node, let value = node.bool else {
            sink.error(node.location, "`\(key)` in \(what) should be true or false, but is \(node.kindDescription)", fix: "write `\(key): true` or `\(key): false`")
            return nil
        }
        return Located(value: value, location: node.location)
    }

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

    func list(_ key: String, example: String) -> (value: [Node], location: SourcePosition)? {
        guard let node = node(key) else { return nil }
        guard case .sequence(let sequence) = node else {
            sink.error(node.location, "`\(key)` in \(what) should be a list, but is \(node.kindDescription)",
                       fix: "write a list: one `- ` item per line below `\(key):`, or `\(key): [\(example)]`")
            return nil
        }
        return (Array(sequence), node.location)
    }

    func mapping(_ key: String, known: [String]) -> MappingReader? {
        guard let node = node(key) else { return nil }
        return MappingReader(node, what: what == "the topology" ? "`\(key)`" : "`\(key)` of \(what)", known: known, sink: sink)
    }
}
