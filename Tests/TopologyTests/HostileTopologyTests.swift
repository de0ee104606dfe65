import Foundation
import Testing
import TestSupport
@testable import Topology

/// Topologies built to make reading slow or crash: each is refused quickly, at its place,
/// in the diagnostic style of every other topology error.
@Suite struct HostileTopologyTests {
    /// The one diagnostic reading `yaml` gives, failing the test when it takes 3 s or more.
    static func refusal(_ yaml: String, file: String = "topologies/hostile.yaml") throws -> TopologyDiagnostic {
        let clock = ContinuousClock()
        let start = clock.now
        let error = try #require(throws: TopologyError.self) { try TopologyDocument.parse(yaml: yaml, file: file) }
        let elapsed = clock.now - start
        #expect(elapsed < .seconds(3), "refused after \(elapsed)")
        #expect(error.diagnostics.count == 1, "\(error)")
        let diagnostic = try #require(error.diagnostics.first)
        #expect(error.description.hasPrefix("\(file):\(diagnostic.line):\(diagnostic.column): error: "))
        return diagnostic
    }

    @Test func aBillionLaughsBehindQuotesIsRefusedQuickly() throws {
        let diagnostic = try Self.refusal("name: x\n" + HostileYAML.laughs())
        #expect((diagnostic.line, diagnostic.column) == (2, HostileYAML.firstAnchorColumn))
        #expect(diagnostic.message.contains("YAML anchors and aliases are not read"))
        #expect(diagnostic.fix == "write the value out where the alias stands")
    }

    @Test func deepNestingIsRefusedWithoutACrash() throws {
        let diagnostic = try Self.refusal(HostileYAML.deepNesting())
        #expect((diagnostic.line, diagnostic.column) == (1, 1))
        #expect(diagnostic.message.contains("nests deeper than 64 levels"))
    }

    @Test func anOversizedFileIsRefused() throws {
        let diagnostic = try Self.refusal("name: x\n" + HostileYAML.oversized())
        #expect((diagnostic.line, diagnostic.column) == (1, 1))
        #expect(diagnostic.message.contains("over the limit"))
    }
}
