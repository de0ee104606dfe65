import Foundation
import Scenarios
import XML

/// JUnit XML: one test suite per cell, one test case per case of its scenario (an order run,
/// a round, a test), so any CI system shows which one failed, with the evidence; a cell that
/// could not run is one case with an error, a not-applicable cell one skipped case with the
/// kernel's words. Against the matrix's expectations: a known failure is a skipped case that
/// says which rule expects it, and a deviation is a failed case named "expectation".
public enum JUnitReport {
    public static func xml(_ results: [CellResult], name: String, expectations: Expectations = Expectations([])) throws -> String {
        let suites = expectations.judge(results).map(suite)
        var root = XMLTree("testsuites")
        root.attributes = [.init("name", name), .init("tests", String(suites.map(\.tests).reduce(0, +))),
                           .init("failures", String(suites.map(\.failures).reduce(0, +)))]
        root.children = suites.map { .element($0.tree) }
        return try root.carryingAnyText().serialized(declaration: true)
    }

    static func suite(_ judgement: Judgement) -> (tree: XMLTree, tests: Int, failures: Int) {
        let result = judgement.result
        var suite = XMLTree("testsuite")
        let cases = result.cases
        let counted = judgement.expectedFailure ? 0 : cases.filter(\.failed).count
        let extra = judgement.asExpected || judgement.couldNotRun ? 0 : 1
        let tests = max(1, cases.count) + extra
        suite.attributes = [
            .init("name", result.cell.label), .init("id", result.cellID), .init("tests", String(tests)),
            .init("failures", String(counted + extra)), .init("time", String(format: "%.1f", result.seconds)),
        ]
        var properties = XMLTree("properties")
        let report = result.scenario.detail.report
        let facts = [("kernel", result.cell.pinned.release), ("repro", result.cell.command)]
            + (result.outcome.labStart.map { [("labStart", $0.description)] } ?? [])
            + (result.scenario.facts + (report?.properties ?? [])).map { ($0.name, $0.value) }
        properties.children = facts.map { key, value in
            var property = XMLTree("property")
            property.attributes = [.init("name", key), .init("value", value)]
            return .element(property)
        }
        suite.children.append(.element(properties))
        if cases.isEmpty {
            var testcase = XMLTree("testcase")
            testcase.attributes = [.init("classname", result.cell.label), .init("name", "cell"), .init("time", String(format: "%.1f", result.seconds))]
            if result.verdict == .notApplicable {
                var skipped = XMLTree("skipped")
                skipped.attributes = [.init("message", result.scenario.notApplicable.joined(separator: "; "))]
                testcase.children.append(.element(skipped))
            } else {
                var error = XMLTree("error")
                error.attributes = [.init("message", result.scenario.error ?? "the cell did not run")]
                    + (result.scenario.failure.map { [.init("type", $0.kind)] } ?? [])
                error.children = [.text("repro: \(result.cell.command)")]
                testcase.children.append(.element(error))
            }
            suite.children.append(.element(testcase))
        }
        for (index, run) in cases.enumerated() {
            var testcase = XMLTree("testcase")
            let round = result.scenario.rounds > 1 ? " (run \(index + 1))" : ""
            let name = report?.caseTitle(run.name) ?? run.name
            testcase.attributes = [.init("classname", result.cell.label), .init("name", "\(name)\(round)"),
                                   .init("time", String(format: "%.1f", run.seconds))]
            if run.verdict == .notApplicable {
                // A suite's skipped test (exit 77), or one not run, and why.
                var skipped = XMLTree("skipped")
                skipped.attributes = [.init("message", run.message ?? "skipped")]
                testcase.children.append(.element(skipped))
            } else if run.failed, judgement.expectedFailure {
                var skipped = XMLTree("skipped")
                skipped.attributes = [.init("message", "expected failure: " + (judgement.rule?.summary ?? "an order rule expects it"))]
                testcase.children.append(.element(skipped))
            } else if run.failed {
                var failure = XMLTree("failure")
                failure.attributes = [.init("message", run.message ?? "failed")]
                failure.children = [.text((run.evidence + ["repro: \(result.cell.command)"]).joined(separator: "\n"))]
                testcase.children.append(.element(failure))
            }
            suite.children.append(.element(testcase))
        }
        if extra == 1 {
            var testcase = XMLTree("testcase")
            testcase.attributes = [.init("classname", result.cell.label), .init("name", "expectation"), .init("time", "0")]
            var failure = XMLTree("failure")
            failure.attributes = [.init("message", judgement.message)]
            failure.children = [.text("repro: \(result.cell.command)")]
            testcase.children.append(.element(failure))
            suite.children.append(.element(testcase))
        }
        let summary = result.scenario.detail.summaryLines
        if !summary.isEmpty {
            var output = XMLTree("system-out")
            output.children = [.text(summary.joined(separator: "\n"))]
            suite.children.append(.element(output))
        }
        return (suite, tests, counted + extra)
    }
}
