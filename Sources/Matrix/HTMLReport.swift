import Foundation
import HostSupport
import Scenarios

/// A static HTML report of a matrix run: one heatmap per topology (kernels and variants down,
/// driver orders across, coloured by verdict or, with repeats, by failure rate), then every
/// failure with its evidence and the command that reproduces it. Failures the matrix file
/// expects are shown as known (hatched, "known"), apart from deviations, which are listed
/// first. No scripts, no network.
public enum HTMLReport {
    public static func html(_ results: [CellResult], title: String, expectations: Expectations = Expectations([])) -> String {
        let judgements = expectations.judge(results)
        let known = Set(judgements.filter(\.expectedFailure).map(\.result.cellID))
        var body = "<h1>\(escape(title))</h1>\n"
        body += "<p class=summary>\(escape(MatrixSummary.counts(results)))<br>Expectations: \(escape(MatrixSummary.expectationCounts(judgements)))</p>\n"
        let deviating = judgements.filter { !$0.asExpected }
        if !deviating.isEmpty {
            body += "<h2>Deviations</h2>\n<ul class=deviations>"
            for judgement in deviating { body += "<li><a href=\"#cell-\(escape(judgement.result.cellID))\">\(escape(judgement.message))</a></li>" }
            body += "</ul>\n"
        }
        let topologies = Dictionary(grouping: results) { $0.cell.topology }
        for topology in topologies.keys.sorted() {
            let cells = topologies[topology]!.sorted { $0.cell.label < $1.cell.label }
            let orders = Array(Set(cells.flatMap { $0.cases.map(\.name) })).sorted()
            body += "<h2>\(escape((topology as NSString).lastPathComponent))</h2>\n<table class=heatmap>\n<tr><th>kernel</th><th>variant</th>"
            for order in orders { body += "<th class=order>\(escape(order))</th>" }
            body += "</tr>\n"
            for result in cells {
                let start = result.outcome.labStart.map { "<br><small class=lab-start>lab \(escape($0.description))</small>" } ?? ""
                body += "<tr><td>\(escape(result.cell.kernel))<br><small>\(escape(result.cell.pinned.release))</small></td><td>\(escape(result.cell.variant))\(start)</td>"
                if result.cases.isEmpty {
                    let why = result.verdict == .notApplicable ? result.scenario.notApplicable.joined(separator: "; ") : (result.scenario.error ?? "")
                    body += "<td colspan=\(max(1, orders.count)) class=\"\(cssClass(result.verdict))\" title=\"\(escape(why))\">\(escape(result.verdict.rawValue.uppercased())): \(escape(String(why.prefix(140))))</td>"
                } else {
                    for order in orders {
                        let runs = result.cases.filter { $0.name == order }
                        if runs.isEmpty {
                            body += "<td class=absent>–</td>"
                            continue
                        }
                        let failed = runs.filter(\.failed).count
                        let rate = Double(failed) / Double(runs.count)
                        let isKnown = failed > 0 && known.contains(result.cellID)
                        let verdict = failed == 0 ? "pass" : isKnown ? "known" : "fail"
                        let text = runs.count > 1 ? String(format: "%.0f%%", rate * 100) : (failed == 0 ? "pass" : isKnown ? "known" : "FAIL")
                        let style = runs.count > 1 && failed > 0 ? " style=\"background: rgba(200, 40, 40, \(String(format: "%.2f", 0.25 + 0.75 * rate)))\"" : ""
                        body += "<td class=\(verdict)\(style) title=\"\(failed) of \(runs.count) failed\">\(text)</td>"
                    }
                }
                body += "</tr>\n"
            }
            body += "</table>\n"
        }
        let failing = results.filter { $0.verdict.isFailure }.sorted { $0.cell.label < $1.cell.label }
        if !failing.isEmpty {
            body += "<h2>Failures</h2>\n"
            for result in failing {
                let judgement = expectations.judge(result)
                body += "<div class=\"failure\(judgement.expectedFailure ? " known" : "")\" id=\"cell-\(escape(result.cellID))\"><h3>\(escape(result.cell.label))</h3>\n"
                body += "<p class=expectation>\(escape(judgement.message))</p>\n"
                for fact in result.scenario.facts { body += "<p>\(escape(fact.name)): \(escape(fact.value))</p>\n" }
                if let error = result.scenario.error {
                    let kind = result.scenario.failure.map { "<p class=failure-kind>\(escape($0.kind))</p>" } ?? ""
                    body += "\(kind)<pre>\(escape(error))</pre>\n"
                }
                for run in result.cases where run.failed {
                    body += "<p><b>\(escape(run.name))</b>\(run.message.map { " — " + escape($0) } ?? "")</p>"
                    if !run.evidence.isEmpty { body += "<pre>\(escape(run.evidence.joined(separator: "\n")))</pre>" }
                    body += "\n"
                }
                body += "<p>Reproduce: <code>cxllab repro \(escape(result.cellID))</code> or <code>\(escape(result.cell.command))</code></p></div>\n"
            }
        }
        // Each scenario's own summary: what driver-order's steps proved (and which it skipped
        // and why), what races found, a suite's tests.
        let summarized = results.filter { !$0.scenario.detail.summaryLines.isEmpty }.sorted { $0.cell.label < $1.cell.label }
        if !summarized.isEmpty {
            body += "<h2>What each cell found</h2>\n"
            for result in summarized {
                body += "<details><summary>\(escape(result.cell.label))</summary><pre>\(escape(result.scenario.detail.summaryLines.joined(separator: "\n")))</pre></details>\n"
            }
        }
        return """
            <!doctype html>
            <html lang=en><head><meta charset=utf-8><title>\(escape(title))</title>
            <style>
            body { font: 14px/1.4 sans-serif; margin: 2em; color: #222; }
            table.heatmap { border-collapse: collapse; margin-bottom: 1.5em; }
            .heatmap th, .heatmap td { border: 1px solid #bbb; padding: 4px 8px; text-align: center; }
            .heatmap th.order { font-weight: normal; font-size: 12px; }
            td.pass { background: #6cc070; } td.fail { background: #d9534f; color: white; font-weight: bold; }
            td.known { background: repeating-linear-gradient(45deg, #e8b4b2, #e8b4b2 6px, #f3d6d5 6px, #f3d6d5 12px); color: #6b1f1d; }
            .failure.known { border-left-color: #e8b4b2; } ul.deviations { color: #a12622; font-weight: bold; }
            td.na { background: #cfcfcf; text-align: left; } td.error { background: #f0ad4e; text-align: left; } td.absent { background: #f4f4f4; }
            .failure { border-left: 4px solid #d9534f; padding-left: 1em; margin-bottom: 1em; }
            pre { background: #f6f6f6; padding: 6px; white-space: pre-wrap; }
            </style></head><body>
            \(body)</body></html>
            """
    }

    static func cssClass(_ verdict: Verdict) -> String {
        switch verdict {
        case .notApplicable: "na"
        case .error: "error"
        case .fail: "fail"
        case .pass: "pass"
        }
    }

    static func escape(_ text: String) -> String {
        VisibleText.of(text).replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    /// Writes index.html, junit.xml and results.json into `folder`.
    public static func write(_ results: [CellResult], title: String, expectations: Expectations = Expectations([]), to folder: String) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        // Each file on its own: one that cannot be written never costs the others.
        var failures: [String] = []
        func attempt(_ file: String, _ body: () throws -> Void) {
            do { try body() } catch { failures.append("\(file): \(error)") }
        }
        attempt("index.html") {
            try html(results, title: title, expectations: expectations).write(toFile: folder + "/index.html", atomically: true, encoding: .utf8)
        }
        attempt("junit.xml") {
            try JUnitReport.xml(results, name: title, expectations: expectations).write(toFile: folder + "/junit.xml", atomically: true, encoding: .utf8)
        }
        attempt("results.json") {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            encoder.dateEncodingStrategy = .utcISO8601
            try encoder.encode(results).write(to: URL(fileURLWithPath: folder + "/results.json"))
        }
        if !failures.isEmpty { throw ReportWriteError(folder: folder, failures: failures) }
    }

    public struct ReportWriteError: Error, CustomStringConvertible {
        public let folder: String
        public let failures: [String]
        public var description: String { "could not write every report in \(folder): " + failures.joined(separator: "; ") }
    }
}
