import Foundation
import HostSupport
@testable import Lab
import Libvirt
import Testing
import XML

@Suite struct MatrixExpansionTests {
    static var defaultMatrix: MatrixFile { get throws { try MatrixFile.load(path: LabSessionTests.root + "/matrices/default.yaml") } }

    static func kinds(_ kernel: String) -> MatrixExpansion.FsdevKind {
        switch kernel {
        case "debian:bookworm": .none
        case "debian:trixie-backports": .real
        default: .standInPossible
        }
    }

    @Test func theDefaultMatrixHasTheStandInBothWaysWhereTheKernelLacksFsdev() throws {
        let cells = MatrixExpansion.cells(try Self.defaultMatrix, standInSource: "images/modules/fsdev_dax", fsdev: Self.kinds)
        #expect(cells.count == 8)
        let backports = cells.filter { $0.kernel == "debian:bookworm-backports" }
        #expect(Set(backports.map(\.variant)) == ["stand-in automatch=1", "stand-in automatch=0"])
        #expect(cells.filter { $0.kernel == "debian:bookworm" }.allSatisfy { !$0.drivers.contains("fsdev_dax") })
        #expect(cells.filter { $0.kernel == "debian:trixie-backports" }.allSatisfy { $0.variant == "real fsdev_dax" })
        #expect(Set(cells.map(\.id)).count == cells.count)
    }

    @Test func idsAreStableAndDependOnlyOnInputs() throws {
        let cells = MatrixExpansion.cells(try Self.defaultMatrix, standInSource: "images/modules/fsdev_dax", fsdev: Self.kinds)
        let again = MatrixExpansion.cells(try Self.defaultMatrix, standInSource: "images/modules/fsdev_dax", fsdev: Self.kinds)
        #expect(cells.map(\.id) == again.map(\.id))
        var changed = cells[0]
        changed.seed += 1
        #expect(changed.id != cells[0].id)
    }

    @Test(arguments: [1, 2, 3, 5])
    func shardsTogetherCoverEveryCellExactlyOnce(count: Int) throws {
        let cells = MatrixExpansion.cells(try Self.defaultMatrix, standInSource: "images/modules/fsdev_dax", fsdev: Self.kinds)
        let shards = (1...count).map { MatrixExpansion.shard(cells, index: $0, count: count) }
        let all = shards.flatMap { $0.map(\.id) }
        #expect(all.count == cells.count)
        #expect(Set(all) == Set(cells.map(\.id)))
    }

    @Test func includeExcludeAndFilter() throws {
        var matrix = try Self.defaultMatrix
        matrix.exclude = [.init(kernel: "debian:bookworm", topology: nil, scenario: nil)]
        #expect(MatrixExpansion.cells(matrix, standInSource: "s", fsdev: Self.kinds).count == 6)
        matrix.include = [.init(kernel: nil, topology: "nvdimm-single.yaml", scenario: "*")]
        let included = MatrixExpansion.cells(matrix, standInSource: "s", fsdev: Self.kinds)
        #expect(included.count == 3)
        #expect(MatrixExpansion.filter(included, "automatch=1").count == 1)
    }

    @Test func badMatrixFilesSayWhatIsWrong() throws {
        let path = FileManager.default.temporaryDirectory.path + "/cxllab-matrix-\(UUID().uuidString.prefix(6)).yaml"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "name: x\nkernels: [debian:bookworm]\ntopologies: []\nscenarios: [{name: driver-order}]\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: ScenarioError.self) { try MatrixFile.load(path: path) }
        try "name: x\nkernels: [debian:bookworm]\ntopologies: [t.yaml]\nscenarios: [{name: race}]\n".write(toFile: path, atomically: true, encoding: .utf8)
        let error = #expect(throws: ScenarioError.self) { try MatrixFile.load(path: path) }
        #expect(error?.message.contains("unknown scenario 'race'") == true)
    }

    @Test func junitHasOneCasePerCellAndOrderAndParses() throws {
        let cell = MatrixCell(kernel: "debian:x", topology: "topologies/t.yaml", scenario: "driver-order", drivers: ["device_dax", "fsdev_dax"],
                              modules: [], orders: "all", seed: 1, repeats: 1, variant: "v")
        var report = DriverOrderReport(kernel: "6.12", topology: "t", drivers: cell.drivers, fsdev: .standIn(automatch: true), seed: 1)
        report.devices = [ScenarioDevice(name: "dax0.0", role: .devdax, parent: "namespace0.0", source: "nvdimm")]
        let bad = Observation(device: "dax0.0", step: .load, expected: "device_dax", actual: "fsdev_dax", verdict: .fail,
                              note: "fsdev_dax bound on its own", dmesg: ["fsdev_dax stand-in: automatch=1"])
        report.rounds = [[OrderResult(order: ["device_dax", "fsdev_dax"], observations: [], seconds: 1, error: nil),
                          OrderResult(order: ["fsdev_dax", "device_dax"], observations: [bad], seconds: 1, error: nil)]]
        var notApplicable = DriverOrderReport(kernel: "6.12", topology: "c", drivers: [], fsdev: .real, seed: 1)
        notApplicable.notApplicable = ["CXL: Failed to synchronize CPU cache state"]
        let results = [
            CellResult(cell: cell, cellID: cell.id, verdict: report.verdict, report: report, accelerator: "TCG", imageKey: nil, seconds: 3, finished: Date()),
            CellResult(cell: cell, cellID: "other", verdict: notApplicable.verdict, report: notApplicable, accelerator: "TCG", imageKey: nil, seconds: 2, finished: Date()),
        ]
        let xml = try JUnitReport.xml(results, name: "test")
        let document = try XMLDocument(parsing: xml)
        #expect(try document.strings("//testcase").count == 3)
        #expect(try document.strings("//testcase/failure").count == 1)
        #expect(try document.string("//failure")?.contains("repro: cxllab run") == true)
        #expect(try document.strings("//testcase/skipped/@message").first?.contains("Failed to synchronize") == true)
        #expect(try document.string("/testsuites/@failures") == "1")
    }
}

/// A real (small) matrix: interrupted after its first cell, it leaves no lab, and --resume
/// finishes it with the first cell kept.
@Suite(.serialized) struct MatrixRunTests {
    static func cxllab(_ arguments: [String]) async throws -> ProcessResult {
        let executable = try AgentBinary.locate().replacingOccurrences(of: "cxllab-agent", with: "cxllab")
        return try await ProcessRunner.run(executable, arguments, currentDirectory: LabSessionTests.root, timeout: .seconds(600))
    }

    @Test func interruptedMatrixKeepsFinishedCellsAndResumes() async throws {
        let executable = try AgentBinary.locate().replacingOccurrences(of: "cxllab-agent", with: "cxllab")
        let runID = "test-\(UUID().uuidString.prefix(6).lowercased())"
        let store = try ResultStore(cache: CacheDirectory.resolve())
        let filter = "bookworm-backports nvdimm-single"
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
        // The first cell's domain stops, then the second one's starts: interrupt it there.
        try await withDeadline(.seconds(300), what: "the second cell starting") {
            var started = 0
            for await event in events where event.domainName.hasPrefix("cxllab-\(runID)") && event.kind == .started {
                started += 1
                if started == 2 { return }
            }
        }
        kill(process.processIdentifier, SIGINT)
        let status = try await withDeadline(.seconds(60), what: "cxllab exiting") {
            for await status in exited.stream { return status }
            return -1
        }
        #expect(status == 128 + SIGINT)
        #expect(try libvirt.allDomains().allSatisfy { !$0.name.hasPrefix("cxllab-\(runID)") })
        let kept = try store.results(run: runID).map(\.cellID)
        #expect(kept.count == 1)

        let resumed = try await Self.cxllab(["matrix", "matrices/default.yaml", "--filter", filter, "--jobs", "1", "--resume", runID, "--json"])
        #expect(resumed.status == 1)  // the automatch=1 cell fails, as it must
        let cells = try store.results(run: runID).map(\.cellID)
        #expect(cells.count == 2)
        #expect(cells.contains(kept[0]))
        #expect(resumed.output.contains("\"verdict\" : \"fail\"") && resumed.output.contains("\"verdict\" : \"pass\""))

        // The failing cell, run again alone with exactly its inputs, fails the same way.
        let failing = try #require(try store.results(run: runID).first { $0.verdict == "fail" })
        let repro = try await Self.cxllab(["repro", String(failing.cellID.prefix(8))])
        #expect(repro.status == 1)
        #expect(repro.output.contains("Then: fail. Now: fail."))
        let failedBefore = Set(failing.report.failedOrders.map(\.label))
        for order in failedBefore { #expect(repro.output.contains("\(order)")) }
    }
}

/// The HTML report in a real browser: headless Chromium renders it to a PNG, and its DOM
/// holds a heatmap per topology with the failing order marked.
@Suite struct HTMLReportTests {
    @Test func theReportOpensInChromiumAndShowsTheHeatmap() async throws {
        let cell = MatrixCell(kernel: "debian:bookworm-backports", topology: "topologies/nvdimm-single.yaml", scenario: "driver-order",
                              drivers: ["device_dax", "fsdev_dax"], modules: [], orders: "all", seed: 1, repeats: 1, variant: "stand-in automatch=1")
        var report = DriverOrderReport(kernel: "6.12.95+deb12-amd64", topology: "nvdimm-single", drivers: cell.drivers, fsdev: .standIn(automatch: true), seed: 1)
        report.devices = [ScenarioDevice(name: "dax0.0", role: .devdax, parent: "namespace0.0", source: "nvdimm")]
        let bad = Observation(device: "dax0.0", step: .load, expected: "device_dax", actual: "fsdev_dax", verdict: .fail,
                              note: "fsdev_dax bound on its own (load)", dmesg: ["fsdev_dax stand-in: automatch=1"])
        report.rounds = [[OrderResult(order: ["device_dax", "fsdev_dax"], observations: [], seconds: 1, error: nil),
                          OrderResult(order: ["fsdev_dax", "device_dax"], observations: [bad], seconds: 1, error: nil)]]
        let result = CellResult(cell: cell, cellID: cell.id, verdict: report.verdict, report: report, accelerator: "TCG", imageKey: nil,
                                seconds: 20, finished: Date())
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
    }
}

@Suite struct ResultStoreTests {
    @Test func keepsCellsByRunAndFindsThemByIdPrefix() throws {
        let cache = CacheDirectory(path: FileManager.default.temporaryDirectory.path + "/cxllab-store-\(UUID().uuidString.prefix(6))")
        defer { try? FileManager.default.removeItem(atPath: cache.path) }
        let store = try ResultStore(cache: cache)
        let cell = MatrixCell(kernel: "debian:x", topology: "topologies/t.yaml", scenario: "driver-order", drivers: ["device_dax"],
                              modules: [], orders: "all", seed: 1, repeats: 1, variant: "v")
        var report = DriverOrderReport(kernel: "6.12", topology: "t", drivers: cell.drivers, fsdev: .real, seed: 1)
        report.devices = [ScenarioDevice(name: "dax0.0", role: .devdax, parent: "namespace0.0", source: "nvdimm")]
        report.rounds = [[OrderResult(order: ["device_dax"], observations: [], seconds: 1, error: nil)]]
        let result = CellResult(cell: cell, cellID: cell.id, verdict: report.verdict, report: report, accelerator: "TCG", imageKey: "k",
                                seconds: 5, finished: Date(timeIntervalSince1970: 1_800_000_000))
        try store.save(result, run: "a")
        try store.save(result, run: "a")  // the same cell again replaces it
        var later = result
        later.verdict = "fail"
        later.finished = Date(timeIntervalSince1970: 1_800_000_100)
        try store.save(later, run: "b")
        #expect(try store.results(run: "a").count == 1)
        #expect(try store.runs() == ["a", "b"])
        #expect(try store.cell(prefix: String(cell.id.prefix(6)))?.verdict == "fail")
        #expect(try store.results(run: "missing").isEmpty)
        #expect(RunDiff.lines(try store.results(run: "a"), try store.results(run: "b")).first?.hasPrefix("NEW FAILURE") == true)

        // Shards stored on two hosts merge into one run.
        let other = CacheDirectory(path: cache.path + "-shard")
        defer { try? FileManager.default.removeItem(atPath: other.path) }
        var second = result
        second.cell.seed = 2
        second.cellID = second.cell.id
        try ResultStore(cache: other).save(second, run: "a")
        let merged = try store.merge(from: [other.path + "/results.sqlite"])
        #expect(merged == 1)
        #expect(Set(try store.results(run: "a").map(\.cellID)) == [cell.id, second.cell.id])
    }
}
