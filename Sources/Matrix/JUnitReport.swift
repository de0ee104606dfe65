import Foundation
import Scenarios
import XML

/// JUnit XML: one test suite per cell, one test case per case of its scenario (an order run,
/// a round, a test), so any CI system shows which one failed, with the evidence; a cell that
/// could not run is one case with an error, a not-applicable cell one skipped case with the
/// kernel's words.
public enum JUnitReport {
    public static func xml(_ results: [CellResult], name: String) throws -> String {
        let failures = results.flatMap(\.cases).filter(\.failed).count
        let cases = results.map { max(1, $0.cases.count) }.reduce(0, +)
        var root = XMLTree("testsuites")
        root.attributes = [.init("name", name), .init("tests", String(cases)), .init("failures", String(failures))]
        for result in results.sorted(by: { $0.cell.label < $1.cell.label }) {
            root.children.append(.element(suite(result)))
        }
        return try root.serialized(declaration: true)
    }

    static func suite(_ result: CellResult) -> XMLTree {
        var suite = XMLTree("testsuite")
        let cases = result.cases
        suite.attributes = [
            .init("name", result.cell.label), .init("id", result.cellID), .init("tests", String(max(1, cases.count))),
            .init("failures", String(cases.filter(\.failed).count)), .init("time", String(format: "%.1f", result.seconds)),
        ]
        var properties = XMLTree("properties")
        let facts = [("kernel", result.cell.pinned.release), ("repro", result.cell.command)] + result.scenario.facts.map { ($0.name, $0.value) }
        properties.children = facts.map { key, value in
            var property = XMLTree("property")
            property.attributes = [.init("name", key), .init("value", VisibleText.of(value))]
            return .element(property)
        }
        suite.children.append(.element(properties))
        if cases.isEmpty {
            var testcase = XMLTree("testcase")
            testcase.attributes = [.init("classname", result.cell.label), .init("name", "cell"), .init("time", String(format: "%.1f", result.seconds))]
            if result.verdict == .notApplicable {
                var skipped = XMLTree("skipped")
                skipped.attributes = [.init("message", VisibleText.of(result.scenario.notApplicable.joined(separator: "; ")))]
                testcase.children.append(.element(skipped))
            } else {
                var error = XMLTree("error")
                error.attributes = [.init("message", VisibleText.of(result.scenario.error ?? "the cell did not run"))]
                error.children = [.text("repro: \(result.cell.command)")]
                testcase.children.append(.element(error))
            }
            suite.children.append(.element(testcase))
        }
        for (index, run) in cases.enumerated() {
            var testcase = XMLTree("testcase")
            let round = result.scenario.rounds > 1 ? " (run \(index + 1))" : ""
            testcase.attributes = [.init("classname", result.cell.label), .init("name", "order \(run.name)\(round)"),
                                   .init("time", String(format: "%.1f", run.seconds))]
            if run.failed {
                var failure = XMLTree("failure")
                failure.attributes = [.init("message", VisibleText.of(run.message ?? "failed"))]
                failure.children = [.text(VisibleText.of((run.evidence + ["repro: \(result.cell.command)"]).joined(separator: "\n")))]
                testcase.children.append(.element(failure))
            }
            suite.children.append(.element(testcase))
        }
        return suite
    }
}
