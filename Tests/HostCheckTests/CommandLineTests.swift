import ArgumentParser
@testable import CXLLabCommands
import Foundation
import HostSupport
import Kernels
import LabRuntime
import Matrix
import Scenarios
import Testing

/// One command line: old spellings still parse, errors say the subcommand's usage and exit with
/// the status its help lists, a missing file is named, `--filter` that keeps nothing fails.
@Suite struct CommandLineTests {
    // MARK: - Old spellings

    @Test func upAndImageBuildStillTakeModuleAsTheirExtraModule() throws {
        #expect(try CXLLab.Up.parse(["t.yaml", "--module", "nfit"]).guestModules.modules == ["nfit"])
        #expect(try CXLLab.Up.parse(["t.yaml", "--extra-module", "a", "--module", "b"]).guestModules.modules == ["a", "b"])
        #expect(try CXLLab.Image.Build.parse(["--module", "./mod"]).guestModules.modules == ["./mod"])
        let help = CXLLab.helpMessage(for: CXLLab.Up.self, columns: 10_000)
        #expect(help.contains("--extra-module") && !help.contains("--module <"), "the old spelling is hidden")
    }

    @Test func reportTakesReportAndStillOut() throws {
        #expect(try CXLLab.Report.parse(["run-1", "--report", "dir"]).report == "dir")
        #expect(try CXLLab.Report.parse(["run-1", "--out", "dir"]).oldSpelling == "dir")
        #expect(!CXLLab.helpMessage(for: CXLLab.Report.self, columns: 10_000).contains("--out"))
        let twice = try #require(throws: (any Error).self) { try CXLLab.parseAsRoot(["report", "run-1", "--report", "a", "--out", "b"]) }
        #expect(CXLLab.exitCode(for: twice) == .validationFailure)
    }

    @Test func suiteAndBenchTakeTheTopologyAsTheirArgumentAndStillAsOption() throws {
        #expect(try CXLLab.Suite.parse(["ndctl", "mine.yaml"]).topology == "mine.yaml")
        #expect(try CXLLab.Suite.parse(["ndctl", "--topology", "mine.yaml"]).topologyOldSpelling == "mine.yaml")
        #expect(try CXLLab.Bench.parse(["mine.yaml"]).topology == "mine.yaml")
        #expect(try CXLLab.Bench.parse(["--topology", "mine.yaml"]).topologyOldSpelling == "mine.yaml")
        for arguments in [["suite", "ndctl", "a.yaml", "--topology", "b.yaml"], ["bench", "a.yaml", "--topology", "b.yaml"]] {
            let error = try #require(throws: (any Error).self) { try CXLLab.parseAsRoot(arguments) }
            #expect(CXLLab.message(for: error).contains("given twice"), "\(arguments)")
        }
        for command in [CXLLab.Suite.self, CXLLab.Bench.self] as [ParsableCommand.Type] {
            #expect(!CXLLab.helpMessage(for: command, columns: 10_000).contains("--topology"))
        }
    }

    @Test func runAndRaceTakeJUnitAndJSON() throws {
        let run = try CXLLab.Run.parse(["t.yaml", "--junit", "r.xml", "--json"])
        #expect(run.report.junit == "r.xml" && run.output.json)
        let race = try CXLLab.Race.parse(["t.yaml", "--junit", "r.xml"])
        #expect(race.report.junit == "r.xml" && !race.output.json)
        for arguments in [["report", "r-1"], ["diff", "a-1", "b-2"], ["repro", "abc"], ["up", "t.yaml"], ["topology", "validate", "t.yaml"],
                          ["topology", "show", "t.yaml"], ["kernel", "show", "debian:bookworm"]] {
            #expect(throws: Never.self, "\(arguments)") { _ = try CXLLab.parseAsRoot(arguments + ["--json"]) }
        }
    }

    // MARK: - Errors and their statuses

    /// A check in `validate()` fails while parsing, with the subcommand's usage line.
    @Test func validationErrorsShowTheSubcommandsUsage() throws {
        let cases: [(command: String, arguments: [String])] = [
            ("matrix", ["--shard", "3/2"]), ("matrix", ["--resume", "a/b"]), ("up", ["t.yaml", "--name", "a b"]),
            ("kernel list", ["6.12"]), ("exec", ["lab"]), ("diff", ["a", "b/c"]), ("topology validate", []),
        ]
        for (command, arguments) in cases {
            let error = try #require(throws: (any Error).self) { try CXLLab.parseAsRoot(command.split(separator: " ").map(String.init) + arguments) }
            let message = CXLLab.fullMessage(for: error)
            #expect(message.contains("Usage: cxllab \(command) "), "\(message)")
            #expect(!message.contains("<subcommand>"), "\(message)")
            #expect(CXLLab.exitCode(for: error) == .validationFailure, "\(command) \(arguments)")
        }
    }

    /// An error thrown while a command runs: a `ValidationError` with that command's usage and
    /// 64, anything else 2, and for `exec` both 255, apart from its guest command's statuses.
    @Test func errorsWhileRunningExitWithTheListedStatuses() {
        let usage = FailedCommand.message(for: ValidationError("bad"), in: CXLLab.Topology.Validate.self)
        #expect(usage.status == 64 && usage.text.contains("Usage: cxllab topology validate") && usage.text.contains("cxllab topology validate --help"))
        let lab = LabError(.notFound, "no lab named x")
        let runFailure = FailedCommand.message(for: lab, in: CXLLab.Run.self)
        #expect(runFailure.text == "Error: no lab named x" && runFailure.status == 2)
        #expect(FailedCommand.message(for: lab, in: CXLLab.Exec.self).status == 255)
        #expect(FailedCommand.message(for: ValidationError("bad"), in: CXLLab.Exec.self).status == 255)
        #expect(FailedCommand.message(for: ExitCode(3), in: CXLLab.Exec.self).status == 3, "the guest command's own status")
        let verdict = FailedCommand.message(for: ExitCode(1), in: CXLLab.Run.self)
        #expect(verdict.text.isEmpty && verdict.status == 1)
    }

    @Test func aFoundationFileErrorNamesTheFile() {
        let error = CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: "/no/such/t.yaml",
                                                              NSUnderlyingErrorKey: NSError(domain: NSPOSIXErrorDomain, code: Int(ENOENT))])
        let words = FailedCommand.words(for: error)
        #expect(words.contains("/no/such/t.yaml") && words.contains("no such file") && words.contains("check the path"), "\(words)")
        #expect(!words.contains("could not be completed"))
    }

    @Test func aMissingInputFileIsNamedWithItsFix() throws {
        let missing = "/nonexistent/cxllab-\(UUID().uuidString.prefix(6)).yaml"
        let error = try #require(throws: InputFileError.self) { try InputFile.text(missing, role: "topology", fix: TopologyFileHint.fix) }
        #expect(error.description == "topology \(missing): no such file; \(TopologyFileHint.fix)")
        let relative = try #require(InputFile.problem("no-such-\(UUID().uuidString.prefix(6)).yaml", role: "matrix file"))
        #expect(relative.reason.contains(FileManager.default.currentDirectoryPath), "a relative path says where it starts")
        let folder = try #require(InputFile.problem(NSTemporaryDirectory(), role: "topology"))
        #expect(folder.reason == "is a folder, not a file")
    }

    // MARK: - --filter

    static func cell(kernel: String, topology: String, variant: String) -> MatrixCell {
        let pinned = PinnedKernel(reference: kernel, release: "6.12.95+deb12-amd64", packageVersion: nil, imageSHA256: "00", exactReference: kernel)
        return MatrixCell(DriverOrderScenario.self, kernel: kernel, pinned: pinned, topology: topology, variant: variant,
                          settings: DriverOrderScenario.Settings())
    }

    @Test func aFilterThatKeepsNoCellIsAnErrorThatSaysWhatCouldMatch() {
        let cells = [Self.cell(kernel: "debian:bookworm", topology: "topologies/nvdimm-single.yaml", variant: "stand-in automatch=1"),
                     Self.cell(kernel: "debian:trixie-backports", topology: "topologies/cxl-pmem-ram.yaml", variant: "real fsdev_dax")]
        #expect(MatrixExpansion.filter(cells, "cxl-pmem-ram trixie").count == 1, "a filter that matches keeps its cell")
        #expect(MatrixExpansion.filter(cells, "cxl-pmem-ram bookworm").isEmpty)
        let miss = MatrixFilterMiss(filter: "cxl-pmem-ram bookworm", cells: cells)
        let words = miss.description
        #expect(words.hasPrefix("--filter 'cxl-pmem-ram bookworm' matches none of the matrix's 2 cells"), "\(words)")
        for value in ["debian:bookworm, debian:trixie-backports", "nvdimm-single.yaml, cxl-pmem-ram.yaml", "driver-order",
                      "stand-in automatch=1, real fsdev_dax", "e.g. --filter '\(cells[0].label)'"] {
            #expect(words.contains(value), "\(value) in \(words)")
        }
        #expect(FailedCommand.message(for: miss, in: CXLLab.Matrix.self).status == 2)
    }
}
