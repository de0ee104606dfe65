import Yams
import YAMLGuard

extension MatrixFile {
    /// Entries given twice in one list (`kernels: [k, k]`, two identical scenarios), each
    /// reported at its second mention: such cells would share a lab name and overwrite each
    /// other's results, so a matrix file that has them is refused at load.
    static func reportDuplicates(in root: Node.Mapping, to sink: DiagnosticSink) {
        for key in ["kernels", "topologies", "scenarios"] {
            guard let entries = root[key]?.sequence else { continue }
            var seen: [Node: Int] = [:]
            for entry in entries {
                let line = entry.location.line
                if let first = seen[entry] {
                    let what = entry.scalar.map { "'\($0.string)'" } ?? "the same entry"
                    sink.error(entry.location, "\(key) lists \(what) twice (first at line \(first))",
                               fix: "remove one: each cell would run twice under one lab name")
                } else {
                    seen[entry] = line
                }
            }
        }
    }
}
