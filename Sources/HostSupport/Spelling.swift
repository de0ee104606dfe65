// "Did you mean": the nearest known name to a misspelt one.

import Foundation

/// Nearest names, for "did you mean": one helper for every reader (topology and matrix files,
/// kernel names), so a misspelling is answered the same way everywhere.
public enum Spelling {
    public static func nearest(to word: String, in candidates: [String]) -> String? {
        // `-` and `_` count as one letter: `stand-in` is `stand_in`, `trixie_backports` is
        // `trixie-backports`, whichever a name uses.
        func folded(_ text: String) -> String { text.lowercased().replacingOccurrences(of: "-", with: "_") }
        let lower = folded(word)
        let scored = candidates.map { ($0, distance(lower, folded($0))) }.sorted { ($0.1, $0.0) < ($1.1, $1.0) }
        guard let best = scored.first else { return nil }
        let limit = max(2, best.0.count / 3)
        if best.1 <= limit { return best.0 }
        // `bus` for `bus_nr`, `label` for `label_size`: a prefix is a good guess too.
        return candidates.first { folded($0).hasPrefix(lower) || (lower.count >= 3 && lower.hasPrefix(folded($0))) }
    }

    /// Levenshtein distance.
    public static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
