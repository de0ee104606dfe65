import Foundation
import Kernels
@testable import Matrix
import Scenarios
import Testing
import YAMLGuard

/// Matrix files held to the topology files' standard: every problem at once, each as
/// `FILE:LINE:COL: problem; fix`, with the nearest spelling where there is one, and never
/// Yams' or Swift's own error text.
@Suite struct MatrixFileCheckTests {
    static let file = "matrices/m.yaml"

    /// The diagnostics of a matrix text that must be refused.
    static func refusal(_ text: String) throws -> MatrixError {
        try #require(throws: MatrixError.self) { try MatrixFile.parse(yaml: text, file: file) }
    }

    static func good(scenario: String = "  - name: driver-order\n") -> String {
        "name: m\nkernels: [debian:bookworm-backports]\ntopologies: [topologies/nvdimm-single.yaml]\nscenarios:\n" + scenario
    }

    /// No decoding error's own words (`dataCorrupted`, `typeMismatch`, Swift type names).
    static func expectNoRawText(_ error: MatrixError) {
        for word in ["DecodingError", "dataCorrupted", "typeMismatch", "keyNotFound", "Swift.", "CodingKeys", "Optional("] {
            #expect(!error.description.contains(word), "\(error.description)")
        }
    }

    @Test func anUnknownScenarioKeyIsRefusedAtItsPlaceWithTheNearestKey() throws {
        let error = try Self.refusal(Self.good(scenario: "  - name: driver-order\n    ordrs: all\n"))
        #expect(error.description == "\(Self.file):6:5: scenario driver-order: unknown key `ordrs`; fix: did you mean `orders`? "
                + "driver-order takes drivers, modules, stand_in, orders, seed and repeat")
    }

    @Test func anUnknownTopLevelKeyIsRefusedWithTheNearestKey() throws {
        let error = try Self.refusal(Self.good() + "exlude: [{kernel: debian:bookworm}]\n")
        #expect(error.diagnostics.count == 1)
        let diagnostic = try #require(error.diagnostics.first)
        #expect((diagnostic.line, diagnostic.column) == (6, 1))
        #expect(diagnostic.message == "unknown key `exlude` in the matrix" && diagnostic.fix.hasPrefix("did you mean `exclude`?"), "\(diagnostic)")
    }

    @Test func aBadStandInValueIsRefusedAtTheItem() throws {
        let error = try Self.refusal(Self.good(scenario: "  - name: race\n    stand_in: [1, 2, 1]\n"))
        #expect(error.diagnostics.map { "\($0.line):\($0.column)" } == ["6:19", "6:22"], "\(error)")
        #expect(error.diagnostics[0].message == "scenario race: stand_in value 2 is not one of the stand-in's automatch values")
        #expect(error.diagnostics[1].message == "scenario race: stand_in gives 1 twice")
    }

    @Test func aValueOfTheWrongTypeIsSaidInWordsAtTheValue() throws {
        let error = try Self.refusal(Self.good(scenario: "  - name: driver-order\n    stand_in: [one]\n  - name: race\n    seed: -3\n"))
        Self.expectNoRawText(error)
        // Yams' decoder stops at the first value of an entry it cannot read; each entry is read.
        #expect(error.diagnostics.map { "\($0.line):\($0.column)" } == ["6:16", "8:11"], "\(error)")
        #expect(error.diagnostics.map(\.message) == ["scenario driver-order: an item of `stand_in` should be a whole number, but is `one`",
                                                     "scenario race: `seed` should be a whole number, 0 or more, but is `-3`"], "\(error)")
    }

    @Test func aSettingOutOfRangeIsRefusedAtItsKeyInTheCommandLinesWords() throws {
        let error = try Self.refusal(Self.good(scenario: "  - name: driver-order\n    repeat: 0\n    orders: sometimes\n"))
        #expect(error.diagnostics.map { "\($0.line):\($0.column)" } == ["6:13", "7:13"], "\(error)")
        #expect(error.diagnostics[0].message == "scenario driver-order: " + (DriverOrderScenario.repeatProblem(0, spelled: "repeat") ?? "none"))
    }

    @Test func aYAMLSyntaxErrorIsSaidInWordsAtItsPlace() throws {
        let error = try Self.refusal("name: m\nkernels: [debian:bookworm\ntopologies: x\n")
        Self.expectNoRawText(error)
        let diagnostic = try #require(error.diagnostics.first)
        #expect(diagnostic.message.hasPrefix("YAML syntax: ") && diagnostic.line >= 2, "\(error)")
        #expect(diagnostic.fix.contains("indentation"))
    }

    @Test func anEmptyFileSaysItHoldsNoMatrix() throws {
        for text in ["", "# only a comment\n", "~\n"] {
            let error = try Self.refusal(text)
            Self.expectNoRawText(error)
            #expect(error.description == "\(Self.file):1:1: the file holds no matrix; fix: start from matrices/default.yaml "
                    + "(docs/MATRICES.md lists every key)")
        }
    }

    @Test func aMissingKeyIsNamedWithItsPlace() throws {
        let error = try Self.refusal("name: m\nkernels: [debian:bookworm]\nscenarios:\n  - stand_in: [1]\n")
        #expect(error.diagnostics.map(\.oneLine) == [
            "\(Self.file):1:1: the matrix has no `topologies`; fix: add `topologies: [topologies/nvdimm-single.yaml]`",
            "\(Self.file):4:5: a scenario entry has no `name`; fix: add `name: driver-order`; the scenarios are driver-order, race and ndctl-suite",
        ])
    }

    @Test func aMissingFileSaysWhichAndHowToFix() throws {
        let folder = FileManager.default.temporaryDirectory.path + "/cxllab-matrices-\(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: folder + "/matrices", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // A name the working folder does not have (the tests run in the checkout, which has matrices/).
        try "name: d\n".write(toFile: folder + "/matrices/nightly.yaml", atomically: true, encoding: .utf8)
        #expect(try MatrixFile.locate("matrices/nightly.yaml", projectRoots: [folder]) == folder + "/matrices/nightly.yaml")
        let error = try #require(throws: MatrixError.self) { try MatrixFile.locate("matrices/nigthly.yaml", projectRoots: [folder]) }
        #expect(error.description == "matrices/nigthly.yaml: no such matrix file (looked in the working folder, \(folder)); "
                + "fix: did you mean matrices/nightly.yaml? the project's matrices are matrices/nightly.yaml")
        let direct = try #require(throws: MatrixError.self) { try MatrixFile.load(path: folder + "/none.yaml") }
        #expect(direct.description.hasPrefix("\(folder)/none.yaml: no such matrix file; fix: "))
        #expect(!direct.description.contains("source tree") && !error.description.contains("source tree"))
    }

    @Test func aKernelTypoGetsTheNearestNameHereAndOnTheCommandLine() throws {
        let error = try Self.refusal("name: m\nkernels:\n  - debian:bookwrm\n  - debain:trixie\ntopologies: [t.yaml]\nscenarios: [{name: race}]\n")
        #expect(error.diagnostics.map { "\($0.line):\($0.column)" } == ["3:5", "4:5"])
        #expect(error.diagnostics[0].fix.hasPrefix("did you mean 'debian:bookworm'?"), "\(error)")
        #expect(error.diagnostics[1].fix.hasPrefix("did you mean 'debian:trixie'?"), "\(error)")
        // The parser `--kernel` goes through says the same.
        let command = try #require(throws: KernelReferenceError.self) { try KernelReference(parsing: "debian:trixie-backport") }
        #expect(command.description.contains("did you mean 'debian:trixie-backports'?"))
        #expect(try KernelReference(parsing: "debian:6.12.95+deb12-amd64") == .debianRelease("6.12.95+deb12-amd64"))
        #expect(try KernelReference(parsing: "debian:trixie") == .debianSuite("trixie"))
    }

    @Test func everyProblemIsReportedAtOnceEachWithItsLineAndColumn() throws {
        let text = """
            name: m
            kernels: [debian:bookwrm, debian:bookworm, debian:bookworm]
            topologies: [topologies/nvdimm-single.yaml]
            scenarios:
              - name: driver-order
                ordrs: all
                stand_in: [2]
              - name: rase
            expect:
              - verdict: fial
                reason: x

            """
        let error = try Self.refusal(text)
        #expect(error.diagnostics.map { "\($0.line):\($0.column)" } == ["2:11", "2:44", "6:5", "7:16", "8:11", "10:14"], "\(error)")
        #expect(error.diagnostics.allSatisfy { $0.file == Self.file })
        #expect(error.description.split(separator: "\n").count == 6)
        #expect(error.diagnostics[4].fix.hasPrefix("did you mean `race`?"), "\(error)")
        #expect(error.diagnostics[5].fix.hasPrefix("did you mean `fail`?"), "\(error)")
        Self.expectNoRawText(error)
    }

    @Test func theShippedMatricesAreClean() throws {
        let folder = LabSessionTests.root + "/matrices"
        let files = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".yaml") }
        #expect(files.count >= 4)
        for file in files { _ = try MatrixFile.load(path: folder + "/" + file) }
    }
}
