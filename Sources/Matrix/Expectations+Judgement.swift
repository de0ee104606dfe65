import Foundation
import Scenarios

/// How a finished cell differs from what its matrix file expects of it.
public enum Deviation: Sendable, Hashable, CustomStringConvertible {
    /// It failed where nothing said it would.
    case unexpectedFailure
    /// It passed where a rule says it fails: a bug fixed, or a check that no longer bites.
    case unexpectedPass
    /// Another verdict than expected (not applicable where it should run, or the reverse).
    case unexpectedVerdict(expected: Verdict, actual: Verdict)
    /// It failed as expected, but in other cases (orders) than expected.
    case changedFailingCases(expected: [String], actual: [String])
    /// Its failure rate lies outside the expected band.
    case rateOutsideBand(rate: Double, band: ClosedRange<Double>)

    public var description: String {
        switch self {
        case .unexpectedFailure: "UNEXPECTED FAILURE"
        case .unexpectedPass: "UNEXPECTED PASS"
        case .unexpectedVerdict(let expected, let actual): "UNEXPECTED VERDICT \(actual.rawValue), expected \(expected.rawValue)"
        case .changedFailingCases(let expected, let actual):
            "FAILING ORDERS CHANGED: now \(actual.isEmpty ? "none" : actual.joined(separator: "; ")), expected \(expected.isEmpty ? "none" : expected.joined(separator: "; "))"
        case .rateOutsideBand(let rate, let band):
            String(format: "RATE OUTSIDE BAND: %.0f%%, expected %.0f%%–%.0f%%", rate * 100, band.lowerBound * 100, band.upperBound * 100)
        }
    }
}

/// One cell held against its expectation.
public struct Judgement: Sendable {
    public let result: CellResult
    /// The cell rule that held for it (nil: none matched, so it was expected to pass; without
    /// any rule in the matrix, not to fail).
    public let rule: ExpectationRule?
    public let orderRules: [ExpectationRule]
    public let deviations: [Deviation]

    public var couldNotRun: Bool { result.verdict == .error }
    public var asExpected: Bool { deviations.isEmpty && !couldNotRun }
    /// Failed, and said to.
    public var expectedFailure: Bool { asExpected && result.verdict == .fail }

    /// The line for people and logs, naming the cell and the rule.
    public var message: String {
        if couldNotRun { return "COULD NOT RUN \(result.cell.label): \(result.scenario.error ?? "no reason given")" }
        let because = rule.map { ": \($0.summary)" } ?? (orderRules.isEmpty ? ": no expect rule matches it, so it must pass" : "")
        if asExpected {
            return (expectedFailure ? "expected failure " : "as expected ") + result.cell.label + because
        }
        return deviations.map(\.description).joined(separator: "; ") + " \(result.cell.label)" + because
    }
}

/// A matrix's rules, checked against its cells and then against what they did.
public struct Expectations: Sendable {
    public let rules: [ExpectationRule]

    public init(_ rules: [ExpectationRule]) { self.rules = rules }

    /// The rule that holds for a cell: the most specific of those that match it.
    func cellRules(for cell: MatrixCell) -> [ExpectationRule] {
        let matching = rules.filter { $0.order == nil && $0.matches(cell) }
        let top = matching.map(\.specificity).max()
        return matching.filter { $0.specificity == top }
    }

    func orderRules(for cell: MatrixCell) -> [ExpectationRule] {
        rules.filter { $0.order != nil && $0.matches(cell) }
    }

    /// Every rule must match a cell of the matrix, and no two equally specific rules may say
    /// different things of one cell or order.
    public func validate(against cells: [MatrixCell]) throws {
        var problems: [String] = []
        for rule in rules where !cells.contains(where: rule.matches) {
            problems.append("\(rule.place): this rule matches no cell of the matrix: check its kernel, topology, scenario and variant "
                + "against `cxllab matrix --filter`'s labels")
        }
        for rule in rules {
            guard let order = rule.order else { continue }
            let drivers = Set(order.components(separatedBy: " < "))
            if !cells.contains(where: { rule.matches($0) && $0.settings.orderedDrivers.map(Set.init) == drivers }) {
                problems.append("\(rule.place): order '\(order)' is not an order of the drivers of any cell it matches (write it as `a < b < c`)")
            }
        }
        var reported: Set<String> = []
        for cell in cells {
            let top = cellRules(for: cell)
            for (index, a) in top.enumerated() {
                for b in top.dropFirst(index + 1) where !Self.agree(a, b) && reported.insert(a.place + b.place).inserted {
                    problems.append("\(b.place): contradicts the rule at \(a.place) for \(cell.label): equally specific rules must agree "
                        + "(name more fields in the one meant as the exception)")
                }
            }
            let orders = Dictionary(grouping: orderRules(for: cell), by: { $0.order! })
            for (order, list) in orders {
                for b in list.dropFirst() where b.verdict != list[0].verdict && reported.insert(list[0].place + b.place).inserted {
                    problems.append("\(b.place): contradicts the rule at \(list[0].place) about order \(order) of \(cell.label)")
                }
            }
        }
        if !problems.isEmpty { throw ExpectationError(problems: problems) }
    }

    static func agree(_ a: ExpectationRule, _ b: ExpectationRule) -> Bool {
        a.verdict == b.verdict && a.failing == b.failing && a.failingWhen?.first == b.failingWhen?.first
            && a.failingWhen?.second == b.failingWhen?.second && a.rate == b.rate
    }

    public func judge(_ result: CellResult) -> Judgement {
        let rule = cellRules(for: result.cell).first
        let orders = orderRules(for: result.cell)
        guard result.verdict != .error else { return Judgement(result: result, rule: rule, orderRules: orders, deviations: []) }
        let caseNames = Array(Set(result.cases.map(\.name))).sorted()
        let failed = Array(Set(result.scenario.failedCases.map(\.name))).sorted()
        // The failing cases a rule names, if it names any.
        var expectedFailing: [String]?
        if let list = rule?.failing {
            expectedFailing = list.sorted()
        } else if let when = rule?.failingWhen {
            expectedFailing = caseNames.filter { name in
                let order = name.components(separatedBy: " < ")
                guard let first = order.firstIndex(of: when.first), let second = order.firstIndex(of: when.second) else { return false }
                return first < second
            }
        } else if !orders.isEmpty {
            expectedFailing = orders.filter { $0.verdict == .fail && caseNames.contains($0.order!) }.map { $0.order! }.sorted()
        }
        let expected: Verdict? = rule?.verdict ?? (expectedFailing.map { $0.isEmpty ? .pass : .fail })
        var deviations: [Deviation] = []
        switch (expected, result.verdict) {
        case (nil, .fail), (.pass?, .fail), (.notApplicable?, .fail):
            deviations.append(.unexpectedFailure)
        case (.fail?, .pass):
            deviations.append(.unexpectedPass)
        case (nil, .notApplicable) where !rules.isEmpty:
            // A matrix that states what it expects says where a kernel cannot run a cell: a
            // cell that stops running (CXL regions refused again, say) must not pass quietly.
            deviations.append(.unexpectedVerdict(expected: .pass, actual: .notApplicable))
        case (.fail?, .fail):
            if let expectedFailing, expectedFailing != failed {
                deviations.append(.changedFailingCases(expected: expectedFailing, actual: failed))
            }
        case (let want?, let got) where want != got:
            deviations.append(.unexpectedVerdict(expected: want, actual: got))
        default:
            break
        }
        if let band = rule?.rate, result.verdict != .notApplicable, !band.contains(result.scenario.failureRate.rate) {
            deviations.append(.rateOutsideBand(rate: result.scenario.failureRate.rate, band: band))
        }
        return Judgement(result: result, rule: rule, orderRules: orders, deviations: deviations)
    }

    public func judge(_ results: [CellResult]) -> [Judgement] {
        results.sorted { $0.cell.label < $1.cell.label }.map(judge)
    }

    /// 2 when a cell could not run (or is missing), else 1 on any deviation, else 0.
    public static func exitStatus(_ judgements: [Judgement], expectedCells: Int) -> Int32 {
        if judgements.contains(where: \.couldNotRun) || judgements.count < expectedCells { return 2 }
        return judgements.allSatisfy(\.asExpected) ? 0 : 1
    }
}
