import Yams

extension MatrixFile {
    /// Entries given twice in one list (`kernels: [k, k]`, two identical scenarios), each
    /// with the place of its second mention: such cells would share a lab name and overwrite
    /// each other's results, so a matrix file that has them is refused at load.
    static func duplicateEntries(yaml: String, file: String) -> [String] {
        guard let root = try? Yams.compose(yaml: yaml)?.mapping else { return [] }
        var problems: [String] = []
        for key in ["kernels", "topologies", "scenarios"] {
            guard let entries = root[key]?.sequence else { continue }
            var seen: [Node: Int] = [:]
            for entry in entries {
                let line = entry.mark?.line ?? 0
                if let first = seen[entry] {
                    let what = entry.scalar.map { "'\($0.string)'" } ?? "the same entry"
                    problems.append("\(file):\(line):\(entry.mark?.column ?? 1): \(key) lists \(what) twice (first at line \(first)); "
                        + "each cell would run twice under one lab name: remove one")
                } else {
                    seen[entry] = line
                }
            }
        }
        return problems
    }
}
