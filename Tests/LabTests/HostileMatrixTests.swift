import Foundation
@testable import Matrix
import Testing
import TestSupport

/// Matrix files built to make reading slow or crash: each is refused quickly, naming the
/// file and the place, whether read whole or for its `expect` rules alone.
@Suite struct HostileMatrixTests {
    static let header = """
        name: t
        kernels: [debian:bookworm-backports]
        topologies: [topologies/nvdimm-single.yaml]
        scenarios: [{name: driver-order}]

        """

    /// The message of loading a matrix file of `text`, failing the test when it takes 3 s or more.
    static func loadRefusal(_ text: String) throws -> (path: String, message: String) {
        let path = FileManager.default.temporaryDirectory.path + "/cxllab-hostile-\(UUID().uuidString.prefix(6)).yaml"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let clock = ContinuousClock()
        let start = clock.now
        let error = try #require(throws: MatrixError.self) { try MatrixFile.load(path: path) }
        let elapsed = clock.now - start
        #expect(elapsed < .seconds(3), "refused after \(elapsed)")
        return (path, error.description)
    }

    @Test func aBillionLaughsIsRefusedQuicklyWithItsPlace() throws {
        let (path, message) = try Self.loadRefusal(Self.header + HostileYAML.laughs())
        #expect(message.hasPrefix("\(path):5:\(HostileYAML.firstAnchorColumn): "), "\(message)")
        #expect(message.contains("YAML anchors and aliases are not read"))
        #expect(message.contains("fix: write the value out where the alias stands"))
    }

    @Test func aBillionLaughsInTheExpectRulesIsRefusedQuickly() throws {
        let expect = "expect:\n  - {verdict: fail, reason: \"it's\", order: &a0 [x, x]}\n"
        let hostile = HostileYAML.laughs().split(separator: "\n").dropFirst().map { "    " + $0 }.joined(separator: "\n")
        let (path, message) = try Self.loadRefusal(Self.header + expect + "  - reason: x\n    verdict: pass\n" + hostile + "\n")
        #expect(message.hasPrefix("\(path):6:44: "), "\(message)")
    }

    @Test func theExpectRulesReaderRefusesOnItsOwn() throws {
        let clock = ContinuousClock()
        let start = clock.now
        let error = try #require(throws: ExpectationError.self) {
            try ExpectationParser.rules(yaml: Self.header + HostileYAML.laughs(), file: "matrices/hostile.yaml")
        }
        #expect(clock.now - start < .seconds(3))
        #expect(error.description.contains("matrices/hostile.yaml:5:\(HostileYAML.firstAnchorColumn): "), "\(error)")
    }

    @Test func deepNestingIsRefusedWithoutACrash() throws {
        let (path, message) = try Self.loadRefusal(Self.header + "expect: " + HostileYAML.deepNesting())
        #expect(message.hasPrefix("\(path):5:10: "), "\(message)")
        #expect(message.contains("nests deeper than 64 levels"))
    }

    @Test func anOversizedFileIsRefused() throws {
        let (path, message) = try Self.loadRefusal(Self.header + HostileYAML.oversized())
        #expect(message.hasPrefix("\(path):1:1: "), "\(message)")
    }
}
