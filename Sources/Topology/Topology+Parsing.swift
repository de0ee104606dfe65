// Reading a topology file: the document and its entry points, YAML errors turned into
// diagnostics, and values that keep their place in the file.

import Foundation
import Yams
import YAMLGuard

/// A topology file read into its parts with their places in the file, not yet checked for
/// sense. Reading reports every problem of shape (syntax, unknown keys, wrong types, sizes
/// that do not parse); `validate` reports every problem of sense.
public struct TopologyDocument: Sendable {
    public let file: String
    let draft: Draft
    /// Problems found while reading; `validate` reports them along with its own.
    let readingDiagnostics: [TopologyDiagnostic]

    /// Reads `yaml`, the text of the file named `file` (used in diagnostics only: no I/O).
    /// Throws every problem of shape at once.
    public static func parse(yaml: String, file: String) throws(TopologyError) -> TopologyDocument {
        let document = read(yaml: yaml, file: file)
        guard document.readingDiagnostics.isEmpty else { throw TopologyError(document.readingDiagnostics) }
        return document
    }

    /// Reads as much as it can, keeping the problems for `validate` to report with its own.
    static func read(yaml: String, file: String) -> TopologyDocument {
        let sink = DiagnosticSink(file: file)
        var draft = Draft(file: file)
        // Before Yams composes it: an alias used as a key makes composing exponential in the
        // nesting (481 bytes once took 8.6 s), and a topology never needs one.
        do {
            try YAMLGuard.check(yaml)
        } catch {
            sink.error(SourcePosition(line: error.line, column: error.column), error.message, fix: error.fix)
            return TopologyDocument(file: file, draft: draft, readingDiagnostics: sink.diagnostics)
        }
        do {
            if let root = try Yams.compose(yaml: yaml) {
                draft = Draft.read(root, file: file, sink: sink)
            } else {
                sink.error(.start, "the file holds no topology", fix: "start from one of the files in topologies/, e.g. topologies/nvdimm-single.yaml")
            }
        } catch let error as YamlError {
            report(error, in: yaml, to: sink)
        } catch {
            sink.error(.start, "the YAML cannot be read: \(error)", fix: "check that the file is UTF-8 text in YAML")
        }
        return TopologyDocument(file: file, draft: draft, readingDiagnostics: sink.diagnostics)
    }

    private static func report(_ error: YamlError, in yaml: String, to sink: DiagnosticSink) {
        let syntaxFix = "check the indentation (spaces only, the same depth for keys of one mapping) and the punctuation near here"
        switch error {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _), let .composer(context, problem, mark, _):
            let detail = context.map { " (\($0.text) at \($0.mark.line):\($0.mark.column))" } ?? ""
            sink.error(SourcePosition(mark), "YAML syntax: \(problem)\(detail)", fix: syntaxFix)
        case let .duplicatedKeysInMapping(duplicates, context):
            let keys = duplicates.map { "`\($0)`" }.joined(separator: ", ")
            sink.error(SourcePosition(context.mark), "the key \(keys) appears more than once in the same mapping",
                       fix: "keep one of them: a later one would silently replace the earlier")
        case let .reader(problem, offset, _, _):
            let location = offset.map { SourcePosition(yaml, utf8Offset: $0) } ?? .start
            sink.error(location, "the file cannot be read as text: \(problem)", fix: "save the file as UTF-8 text")
        default:
            sink.error(.start, "the YAML cannot be read: \(error)", fix: syntaxFix)
        }
    }
}

extension SourcePosition {
    init(_ mark: Mark) { self.init(line: max(mark.line, 1), column: max(mark.column, 1)) }

    init(_ text: String, utf8Offset: Int) {
        let prefix = text.utf8.prefix(max(0, utf8Offset))
        let lines = prefix.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        self.init(line: lines.count, column: (lines.last?.count ?? 0) + 1)
    }
}

/// A value with the place in the file it came from.
struct Located<Value: Sendable & Hashable>: Sendable, Hashable {
    var value: Value
    var location: SourcePosition
}

extension Node {
    var location: SourcePosition { mark.map(SourcePosition.init) ?? .start }

    /// How a user would call this kind of node, for "expected X, found Y".
    var kindDescription: String {
        switch self {
        case .mapping: "a mapping (key: value lines)"
        case .sequence: "a list"
        case .alias: "an alias"
        case .scalar(let scalar):
            if Node.scalar(scalar).isNull { "nothing" }
            else { "`\(scalar.string)`" }
        }
    }

    var isNull: Bool {
        guard case .scalar(let scalar) = self else { return false }
        return scalar.style == .plain && ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }
}
