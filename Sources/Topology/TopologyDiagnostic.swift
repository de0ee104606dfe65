import YAMLGuard

/// One problem in a topology file: the diagnostic every YAML reader of cxllab's reports.
public typealias TopologyDiagnostic = YAMLDiagnostic

/// Every problem found in a topology file, in file order; thrown by parsing and validation.
public struct TopologyError: Error, Sendable, Hashable, CustomStringConvertible {
    public var diagnostics: [TopologyDiagnostic]

    public init(_ diagnostics: [TopologyDiagnostic]) {
        self.diagnostics = YAMLDiagnostic.sorted(diagnostics)
    }

    public var description: String {
        diagnostics.map(\.description).joined(separator: "\n")
    }
}
