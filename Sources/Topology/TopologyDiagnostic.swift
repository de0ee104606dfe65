/// One problem in a topology file: where it is, what is wrong, and how to fix it.
public struct TopologyDiagnostic: Sendable, Hashable, CustomStringConvertible {
    public var file: String
    /// 1-based, as editors count.
    public var line: Int
    /// 1-based, in Unicode scalars, as libyaml counts.
    public var column: Int
    public var message: String
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
}

/// Every problem found in a topology file, in file order; thrown by parsing and validation.
public struct TopologyError: Error, Sendable, Hashable, CustomStringConvertible {
    public var diagnostics: [TopologyDiagnostic]

    public init(_ diagnostics: [TopologyDiagnostic]) {
        self.diagnostics = diagnostics.sorted { ($0.file, $0.line, $0.column) < ($1.file, $1.line, $1.column) }
    }

    public var description: String {
        diagnostics.map(\.description).joined(separator: "\n")
    }
}

/// A place in a topology file.
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
final class DiagnosticSink {
    let file: String
    private(set) var diagnostics: [TopologyDiagnostic] = []

    init(file: String) { self.file = file }

    func error(_ location: SourcePosition, _ message: String, fix: String) {
        let diagnostic = TopologyDiagnostic(file: file, line: location.line, column: location.column, message: message, fix: fix)
        if !diagnostics.contains(diagnostic) { diagnostics.append(diagnostic) }
    }

    var isEmpty: Bool { diagnostics.isEmpty }
}
