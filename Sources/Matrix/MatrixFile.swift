import Foundation
import Scenarios
import YAMLGuard

/// A matrix file or a stored run that cannot be used: a code to branch on, the place and the
/// fix in words, and the error underneath.
public struct MatrixError: Error, Sendable, CustomStringConvertible {
    public struct Code: RawRepresentable, Hashable, Sendable {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        /// The matrix file cannot be read or says something cxllab cannot run.
        public static let invalidFile = Code(rawValue: "invalid-file")
        /// No such run or cell in the store, or an id that cannot be one.
        public static let notFound = Code(rawValue: "not-found")
    }

    public let code: Code
    public let message: String
    public let cause: (any Error)?
    /// Every problem of a matrix file, each at its place, in file order (empty for a store's).
    public let diagnostics: [YAMLDiagnostic]

    public init(_ message: String, code: Code = .invalidFile, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
        diagnostics = []
    }

    /// A matrix file's problems, one line each: `FILE:LINE:COL: problem; fix: how`.
    public init(_ diagnostics: [YAMLDiagnostic]) {
        self.diagnostics = YAMLDiagnostic.sorted(diagnostics)
        code = .invalidFile
        message = self.diagnostics.map(\.oneLine).joined(separator: "\n")
        cause = nil
    }

    public var description: String { message }
}

/// A matrix: kernels x topologies x scenarios, from a YAML file under matrices/ (the keys and
/// their rules: docs/MATRICES.md).
public struct MatrixFile: Sendable {
    /// A `scenarios:` entry: a registered scenario's name and its own entry, as written.
    public struct Scenario: Sendable {
        public var name: String
        public var entry: any ScenarioEntry
        public var plugin: any ScenarioPlugin.Type
    }

    /// A rule: a cell matches when every field given matches (`*` in a field matches anything).
    public struct Rule: Sendable, Codable, Hashable {
        public var kernel: String?
        public var topology: String?
        public var scenario: String?

        static let keys = ["kernel", "topology", "scenario"]
    }

    public var name: String
    public var description: String?
    public var kernels: [String]
    public var topologies: [String]
    public var scenarios: [Scenario]
    public var include: [Rule]?
    public var exclude: [Rule]?
    /// What the cells are expected to do (the `expect` section), read with each rule's place.
    public var expect: [ExpectationRule] = []

    /// The keys a matrix file takes at its top, in the order docs/MATRICES.md gives them.
    public static let keys = ["name", "description", "kernels", "topologies", "scenarios", "include", "exclude", "expect"]

    /// Reads and checks the matrix file at `path`: every problem at once, each at its place.
    public static func load(path: String) throws(MatrixError) -> MatrixFile {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), !isFolder.boolValue else {
            throw MatrixError("\(path): no such matrix file; fix: give the path of a matrix file, e.g. matrices/default.yaml")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw MatrixError("\(path): the file cannot be read (permissions?); fix: make it readable by this user")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw MatrixError("\(path): the file is not UTF-8 text; fix: save it as UTF-8 text in YAML")
        }
        return try parse(yaml: text, file: path)
    }

    /// Reads and checks a matrix file's text; `file` names it in diagnostics (no I/O).
    public static func parse(yaml: String, file: String) throws(MatrixError) -> MatrixFile {
        let sink = DiagnosticSink(file: file)
        let empty = (message: "the file holds no matrix", fix: "start from matrices/default.yaml (docs/MATRICES.md lists every key)")
        guard let root = YAMLReading.root(of: yaml, sink: sink, empty: empty) else { throw MatrixError(sink.diagnostics) }
        let matrix = MatrixReader(sink: sink).read(root)
        guard sink.isEmpty, let matrix else { throw MatrixError(sink.diagnostics) }
        return matrix
    }
}

public enum MatrixExpansion {
    /// The matrix's cells on the kernels pinned for this run (by the matrix's kernel names),
    /// with stand-in variants chosen by what each kernel can have.
    public static func cells(_ matrix: MatrixFile, kernels: [String: MatrixPlan.PlannedKernel], standInSource: String) -> [MatrixCell] {
        var cells: [MatrixCell] = []
        for kernel in matrix.kernels {
            guard let underTest = kernels[kernel] else { continue }
            for topology in matrix.topologies {
                for scenario in matrix.scenarios {
                    for (variant, settings) in scenario.plugin.cells(of: scenario.entry, fsdev: underTest.fsdev, standInSource: standInSource) {
                        cells.append(MatrixCell(kernel: kernel, pinned: underTest.pinned, topology: topology, variant: variant, settings: settings,
                                                scenario: scenario.name))
                    }
                }
            }
        }
        return cells.filter { cell in
            let included = matrix.include.map { rules in rules.contains { matches($0, cell) } } ?? true
            let excluded = (matrix.exclude ?? []).contains { matches($0, cell) }
            return included && !excluded
        }
    }

    static func matches(_ rule: MatrixFile.Rule, _ cell: MatrixCell) -> Bool {
        func field(_ pattern: String?, _ value: String) -> Bool {
            guard let pattern, pattern != "*" else { return true }
            return value == pattern || (value as NSString).lastPathComponent == pattern || value.hasSuffix("/" + pattern)
        }
        return field(rule.kernel, cell.kernel) && field(rule.topology, cell.topology) && field(rule.scenario, cell.scenario)
    }

    /// Shard `index` of `count` (1-based): cells sorted by key, every count-th one. Together the
    /// shards hold every cell exactly once, whatever host computes them (by the key, which
    /// leaves out the pinned kernel, even if two hosts pinned an alias a day apart).
    public static func shard(_ cells: [MatrixCell], index: Int, count: Int) -> [MatrixCell] {
        cells.sorted { $0.key < $1.key }.enumerated().filter { $0.offset % count == index - 1 }.map(\.element)
    }

    /// Keeps cells whose label contains every word of the filter.
    public static func filter(_ cells: [MatrixCell], _ expression: String) -> [MatrixCell] {
        let words = expression.split(separator: " ").map(String.init)
        return cells.filter { cell in words.allSatisfy { cell.label.contains($0) || cell.id.hasPrefix($0) } }
    }
}
