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

extension MatrixFile {
    /// A scenario entry refused while the file is read, with where in it.
    struct EntryRefusal: Error {
        let message: String
        let codingPath: [any CodingKey]
    }

    /// The line of the index-th entry of `scenarios:` ("?" when the text does not say).
    static func line(ofScenario index: Int, yaml: String) -> String {
        guard let entries = (try? Yams.compose(yaml: yaml))?.mapping?["scenarios"]?.sequence, index < entries.count,
              let line = entries[index].mark?.line else { return "?" }
        return String(line)
    }

    /// The line of the scenario entry a coding path points into.
    static func line(of codingPath: [any CodingKey], yaml: String) -> String {
        guard let at = codingPath.firstIndex(where: { $0.stringValue == "scenarios" }), at + 1 < codingPath.count,
              let index = codingPath[at + 1].intValue else { return "?" }
        return line(ofScenario: index, yaml: yaml)
    }
}
