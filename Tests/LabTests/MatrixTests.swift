import Foundation
import GuestImage
import Kernels
import HostSupport
@testable import LabRuntime
@testable import Scenarios
@testable import Matrix
@testable import Bench
import Libvirt
import Testing
import TestSupport
import XML

@Suite struct MatrixExpansionTests {
    static var defaultMatrix: MatrixFile { get throws { try MatrixFile.load(path: LabSessionTests.root + "/matrices/default.yaml") } }


    @Test func theDefaultMatrixHasTheStandInBothWaysWhereTheKernelLacksFsdev() throws {
        let cells = MatrixExpansion.cells(try Self.defaultMatrix, kernels: Fixtures.defaultKernels, standInSource: "images/modules/fsdev_dax")
        #expect(cells.count == 8)
        let backports = cells.filter { $0.kernel == "debian:bookworm-backports" }
        #expect(Set(backports.map(\.variant)) == ["stand-in automatch=1", "stand-in automatch=0"])
        #expect(cells.filter { $0.kernel == "debian:bookworm" }.allSatisfy { !$0.drivers.contains("fsdev_dax") })
        #expect(cells.filter { $0.kernel == "debian:trixie-backports" }.allSatisfy { $0.variant == "real fsdev_dax" })
        #expect(Set(cells.map(\.id)).count == cells.count)
    }

    @Test func idsAreStableAndDependOnlyOnInputs() throws {
        let cells = MatrixExpansion.cells(try Self.defaultMatrix, kernels: Fixtures.defaultKernels, standInSource: "images/modules/fsdev_dax")
        let again = MatrixExpansion.cells(try Self.defaultMatrix, kernels: Fixtures.defaultKernels, standInSource: "images/modules/fsdev_dax")
        #expect(cells.map(\.id) == again.map(\.id))
        var changed = cells[0]
        changed.seed += 1
        #expect(changed.id != cells[0].id)
    }

    @Test(arguments: [1, 2, 3, 5])
    func shardsTogetherCoverEveryCellExactlyOnce(count: Int) throws {
        let cells = MatrixExpansion.cells(try Self.defaultMatrix, kernels: Fixtures.defaultKernels, standInSource: "images/modules/fsdev_dax")
        let shards = (1...count).map { MatrixExpansion.shard(cells, index: $0, count: count) }
        let all = shards.flatMap { $0.map(\.id) }
        #expect(all.count == cells.count)
        #expect(Set(all) == Set(cells.map(\.id)))
    }

    @Test func includeExcludeAndFilter() throws {
        var matrix = try Self.defaultMatrix
        matrix.exclude = [.init(kernel: "debian:bookworm", topology: nil, scenario: nil)]
        #expect(MatrixExpansion.cells(matrix, kernels: Fixtures.defaultKernels, standInSource: "s").count == 6)
        matrix.include = [.init(kernel: nil, topology: "nvdimm-single.yaml", scenario: "*")]
        let included = MatrixExpansion.cells(matrix, kernels: Fixtures.defaultKernels, standInSource: "s")
        #expect(included.count == 3)
        #expect(MatrixExpansion.filter(included, "automatch=1").count == 1)
    }

    @Test func badMatrixFilesSayWhatIsWrong() throws {
        let path = FileManager.default.temporaryDirectory.path + "/cxllab-matrix-\(UUID().uuidString.prefix(6)).yaml"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "name: x\nkernels: [debian:bookworm]\ntopologies: []\nscenarios: [{name: driver-order}]\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: MatrixError.self) { try MatrixFile.load(path: path) }
        try "name: x\nkernels: [debian:bookworm]\ntopologies: [t.yaml]\nscenarios: [{name: stampede}]\n".write(toFile: path, atomically: true, encoding: .utf8)
        let error = #expect(throws: MatrixError.self) { try MatrixFile.load(path: path) }
        #expect(error?.message.contains("unknown scenario 'stampede'; fix: the scenarios cxllab has are driver-order, race and ndctl-suite") == true)
    }

    @Test func junitHasOneCasePerCellAndOrderAndParses() throws {
        let cell = Fixtures.cell()
        let failing = Fixtures.outcome(drivers: cell.drivers, rounds: Fixtures.v9Rounds)
        let notApplicable = Fixtures.outcome(drivers: [], fsdev: .real, devices: [], rounds: [], notApplicable: ["CXL: Failed to synchronize CPU cache state"])
        #expect(failing.verdict == .fail && notApplicable.verdict == .notApplicable)
        var other = cell
        other.seed = 2
        let results = [Fixtures.result(cell, failing), Fixtures.result(other, notApplicable)]
        let xml = try JUnitReport.xml(results, name: "test")
        let document = try XMLDocument(parsing: xml)
        // Two orders, one not-applicable cell, and the failing cell's deviation from "must not
        // fail" (no expect rule names it).
        #expect(try document.strings("//testcase").count == 4)
        #expect(try document.strings("//testcase/failure").count == 2)
        #expect(try document.strings("//testcase[@name='expectation']/failure").count == 1)
        #expect(try document.string("//failure")?.contains("repro: cxllab run") == true)
        #expect(try document.strings("//testcase/skipped/@message").first?.contains("Failed to synchronize") == true)
        #expect(try document.string("/testsuites/@failures") == "2")
        // The steps each cell took (and skipped, with why) go with its suite, and into the HTML.
        let steps = try #require(try document.string("//testsuite/system-out"))
        #expect(steps.contains("load") && steps.contains(ProbeStep.load.proves), "\(steps)")
        #expect(steps.contains("late-load") && steps.contains("skipped"))
        let html = HTMLReport.html(results, title: "t")
        #expect(html.contains("<h2>What each cell found</h2>") && html.contains(ProbeStep.lateLoad.rawValue))
    }
}

/// A real (small) matrix: interrupted after its first cell, it leaves no lab, and --resume
/// finishes it with the first cell kept.
@Suite(.serialized, .tags(.vm, .network), .needsHost) struct MatrixRunTests {
    static func cxllab(_ arguments: [String]) async throws -> ProcessResult {
        let executable = try AgentBinary.locateForTests().replacingOccurrences(of: "cxllab-agent", with: "cxllab")
        return try await ProcessRunner.run(executable, arguments, currentDirectory: LabSessionTests.root, timeout: .seconds(1800))
    }

    @Test func interruptedMatrixKeepsFinishedCellsAndResumes() async throws {
        let executable = try AgentBinary.locateForTests().replacingOccurrences(of: "cxllab-agent", with: "cxllab")
        let runID = "test-\(UUID().uuidString.prefix(6).lowercased())"
        let context = LabContext.forTests()
        let store = try ResultStore(context: context)
        let filter = "bookworm-backports nvdimm-single"
        // The matrix pins every kernel its file names, filtered or not: on a fresh machine that
        // is three kernel downloads, which other suites may be making at the same time. They
        // are fetched first, so the deadline below measures the cells, not the archive.
        _ = try await KernelStore(cache: context.cache).pin(try MatrixExpansionTests.defaultMatrix.kernels)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.currentDirectoryURL = URL(fileURLWithPath: LabSessionTests.root)
        process.arguments = ["matrix", "matrices/default.yaml", "--filter", filter, "--jobs", "1", "--resume", runID]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        let exited = AsyncStream<Int32>.makeStream()
        process.terminationHandler = { exited.continuation.yield($0.terminationStatus) }
        let libvirt = try Connection()
        let events = try libvirt.lifecycleEvents()
        try process.run()
        // The first cell is stored, then the second one's domain starts: interrupt it there.
        // Not the second start event of the run: a cell whose machine is saved first starts
        // twice (booted to be saved, then restored). With one job, a cell is stored before
        // the next one takes the slot.
        try await withDeadline(.seconds(1800), what: "the second cell starting") {
            // By the run in its metadata: a restored cell's domain has its saved machine's name.
            for await event in events where event.kind == .started && RunningLabs.isOfRun(event.domainName, runID, libvirt: libvirt) {
                if try store.results(run: runID).count == 1 { return }
            }
        }
        kill(process.processIdentifier, SIGINT)
        let status = try await withDeadline(.seconds(60), what: "cxllab exiting") {
            for await status in exited.stream { return status }
            return -1
        }
        #expect(status == 128 + SIGINT)
        #expect(try RunningLabs.domains(run: runID).isEmpty)
        let kept = try store.results(run: runID).map(\.cellID)
        #expect(kept.count == 1)

        let resumed = try await Self.cxllab(["matrix", "matrices/default.yaml", "--filter", filter, "--jobs", "1", "--resume", runID, "--json"])
        // The automatch=1 cell fails, as matrices/default.yaml expects: a known failure, exit 0.
        #expect(resumed.status == 0, "\(resumed.errorOutput)")
        #expect(resumed.errorOutput.contains("2 as expected (1 known failure), 0 deviations"), "\(resumed.errorOutput)")
        let cells = try store.results(run: runID).map(\.cellID)
        #expect(cells.count == 2)
        #expect(cells.contains(try #require(kept.first)))
        #expect(resumed.output.contains("\"verdict\" : \"fail\"") && resumed.output.contains("\"verdict\" : \"pass\""))

        // The failing cell, run again alone with exactly its inputs, fails the same way.
        let failing = try #require(try store.results(run: runID).first { $0.verdict == .fail })
        let repro = try await Self.cxllab(["repro", String(failing.cellID.prefix(8))])
        #expect(repro.status == 1)
        #expect(repro.output.contains("Then: fail. Now: fail."))
        let failedBefore = Set(failing.scenario.failedCases.map(\.name))
        for order in failedBefore { #expect(repro.output.contains("\(order)")) }
    }
}

/// The HTML report in a real browser: headless Chromium renders it to a PNG, and its DOM
/// holds a heatmap per topology with the failing order marked.
@Suite(.tags(.browser), .needsHost) struct HTMLReportTests {
    @Test func theReportOpensInChromiumAndShowsTheHeatmap() async throws {
        var cell = Fixtures.cell(kernel: "debian:bookworm-backports", variant: "stand-in automatch=1")
        cell.topology = "topologies/nvdimm-single.yaml"
        var rounds = Fixtures.v9Rounds
        // What a guest's console can hold: an escape sequence and a NUL must not break a report.
        rounds[0].append(OrderResult(order: ["fsdev_dax", "device_dax"], observations: [Fixtures.violation("bound \u{1B}[31mred\u{1B}[0m \u{0}")],
                                     seconds: 1, error: nil))
        let result = Fixtures.result(cell, Fixtures.outcome(drivers: cell.drivers, rounds: rounds), seconds: 20)
        let folder = FileManager.default.temporaryDirectory.path + "/cxllab-report-\(UUID().uuidString.prefix(6))"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try HTMLReport.write([result], title: "cxllab test report", to: folder)

        let flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1200,800"]
        let shot = try await ProcessRunner.run("chromium", flags + ["--screenshot=\(folder)/shot.png", "file://\(folder)/index.html"],
                                               timeout: .seconds(120))
        #expect(shot.succeeded, "\(shot.errorOutput)")
        let png = try #require(FileManager.default.contents(atPath: folder + "/shot.png"))
        #expect(png.prefix(8) == Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]))
        #expect(png.count > 10_000)
        let dom = try await ProcessRunner.run("chromium", flags + ["--dump-dom", "file://\(folder)/index.html"], timeout: .seconds(120))
        #expect(dom.output.contains("<table class=\"heatmap\">"))
        #expect(dom.output.contains("fsdev_dax &lt; device_dax"))
        #expect(dom.output.contains("<td class=\"fail\""))
        #expect(dom.output.contains("cxllab repro \(cell.id)"))
        #expect(dom.output.contains("\u{241B}[31mred"))
        let junit = try XMLDocument(parsing: try JUnitReport.xml([result], name: "control characters"))
        // Both failing orders, and the cell's deviation from "must not fail" (no expect rule here).
        #expect(try junit.strings("//failure").count == 3)
    }
}

@Suite struct ResultStoreTests {
    @Test func keepsCellsByRunAndFindsThemByIdPrefix() throws {
        let cache = CacheDirectory(path: FileManager.default.temporaryDirectory.path + "/cxllab-store-\(UUID().uuidString.prefix(6))")
        defer { try? FileManager.default.removeItem(atPath: cache.path) }
        // Settings of their own: a CXLLAB_RESULTS in the test's environment moves no store here.
        let store = try ResultStore(context: LabContext(settings: LabSettings(), cache: cache))
        let cell = Fixtures.cell(drivers: ["device_dax"])
        let passing = Fixtures.outcome(drivers: cell.drivers, fsdev: .real,
                                       rounds: [[OrderResult(order: ["device_dax"], observations: [], seconds: 1, error: nil)]])
        let result = Fixtures.result(cell, passing, imageKey: "k", seconds: 5, finished: Date(timeIntervalSince1970: 1_800_000_000))
        try store.save(result, run: "a")
        try store.save(result, run: "a")  // the same cell again replaces it
        var later = Fixtures.result(cell, Fixtures.outcome(drivers: cell.drivers, rounds: [[OrderResult(order: ["device_dax"],
                                    observations: [Fixtures.violation()], seconds: 1, error: nil)]]))
        later.finished = Date(timeIntervalSince1970: 1_800_000_100)
        try store.save(later, run: "b")
        #expect(try store.results(run: "a").count == 1)
        #expect(try store.runs() == ["a", "b"])
        #expect(try store.cell(prefix: String(cell.id.prefix(6)))?.verdict == .fail)
        // A prefix is text, not a pattern: SQL's wildcards match nothing.
        #expect(try store.cell(prefix: "%") == nil)
        #expect(try store.cell(prefix: "_") == nil)
        #expect(try store.results(run: "missing").isEmpty)
        #expect(RunDiff.lines(try store.results(run: "a"), try store.results(run: "b")).first?.hasPrefix("NEW FAILURE") == true)

        // Shards stored on two hosts merge into one run.
        let other = CacheDirectory(path: cache.path + "-shard")
        defer { try? FileManager.default.removeItem(atPath: other.path) }
        var second = result
        second.cell.seed = 2
        second.cellID = second.cell.id
        try ResultStore(context: LabContext(settings: LabSettings(), cache: other)).save(second, run: "a")
        // The fixture's dates lie in 2027: merged as of then, they are not from the future.
        let merged = try store.merge(from: [other.path + "/results.sqlite"], now: result.finished)
        #expect(merged == 1)
        #expect(Set(try store.results(run: "a").map(\.cellID)) == [cell.id, second.cell.id])
    }
}

@Suite struct ResultStoreDamageTests {
    @Test func aDamagedStoreIsMovedAsideAndANewOneBegun() throws {
        let folder = FileManager.default.temporaryDirectory.path + "/cxllab-damaged-\(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try String(repeating: "not a database ", count: 400).write(toFile: folder + "/results.sqlite", atomically: true, encoding: .utf8)
        let store = try ResultStore(path: folder + "/results.sqlite")
        let cell = Fixtures.cell(drivers: ["device_dax"])
        try store.save(Fixtures.result(cell, Fixtures.outcome(drivers: ["device_dax"], fsdev: .real, rounds: [])), run: "r")
        #expect(try store.results(run: "r").count == 1)
        let aside = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasPrefix("results.sqlite.damaged-") }
        #expect(aside.count == 1, "\(aside)")
    }

    @Test func mergeKeepsTheNewerResultAndRefusesWhatIsNotAStore() throws {
        let folder = FileManager.default.temporaryDirectory.path + "/cxllab-merge-\(UUID().uuidString.prefix(6))"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let local = try ResultStore(path: folder + "/a.sqlite"), shard = try ResultStore(path: folder + "/b.sqlite")
        let cell = Fixtures.cell(drivers: ["device_dax"])
        let pass = Fixtures.outcome(drivers: ["device_dax"], fsdev: .real, rounds: [[OrderResult(order: ["device_dax"], observations: [], seconds: 1, error: nil)]])
        let fail = Fixtures.outcome(drivers: ["device_dax"], fsdev: .real,
                                    rounds: [[OrderResult(order: ["device_dax"], observations: [Fixtures.violation()], seconds: 1, error: nil)]])
        try local.save(Fixtures.result(cell, pass, finished: Date(timeIntervalSince1970: 2_000)), run: "r")
        try shard.save(Fixtures.result(cell, fail, finished: Date(timeIntervalSince1970: 1_000)), run: "r")
        #expect(try local.merge(from: [folder + "/b.sqlite"]) == 0)
        #expect(try local.results(run: "r").first?.verdict == .pass)
        try shard.save(Fixtures.result(cell, fail, finished: Date(timeIntervalSince1970: 3_000)), run: "r")
        #expect(try local.merge(from: [folder + "/b.sqlite"]) == 1)
        #expect(try local.results(run: "r").first?.verdict == .fail)
        try "plain text".write(toFile: folder + "/c.txt", atomically: true, encoding: .utf8)
        #expect(throws: (any Error).self) { try local.merge(from: [folder + "/c.txt"]) }
    }

    /// A shard host whose clock runs ahead must not win for good: a row finished after now
    /// (plus the skew) neither replaces a local row nor joins the store; within the skew a
    /// newer row still replaces.
    @Test func mergeLeavesOutResultsFinishedInTheFuture() throws {
        let folder = FileManager.default.temporaryDirectory.path + "/cxllab-merge-future-\(UUID().uuidString.prefix(6))"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let local = try ResultStore(path: folder + "/a.sqlite"), shard = try ResultStore(path: folder + "/b.sqlite")
        let cell = Fixtures.cell(drivers: ["device_dax"])
        var other = cell
        other.seed = 2
        let pass = Fixtures.outcome(drivers: ["device_dax"], fsdev: .real, rounds: [[OrderResult(order: ["device_dax"], observations: [], seconds: 1, error: nil)]])
        let fail = Fixtures.outcome(drivers: ["device_dax"], fsdev: .real,
                                    rounds: [[OrderResult(order: ["device_dax"], observations: [Fixtures.violation()], seconds: 1, error: nil)]])
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        try local.save(Fixtures.result(cell, pass, finished: now.addingTimeInterval(-3600)), run: "r")
        try shard.save(Fixtures.result(cell, fail, finished: now.addingTimeInterval(365 * 86_400)), run: "r")
        try shard.save(Fixtures.result(other, fail, finished: now.addingTimeInterval(3600)), run: "r")
        #expect(try local.merge(from: [folder + "/b.sqlite"], now: now) == 0)
        #expect(try local.results(run: "r").map(\.verdict) == [.pass])
        try shard.save(Fixtures.result(cell, fail, finished: now.addingTimeInterval(60)), run: "r")
        #expect(try local.merge(from: [folder + "/b.sqlite"], now: now) == 1)
        #expect(try local.results(run: "r").map(\.verdict) == [.fail])
    }
}
