import Foundation
import Testing
@testable import Topology

/// The corpus in Broken/: each file ends with `# expect: LINE:COLUMN TEXT` lines, one per
/// error it must produce (TEXT is part of the message or the fix); a file may start with
/// `# capabilities: no-...` to check against a QEMU that lacks something. A file must produce
/// exactly the errors it expects, at those places: no fewer, none elsewhere.
@Suite struct BrokenTopologyTests {
    static let files: [String] = (try? Repository.yamlFiles(in: Repository.broken).map(\.lastPathComponent)) ?? []

    struct Expectation: CustomStringConvertible {
        var line: Int
        var column: Int
        var text: String
        var description: String { "\(line):\(column) \(text)" }
    }

    static func expectations(in text: String) -> [Expectation] {
        text.split(separator: "\n").compactMap { line in
            guard line.hasPrefix("# expect: ") else { return nil }
            let rest = line.dropFirst("# expect: ".count)
            guard let space = rest.firstIndex(of: " ") else { return nil }
            let place = rest[..<space].split(separator: ":").compactMap { Int($0) }
            guard place.count == 2 else { return nil }
            return Expectation(line: place[0], column: place[1], text: String(rest[rest.index(after: space)...]))
        }
    }

    @Test func corpusIsLargeEnough() {
        #expect(Self.files.count >= 30)
    }

    @Test(arguments: files)
    func reportsExactlyTheExpectedErrors(_ name: String) throws {
        let text = try Repository.text(Repository.broken.appendingPathComponent(name))
        let expected = Self.expectations(in: text)
        try #require(!expected.isEmpty, "\(name) has no `# expect:` lines")
        var capabilities = EmulatorCapabilities.qemu10
        if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("# capabilities: ") }) {
            capabilities = try #require(EmulatorCapabilities.qemu10(without: String(line.dropFirst("# capabilities: ".count))))
        }
        let file = "Broken/\(name)"
        let error = try #require(throws: TopologyError.self) {
            try Topology.load(yaml: text, file: file, capabilities: capabilities)
        }
        let report = error.description
        for expectation in expected {
            let found = error.diagnostics.contains {
                $0.line == expectation.line && $0.column == expectation.column && ($0.message.contains(expectation.text) || $0.fix.contains(expectation.text))
            }
            #expect(found, "expected \(expectation), got:\n\(report)")
        }
        for diagnostic in error.diagnostics {
            #expect(expected.contains { $0.line == diagnostic.line && $0.column == diagnostic.column },
                    "unexpected error at \(diagnostic.line):\(diagnostic.column): \(diagnostic.message)")
            #expect(diagnostic.file == file)
            #expect(!diagnostic.fix.isEmpty)
            #expect(report.contains("\(file):\(diagnostic.line):\(diagnostic.column): error: \(diagnostic.message)\n    fix: \(diagnostic.fix)"))
        }
    }

    /// Parsing alone reports problems of shape and nothing else; validation adds the rest.
    @Test func parseReportsShapeProblemsOnly() throws {
        let text = try Repository.text(Repository.broken.appendingPathComponent("unknown-key.yaml"))
        let error = try #require(throws: TopologyError.self) { try TopologyDocument.parse(yaml: text, file: "x.yaml") }
        #expect(error.diagnostics.map(\.line) == [4])
        let semantic = try Repository.text(Repository.broken.appendingPathComponent("bus-nr-collision.yaml"))
        let document = try TopologyDocument.parse(yaml: semantic, file: "y.yaml")
        #expect(throws: TopologyError.self) { try document.validate(capabilities: .qemu10) }
    }

    /// An id or name with a trailing newline: `$` matched before it, so "pmem0\n" passed and
    /// reached backing-file names and the XML. Ids and names are whole-string matches.
    @Test(arguments: [("name", #""nvdimm-single\n""#), ("id", #""pmem0\n""#)])
    func aTrailingNewlineIsNotPartOfAnId(_ key: String, _ value: String) throws {
        let (file, text) = try Repository.shipped("nvdimm-single")
        let edited = text.replacingOccurrences(of: key == "name" ? "name: nvdimm-single" : "id: pmem0", with: "\(key): \(value)")
        #expect(edited != text)
        let error = try #require(throws: TopologyError.self) { try Topology.load(yaml: edited, file: file, capabilities: .qemu10) }
        #expect(error.diagnostics.contains { $0.message.contains("is not a") })
    }

    @Test func diagnosticsPrintLikeACompiler() {
        let diagnostic = TopologyDiagnostic(file: "topologies/x.yaml", line: 12, column: 5, message: "what is wrong", fix: "how to fix it")
        #expect(diagnostic.description == "topologies/x.yaml:12:5: error: what is wrong\n    fix: how to fix it")
        let error = TopologyError([
            TopologyDiagnostic(file: "f", line: 9, column: 1, message: "b", fix: "y"),
            TopologyDiagnostic(file: "f", line: 2, column: 3, message: "a", fix: "x"),
        ])
        #expect(error.description == "f:2:3: error: a\n    fix: x\nf:9:1: error: b\n    fix: y")
    }
}
