import Foundation
import Matrix

/// `--filter` that keeps no cell: an error, not an empty run that passes. It names the filter
/// and the words the matrix's cells could be matched by.
struct MatrixFilterMiss: Error, CustomStringConvertible {
    let filter: String
    let cells: [MatrixCell]

    /// Each axis of the cells' labels, with the values the matrix has on it.
    var axes: [(name: String, values: [String])] {
        func distinct(_ values: [String]) -> [String] {
            var seen = Set<String>()
            return values.filter { seen.insert($0).inserted }
        }
        return [("kernels", distinct(cells.map(\.kernel))),
                ("topologies", distinct(cells.map { ($0.topology as NSString).lastPathComponent })),
                ("scenarios", distinct(cells.map(\.scenario))),
                ("variants", distinct(cells.map(\.variant)))]
    }

    var description: String {
        guard !cells.isEmpty else { return "--filter '\(filter)' has no cell to match: the matrix has none" }
        let words = filter.split(separator: " ").map { "'\($0)'" }.joined(separator: ", ")
        let axes = axes.map { "  \($0.name): \($0.values.joined(separator: ", "))" }.joined(separator: "\n")
        return """
            --filter '\(filter)' matches none of the matrix's \(cells.count) cells: a cell is kept when its label \
            contains every word (\(words)) or its id starts with one. Its labels are made of:
            \(axes)
            e.g. --filter '\(cells[0].label)'
            """
    }
}
