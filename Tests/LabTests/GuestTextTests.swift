import Foundation
import HostSupport
import Testing
import XML
@testable import Matrix
@testable import Scenarios

/// Whatever a guest prints, reports are written whole, evidence stays bounded, and cxllab's
/// own text never hands a guest's escape sequences to the terminal.
@Suite struct GuestTextTests {
    /// Every character XML 1.0 cannot carry, and the ones a terminal obeys.
    static let hostile = "a\u{0}b\u{1B}[2Jc\u{7}d\u{FFFE}e\u{FFFF}f\u{9B}31mg\u{7F}h\r"

    func hostileResult() -> CellResult {
        var cell = Fixtures.cell(kernel: "debian:bookworm-backports", variant: "v\u{FFFF}")
        cell.topology = "topologies/nvdimm-single.yaml"
        var rounds = Fixtures.v9Rounds
        rounds[0].append(OrderResult(order: ["fsdev_dax", "device_dax"], observations: [Fixtures.violation(Self.hostile)],
                                     seconds: 1, error: "guest said \(Self.hostile)"))
        return Fixtures.result(cell, Fixtures.outcome(drivers: cell.drivers, rounds: rounds), seconds: 20)
    }

    @Test func everyReportIsWrittenWhateverTheGuestPrinted() throws {
        let folder = FileManager.default.temporaryDirectory.path + "/cxllab-guest-text-\(UUID().uuidString.prefix(6))"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try HTMLReport.write([hostileResult()], title: "guest \u{FFFE} text", to: folder)
        for file in ["index.html", "junit.xml", "results.json"] {
            #expect(FileManager.default.fileExists(atPath: folder + "/" + file), "\(file) was not written")
        }
        let junit = try String(contentsOfFile: folder + "/junit.xml", encoding: .utf8)
        let document = try XMLDocument(parsing: junit)
        #expect(try document.strings("//failure").count >= 2)
        #expect(junit.contains("[U+FFFE]") && junit.contains("[U+FFFF]") && junit.contains("\u{241B}[2J"))
        #expect(!junit.unicodeScalars.contains { VisibleText.needsEscape($0) && $0 != "\r" })
    }

    @Test func evidenceIsCappedWithANote() {
        let flood = (0..<5000).map { "line \($0) " + String(repeating: "x", count: 4000) }
        let result = CaseResult(name: "n", round: 0, verdict: .fail, seconds: 1, message: String(repeating: "m", count: 9000), evidence: flood)
        #expect(result.evidence.count == CaseResult.evidenceLines + 1)
        #expect(result.evidence.last == "[… 4800 more lines of evidence cut]")
        #expect(result.evidence[0].count < CaseResult.evidenceLineLength + 60)
        #expect(result.evidence[0].hasSuffix("more characters cut]"))
        #expect((result.message?.count ?? 0) < CaseResult.evidenceLineLength + 60)
    }

    @Test func cxllabsOwnSummaryShowsControlCharactersAsText() {
        let text = hostileResult().outcome.rendered()
        #expect(text.contains("fsdev_dax"))
        #expect(!text.unicodeScalars.contains { VisibleText.needsEscape($0) }, "raw control characters in: \(text.debugDescription)")
        #expect(text.contains("\u{241B}[2J"))
    }
}
