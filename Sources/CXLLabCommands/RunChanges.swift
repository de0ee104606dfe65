/// `cxllab diff`'s result as data: each line RunDiff wrote, with the kind it starts with.
struct RunChanges: Encodable {
    struct Change: Encodable {
        /// NEW FAILURE, FIXED, RATE, KERNEL, ONLY IN A, ...: the line's capitalised head.
        let kind: String
        let line: String
    }

    let before: String
    let after: String
    let changes: [Change]
    /// Cells that fail now and did not: what makes `diff` exit 1.
    let newFailures: Int

    init(before: String, after: String, lines: [String]) {
        self.before = before
        self.after = after
        changes = lines.map { Change(kind: Self.kind(of: $0), line: $0) }
        newFailures = lines.filter { $0.hasPrefix("NEW FAILURE") }.count
    }

    /// The words in capitals a diff line starts with ("NEW FAILURE  debian:... " -> "NEW FAILURE").
    static func kind(of line: String) -> String {
        var words: [Substring] = []
        for word in line.split(separator: " ", omittingEmptySubsequences: true) {
            guard word.allSatisfy({ $0.isUppercase || $0 == "-" }) else { break }
            words.append(word)
        }
        return words.joined(separator: " ")
    }
}
