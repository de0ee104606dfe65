import Foundation
import Testing
import TestSupport
import YAMLGuard

/// The guard every YAML reader runs first: what it refuses, where, how fast, and that
/// cxllab's own files pass it.
@Suite struct YAMLGuardTests {
    /// The refusal of `text`, failing the test when there is none or it takes 3 s or more.
    static func refusal(_ text: String, limits: YAMLGuard.Limits = .standard) throws -> YAMLRefusal {
        let clock = ContinuousClock()
        let start = clock.now
        let refusal = try #require(throws: YAMLRefusal.self) { try YAMLGuard.check(text, limits: limits) }
        let elapsed = clock.now - start
        #expect(elapsed < .seconds(3), "refused after \(elapsed)")
        #expect(!refusal.fix.isEmpty)
        return refusal
    }

    @Test func refusesAnchorsBehindAQuoteInABillionLaughs() throws {
        let refusal = try Self.refusal("name: x\n" + HostileYAML.laughs())
        #expect((refusal.line, refusal.column) == (2, HostileYAML.firstAnchorColumn))
        #expect(refusal.message.contains("`&a0`"))
        #expect(refusal.fix == "write the value out where the alias stands")
    }

    @Test func refusesAnAnchorOnABlockMappingAtTheAnchor() throws {
        let refusal = try Self.refusal("machine: &base\n  memory: 2G\n")
        #expect((refusal.line, refusal.column) == (1, 10))
    }

    @Test func refusesAnAliasInQuotesOnItsLine() throws {
        let refusal = try Self.refusal("a: \"it's\"\nb: ['x', *a0]\n")
        #expect((refusal.line, refusal.column) == (2, 10))
        #expect(refusal.message.contains("`*a0`"))
    }

    @Test func readsAnchorLookalikesInQuotesAndCommentsAsText() throws {
        try YAMLGuard.check("a: '&x *y'\nb: \"*z\" # &w\nc: x&y\n")
    }

    /// Past libyaml's own limit of 1000 levels its parser stops near the first bracket: the
    /// refusal says the same and points there.
    @Test(arguments: [(500, 65), (100_000, 1)])
    func refusesDeepNestingWithoutACrash(depth: Int, column: Int) throws {
        let refusal = try Self.refusal(HostileYAML.deepNesting(depth))
        #expect((refusal.line, refusal.column) == (1, column))
        #expect(refusal.message.contains("deeper than 64"))
    }

    @Test func refusesDeepBlockNesting() throws {
        let text = (0..<70).map { String(repeating: "  ", count: $0) + "k\($0):" }.joined(separator: "\n") + " x\n"
        let refusal = try Self.refusal(text)
        #expect(refusal.line == 65)
    }

    @Test func refusesTooManyValues() throws {
        let text = "[" + String(repeating: "x, ", count: 250_000) + "x]\n"
        let refusal = try Self.refusal(text)
        #expect(refusal.message.contains("more than 200000"))
    }

    @Test func refusesAnOversizedFileBeforeParsing() throws {
        let refusal = try Self.refusal(HostileYAML.oversized())
        #expect((refusal.line, refusal.column) == (1, 1))
        #expect(refusal.message.contains("over the limit of 1048576 bytes"))
    }

    @Test func refusesASecondDocument() throws {
        let refusal = try Self.refusal("a: 1\n---\nb: 2\n")
        #expect((refusal.line, refusal.column) == (2, 1))
        #expect(refusal.message.contains("more than one YAML document"))
    }

    @Test func leavesSyntaxErrorsAndEmptyFilesToTheReader() throws {
        try YAMLGuard.check("a: [1, 2\n")
        try YAMLGuard.check("a: b: c\n")
        try YAMLGuard.check("")
        try YAMLGuard.check("--- \na: 1\n...\n")
    }

    /// The files cxllab ships: topologies, matrices and image recipes.
    static let shippedFiles: [String] = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return ["topologies", "matrices", "images"].flatMap { folder in
            let url = root.appendingPathComponent(folder)
            let names = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
            return names.filter { $0.hasSuffix(".yaml") }.sorted().map { url.appendingPathComponent($0).path }
        }
    }()

    @Test func everyKindOfShippedFileIsFound() {
        #expect(Self.shippedFiles.filter { $0.contains("/topologies/") }.count >= 8)
        #expect(Self.shippedFiles.filter { $0.contains("/matrices/") }.count >= 4)
        #expect(Self.shippedFiles.filter { $0.contains("/images/") }.count >= 3)
    }

    @Test(arguments: shippedFiles)
    func shippedFilesPass(_ path: String) throws {
        try YAMLGuard.check(try String(contentsOfFile: path, encoding: .utf8))
    }
}
