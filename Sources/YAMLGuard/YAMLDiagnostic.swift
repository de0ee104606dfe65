// What every reader of cxllab's YAML files reports a problem with: the file, the place in it,
// what is wrong and how to fix it; collected, so a file's every problem is said at once.

/// One problem in a YAML file: where it is, what is wrong, and how to fix it.
public struct YAMLDiagnostic: Sendable, Hashable, Encodable, CustomStringConvertible {
    public var file: String
    /// 1-based, as editors count.
    public var line: Int
    /// 1-based, in Unicode scalars, as libyaml counts.
    public var column: Int
    public var message: String
    /// Empty when the message already says how (a scenario's own check words both).
    public var fix: String

    public init(file: String, line: Int, column: Int, message: String, fix: String) {
        self.file = file
        self.line = line
        self.column = column
        self.message = message
        self.fix = fix
    }

    /// `topologies/x.yaml:12:5: error: <what>` and, indented below it, `fix: <how>`: the
    /// first line is the form compilers use, so editors and CI logs link it to the file.
    public var description: String {
        "\(file):\(line):\(column): error: \(message)\n    fix: \(fix)"
    }

    /// `FILE:LINE:COL: <what>; fix: <how>` on one line, the form matrix files are reported in
    /// (as `YAMLRefusal` and the expect rules always were).
    public var oneLine: String {
        "\(file):\(line):\(column): \(message)" + (fix.isEmpty ? "" : "; fix: \(fix)")
    }

    /// In file order, then by column.
    public static func sorted(_ diagnostics: [YAMLDiagnostic]) -> [YAMLDiagnostic] {
        diagnostics.sorted { ($0.file, $0.line, $0.column) < ($1.file, $1.line, $1.column) }
    }
}

/// A place in a YAML file.
public struct SourcePosition: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var line: Int
    public var column: Int

    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }

    public static let start = SourcePosition(line: 1, column: 1)

    public static func < (lhs: SourcePosition, rhs: SourcePosition) -> Bool {
        (lhs.line, lhs.column) < (rhs.line, rhs.column)
    }

    public var description: String { "\(line):\(column)" }
}

/// Collects diagnostics for one file, so every problem is reported, not just the first.
public final class DiagnosticSink {
    public let file: String
    public private(set) var diagnostics: [YAMLDiagnostic] = []

    public init(file: String) { self.file = file }

    public func error(_ location: SourcePosition, _ message: String, fix: String) {
        let diagnostic = YAMLDiagnostic(file: file, line: location.line, column: location.column, message: message, fix: fix)
        if !diagnostics.contains(diagnostic) { diagnostics.append(diagnostic) }
    }

    public var isEmpty: Bool { diagnostics.isEmpty }
}
