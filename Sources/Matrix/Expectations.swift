import Foundation
import Scenarios
import Yams
import YAMLGuard

/// What a matrix file says its cells should do: known outcomes as data, so a run fails on a
/// change (a new failure, a bug fixed but not marked so, a rate outside its band), not on
/// the bugs everyone knows.
///
/// ```yaml
/// expect:
///   - variant: stand-in automatch=1
///     verdict: fail
///     failing_when: fsdev_dax before device_dax
///     reason: fsdev V9 binds on its own when it registers before device_dax
///     reference: https://lore.kernel.org/...
/// ```
public struct ExpectationRule: Sendable, Hashable {
    /// Which cells it is about; a field not given matches any cell, `*` too.
    public var kernel: String?
    public var topology: String?
    public var scenario: String?
    public var variant: String?
    /// One case of the cell (an order, `device_dax < kmem < fsdev_dax`), not the whole cell.
    public var order: String?
    public var verdict: Verdict
    /// Exactly these cases fail (with `verdict: fail`).
    public var failing: [String]?
    /// The cases fail where the first driver comes before the second (`A before B`).
    public var failingWhen: (first: String, second: String)?
    /// The cell's failure rate lies within this band (repeats, races).
    public var rate: ClosedRange<Double>?
    public var reason: String
    public var reference: String?
    /// Where the rule stands in its file: `file:line:column`.
    public var place: String

    public static func == (a: ExpectationRule, b: ExpectationRule) -> Bool { a.place == b.place }
    public func hash(into hasher: inout Hasher) { hasher.combine(place) }

    /// How many cell fields it names: the more, the more specific, and the more specific
    /// rule of two that match a cell is the one that holds.
    var specificity: Int { [kernel, topology, scenario, variant].compactMap { $0 }.filter { $0 != "*" }.count }

    func matches(_ cell: MatrixCell) -> Bool {
        Self.field(kernel, cell.kernel) && Self.field(topology, cell.topology) && Self.field(scenario, cell.scenario)
            && Self.field(variant, cell.variant)
    }

    static func field(_ pattern: String?, _ value: String) -> Bool {
        guard let pattern, pattern != "*" else { return true }
        return value == pattern || (value as NSString).lastPathComponent == pattern || value.hasSuffix("/" + pattern)
    }

    /// For people: what it expects and why.
    public var summary: String {
        var text = "expected \(verdict.rawValue)"
        if let order { text = "\(order): " + text }
        if let failingWhen { text += " where \(failingWhen.first) comes before \(failingWhen.second)" }
        if let failing { text += " in \(failing.count) order(s)" }
        if let rate { text += String(format: " at a rate of %.0f%%–%.0f%%", rate.lowerBound * 100, rate.upperBound * 100) }
        return text + " (\(reason)\(reference.map { ", \($0)" } ?? ""); rule at \(place))"
    }
}

/// An `expect` section that cannot be used: every problem with its place and fix, at once.
public struct ExpectationError: Error, Sendable, CustomStringConvertible {
    public let problems: [String]
    public var description: String { "the matrix's expectations cannot be used:\n" + problems.map { "  " + $0 }.joined(separator: "\n") }
}

public enum ExpectationParser {
    static let keys = ["kernel", "topology", "scenario", "variant", "order", "verdict", "failing", "failing_when", "rate", "reason", "reference"]

    /// The `expect` section of a matrix file, read with the place of every rule and key.
    public static func rules(yaml text: String, file: String) throws -> [ExpectationRule] {
        // Before Yams composes it, as for every YAML file cxllab reads (MatrixFile.load checks
        // the same text first; this keeps the entry point safe on its own).
        do {
            try YAMLGuard.check(text)
        } catch {
            throw ExpectationError(problems: ["\(file):\(error.line):\(error.column): \(error.message); fix: \(error.fix)"])
        }
        guard let root = try Yams.compose(yaml: text), let expect = root.mapping?["expect"] else { return [] }
        var problems: [String] = []
        func place(_ node: Node) -> String {
            "\(file):\(max(node.mark?.line ?? 1, 1)):\(max(node.mark?.column ?? 1, 1))"
        }
        guard let sequence = expect.sequence else {
            throw ExpectationError(problems: ["\(place(expect)): expect is a list of rules, each a mapping (`- verdict: fail ...`)"])
        }
        var rules: [ExpectationRule] = []
        for node in sequence {
            guard let mapping = node.mapping else {
                problems.append("\(place(node)): a rule is a mapping with at least verdict and reason")
                continue
            }
            var strings: [String: String] = [:]
            for (key, value) in mapping {
                guard let name = key.string, keys.contains(name) else {
                    let suggestion = key.string.flatMap(closestKey).map { "; did you mean '\($0)'?" } ?? ""
                    problems.append("\(place(key)): unknown key '\(key.string ?? "?")' in an expect rule\(suggestion) (keys: \(keys.joined(separator: ", ")))")
                    continue
                }
                if let scalar = value.string { strings[name] = scalar }
            }
            let rulePlace = place(node)
            guard let verdictText = strings["verdict"] else {
                problems.append("\(rulePlace): the rule has no verdict: add `verdict: pass`, `fail` or `n/a`")
                continue
            }
            guard let verdict = Verdict(rawValue: verdictText), verdict != .error else {
                problems.append("\(place(mapping["verdict"]!)): verdict '\(verdictText)' is not one of pass, fail, n/a")
                continue
            }
            guard let reason = strings["reason"], !reason.isEmpty else {
                problems.append("\(rulePlace): the rule has no reason: say why this outcome is expected (`reason: ...`)")
                continue
            }
            var rule = ExpectationRule(kernel: strings["kernel"], topology: strings["topology"], scenario: strings["scenario"],
                                       variant: strings["variant"], order: strings["order"], verdict: verdict, reason: reason,
                                       reference: strings["reference"], place: rulePlace)
            if let failing = mapping["failing"] {
                guard let list = failing.sequence?.compactMap(\.string) else {
                    problems.append("\(place(failing)): failing is a list of orders, each like `fsdev_dax < device_dax < kmem`")
                    continue
                }
                rule.failing = list
            }
            if let when = mapping["failing_when"] {
                let words = (when.string ?? "").split(separator: " ").map(String.init)
                guard words.count == 3, words[1] == "before" else {
                    problems.append("\(place(when)): failing_when reads `DRIVER before DRIVER`, e.g. `fsdev_dax before device_dax`")
                    continue
                }
                rule.failingWhen = (words[0], words[2])
            }
            if let rate = mapping["rate"] {
                let bounds = rate.sequence?.compactMap { $0.string.flatMap(Double.init) } ?? []
                guard bounds.count == 2, bounds[0] >= 0, bounds[0] <= bounds[1], bounds[1] <= 1 else {
                    problems.append("\(place(rate)): rate is a band of two fractions, low then high, e.g. `rate: [0.05, 0.6]`")
                    continue
                }
                rule.rate = bounds[0]...bounds[1]
            }
            if verdict != .fail, rule.failing != nil || rule.failingWhen != nil {
                problems.append("\(rulePlace): failing and failing_when go with `verdict: fail`")
                continue
            }
            if rule.order != nil, rule.failing != nil || rule.failingWhen != nil || rule.rate != nil {
                problems.append("\(rulePlace): a rule about one order states only its verdict")
                continue
            }
            rules.append(rule)
        }
        if !problems.isEmpty { throw ExpectationError(problems: problems) }
        return rules
    }

    static func closestKey(_ word: String) -> String? {
        keys.min { distance($0, word) < distance($1, word) }.flatMap { distance($0, word) <= 3 ? $0 : nil }
    }

    /// Levenshtein distance, for "did you mean".
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        guard !a.isEmpty else { return b.count }
        var row = Array(0...b.count)
        for i in 1...a.count {
            var previous = row[0]
            row[0] = i
            for j in stride(from: 1, through: b.count, by: 1) {
                let current = row[j]
                row[j] = a[i - 1] == b[j - 1] ? previous : 1 + min(previous, row[j], row[j - 1])
                previous = current
            }
        }
        return row[b.count]
    }
}
