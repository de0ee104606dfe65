import Foundation
import HostSupport
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

    /// The `expect` section of a matrix file's text, read with the place of every rule and key.
    public static func rules(yaml text: String, file: String) throws -> [ExpectationRule] {
        let sink = DiagnosticSink(file: file)
        // Through the guard, as for every YAML file cxllab reads: this entry point is safe on its own.
        let empty = (message: "the file holds no matrix", fix: "start from matrices/default.yaml")
        guard let root = YAMLReading.root(of: text, sink: sink, empty: empty) else {
            throw ExpectationError(problems: sink.diagnostics.map(\.oneLine))
        }
        let rules = root.mapping?["expect"].map { Self.rules(from: $0, sink: sink) } ?? []
        if !sink.isEmpty { throw ExpectationError(problems: YAMLDiagnostic.sorted(sink.diagnostics).map(\.oneLine)) }
        return rules
    }

    /// The rules of an `expect` node; each problem goes to `sink` at its place, and a rule with
    /// one is left out.
    static func rules(from expect: Node, sink: DiagnosticSink) -> [ExpectationRule] {
        func place(_ node: Node) -> String { "\(sink.file):\(node.location)" }
        guard let sequence = expect.sequence else {
            sink.error(expect.location, "expect should be a list of rules, but is \(expect.kindDescription)", fix: "write each rule as a mapping: `- verdict: fail ...`")
            return []
        }
        var rules: [ExpectationRule] = []
        for node in sequence {
            guard let mapping = node.mapping else {
                sink.error(node.location, "a rule should be a mapping, but is \(node.kindDescription)", fix: "give at least `verdict:` and `reason:`")
                continue
            }
            var strings: [String: String] = [:]
            var usable = true
            for (key, value) in mapping {
                guard let name = key.string, keys.contains(name) else {
                    let guess = key.string.flatMap { Spelling.nearest(to: $0, in: keys) }.map { "did you mean `\($0)`? " } ?? ""
                    sink.error(key.location, "unknown key `\(key.string ?? "?")` in an expect rule", fix: "\(guess)a rule takes \(keys.joined(separator: ", "))")
                    usable = false
                    continue
                }
                if let scalar = value.string { strings[name] = scalar }
                else if !["failing", "rate"].contains(name) {
                    sink.error(value.location, "`\(name)` in an expect rule should be text, but is \(value.kindDescription)", fix: "write `\(name): <text>` on one line")
                    usable = false
                }
            }
            guard let verdictText = strings["verdict"] else {
                sink.error(node.location, "the rule has no verdict", fix: "add `verdict: pass`, `fail` or `n/a`")
                continue
            }
            guard let verdict = Verdict(rawValue: verdictText), verdict != .error else {
                let guess = Spelling.nearest(to: verdictText, in: ["pass", "fail", "n/a"]).map { "did you mean `\($0)`? " } ?? ""
                sink.error(mapping["verdict"]!.location, "verdict '\(verdictText)' is not one of pass, fail, n/a", fix: "\(guess)write `verdict: pass`, `fail` or `n/a`")
                continue
            }
            guard let reason = strings["reason"], !reason.isEmpty else {
                sink.error(node.location, "the rule has no reason", fix: "say why this outcome is expected: `reason: ...`")
                continue
            }
            var rule = ExpectationRule(kernel: strings["kernel"], topology: strings["topology"], scenario: strings["scenario"],
                                       variant: strings["variant"], order: strings["order"], verdict: verdict, reason: reason,
                                       reference: strings["reference"], place: place(node))
            if let failing = mapping["failing"] {
                if let list = failing.sequence?.compactMap(\.string), list.count == failing.sequence?.count {
                    rule.failing = list
                } else {
                    sink.error(failing.location, "failing should be a list of orders", fix: "write each order like `fsdev_dax < device_dax < kmem`")
                    usable = false
                }
            }
            if let when = mapping["failing_when"] {
                let words = (when.string ?? "").split(separator: " ").map(String.init)
                if words.count == 3, words[1] == "before" {
                    rule.failingWhen = (words[0], words[2])
                } else {
                    sink.error(when.location, "failing_when should read `DRIVER before DRIVER`", fix: "write e.g. `failing_when: fsdev_dax before device_dax`")
                    usable = false
                }
            }
            if let rate = mapping["rate"] {
                let bounds = rate.sequence?.compactMap { $0.string.flatMap(Double.init) } ?? []
                if bounds.count == 2, bounds[0] >= 0, bounds[0] <= bounds[1], bounds[1] <= 1 {
                    rule.rate = bounds[0]...bounds[1]
                } else {
                    sink.error(rate.location, "rate should be a band of two fractions, low then high", fix: "write e.g. `rate: [0.05, 0.6]`")
                    usable = false
                }
            }
            if verdict != .fail, rule.failing != nil || rule.failingWhen != nil {
                sink.error(node.location, "failing and failing_when go with `verdict: fail`", fix: "make the verdict fail, or remove them")
                usable = false
            }
            if rule.order != nil, rule.failing != nil || rule.failingWhen != nil || rule.rate != nil {
                sink.error(node.location, "a rule about one order states only its verdict", fix: "remove failing, failing_when and rate, or the order")
                usable = false
            }
            if usable { rules.append(rule) }
        }
        return rules
    }
}
