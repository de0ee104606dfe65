/// YAML texts that once made a reader take seconds or more: each reader's tests feed them in
/// and expect a refusal, with its place, well within a second or so.
public enum HostileYAML {
    /// A "billion laughs" in a few hundred bytes: lines `l0:` ... `lN:`, each anchoring a
    /// mapping whose keys are aliases of the level before, so composing hashes structures
    /// that grow about fivefold with each line (11 lines, 485 bytes, took Yams 17 s). Every
    /// anchor stands after a quote on its line (`it's`): a scan of the text that stops at a
    /// quote misses them all. The first anchor, `&a0`, is at column 12 of the first line.
    public static func laughs(levels: Int = 11) -> String {
        var lines = ["l0: [it's, &a0 [x, x]]"]
        for level in 1..<levels {
            let alias = "*a\(level - 1)"
            lines.append("l\(level): [it's, &a\(level) {\(alias): [\(alias), \(alias)], [\(alias)]: \(alias)}]")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The column of `&a0` in `laughs`.
    public static let firstAnchorColumn = 12

    /// `depth` opening brackets and nothing else: a composer that recurses per level, or a
    /// parser with no bound, would run out of stack.
    public static func deepNesting(_ depth: Int = 100_000) -> String {
        String(repeating: "[", count: depth) + "\n"
    }

    /// Comment lines past `bytes`: harmless text, only too much of it.
    public static func oversized(bytes: Int = 2 << 20) -> String {
        let line = "# " + String(repeating: "x", count: 77) + "\n"
        return String(repeating: line, count: bytes / line.utf8.count + 1)
    }
}
