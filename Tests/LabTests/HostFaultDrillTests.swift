import Foundation
import HostSupport
import Kernels
@testable import LabRuntime
import Libvirt
import Testing
import TestSupport

/// The fault drills that change what every lab on the host shares: libvirtd stopped, killed
/// and restarted, and the kernel and image cache damaged. They run on their own, after every
/// other suite (`make test`); the other drills run beside the rest of the tests.
@Suite(.serialized, .tags(.vm, .network), .needsHost) struct HostFaultDrillTests {
    typealias Drill = FaultDrillTests.Drill

    // MARK: - The host fails

    /// libvirtd restarted in the middle of a cell: the matrix finishes, every cell has a result,
    /// and no domain or file is left.
    @Test func libvirtdRestartedMidCell() async throws {
        let drill = try Drill()
        let events = try Connection().lifecycleEvents()
        let running = try drill.start(drill.matrixArguments())
        _ = try await drill.waitForAgent(inCell: 1, events: events)
        let daemon = try await ProcessRunner.check("pgrep", ["-x", "libvirtd"], context: "libvirtd is not running")
        let pid = try #require(Int32(daemon.output.split(separator: "\n").first ?? ""))
        // As an init system restarts it: SIGTERM, and SIGKILL when that is not enough.
        let exit = try ProcessExit(pid: pid)
        kill(pid, SIGTERM)
        if (try? await withDeadline(.seconds(15), what: "libvirtd stopping") { try await exit.wait() }) == nil {
            kill(pid, SIGKILL)
            try await withDeadline(.seconds(15), what: "libvirtd being killed") { try await exit.wait() }
        }
        // Waited for by its pid: Foundation's Process here has missed this script's exit (a
        // zombie never reaped) after the daemon it started was killed.
        let restart = try await MeasuredProcess.run("bash", [FaultDrillTests.root + "/scripts/start-libvirtd.sh"])
        #expect(restart.status == 0, "start-libvirtd.sh: \(restart.standardOutput)")
        let status = try await running.status()
        #expect([0, 1, 2].contains(status), "stderr: \(running.stderr)")
        let cells = try drill.results()
        #expect(cells.count == 2)
        for cell in cells where cell.verdict == .error {
            #expect(cell.scenario.error?.contains("libvirtd closed cxllab's connection") == true, "error: \(cell.scenario.error ?? "none")")
        }
        try await drill.expectNothingLeft()
    }

    /// libvirtd hung (SIGSTOP), and never restarted: a new command fails within its open
    /// deadline with the fix in its message; a run whose daemon stops mid-cell ends on its own
    /// (keep-alive closes the connection) and kills its guest's QEMU by libvirt's pid file, so
    /// nothing runs on; once the daemon continues, it finds nothing of the run.
    @Test func aHungLibvirtdIsABoundedErrorNotAHang() async throws {
        let drill = try Drill()
        let daemon = try await ProcessRunner.check("pgrep", ["-x", "libvirtd"], context: "libvirtd is not running")
        let pid = try #require(Int32(daemon.output.split(separator: "\n").first ?? ""))
        let events = try Connection().lifecycleEvents()
        kill(pid, SIGSTOP)
        var continued = false
        defer { if !continued { kill(pid, SIGCONT) } }

        let clock = ContinuousClock()
        var start = clock.now
        let list = try drill.start(["list"])
        let listStatus = try await list.status(within: .seconds(60))
        #expect(listStatus != 0)
        #expect(clock.now - start < .seconds(45))
        #expect(list.stderr.contains("did not answer within 30 s") && list.stderr.contains("start-libvirtd.sh"), "stderr: \(list.stderr)")
        kill(pid, SIGCONT)

        let running = try drill.start(["run", "topologies/nvdimm-single.yaml", "--orders", "1"])
        let domain = try await drill.waitForAgent(inCell: 1, run: "run", events: events)
        kill(pid, SIGSTOP)
        start = clock.now
        let status = try await running.status(within: .seconds(180))
        #expect([0, 1, 2].contains(status), "stderr: \(running.stderr)")
        #expect(clock.now - start < .seconds(120), "keep-alive (about 35 s) bounds the wait for the stopped daemon")
        let qemu = try await ProcessRunner.run("pgrep", ["-f", "guest=\(domain),"])
        #expect(qemu.output.isEmpty, "QEMU of \(domain) still running while libvirtd is stopped: \(qemu.output)")
        kill(pid, SIGCONT)
        continued = true
        try await drill.expectNothingLeft(run: "run")
    }

    // MARK: - The cache lies

    /// Cached files damaged behind cxllab's back are found by their hashes and made again:
    /// the image, the kernel's vmlinuz, a decompressed module and an extracted module.
    @Test func damagedCacheIsDetectedAndRebuilt() async throws {
        let drill = try Drill()
        let context = LabContext.forTests()
        let prepared = try await Fixtures.prepare("nvdimm-single", context: context)
        let kernel = prepared.kernel
        func damage(_ path: String) throws {
            let handle = try #require(FileHandle(forUpdatingAtPath: path))
            let size = try handle.seekToEnd()
            try handle.seek(toOffset: size / 2)
            let byte = try handle.read(upToCount: 1) ?? Data([0])
            try handle.seek(toOffset: size / 2)
            try handle.write(contentsOf: Data([byte[0] ^ 0xff]))
            try handle.close()
        }
        let plainFolder = kernel.folder + "/plain"
        let plainModule = try #require(FileManager.default.enumerator(atPath: plainFolder)?.compactMap { $0 as? String }.first { $0.hasSuffix("nd_pmem.ko") })
        let extracted = try #require(FileManager.default.enumerator(atPath: kernel.modulesFolder)?.compactMap { $0 as? String }.first { $0.contains("/nd_pmem.ko") })
        try damage(prepared.image.path)
        try damage(kernel.imagePath)
        try damage(plainFolder + "/" + plainModule)
        try damage(kernel.modulesFolder + "/" + extracted)
        try FileManager.default.removeItem(atPath: plainFolder + "/" + plainModule)  // so the extracted one is read again

        let result = try await FaultDrillTests.run(["run", "topologies/nvdimm-single.yaml", "--orders", "1"], drill: drill)
        #expect(result.status == 0, "stdout: \(result.stdout)\nstderr: \(result.stderr)")
        #expect(result.stderr.contains("is damaged") && result.stderr.contains("fetching it again"), "stderr: \(result.stderr)")
        let again = try await Fixtures.prepare("nvdimm-single", context: context)
        #expect(try FileDigest.sha256(ofFile: again.kernel.imagePath) == again.kernel.imageSHA256)
        #expect(try FileDigest.sha256(ofFile: again.image.path) == again.image.sha256)
        try KernelIntegrity.checkModule(again.kernel, relative: extracted)
        try await drill.expectNothingLeft()
    }

}
