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
        let empty = (message: "the file holds no topology", fix: "start from one of the files in topologies/, e.g. topologies/nvdimm-single.yaml")
        if let root = YAMLReading.root(of: yaml, sink: sink, empty: empty) {
            draft = Draft.read(root, file: file, sink: sink)
        }
        return TopologyDocument(file: file, draft: draft, readingDiagnostics: sink.diagnostics)
    }
}
