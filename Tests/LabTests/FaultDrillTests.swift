import Foundation
import Kernels
import HostSupport
@testable import LabRuntime
@testable import Scenarios
@testable import Matrix
@testable import Bench
import Libvirt
import Testing
import TestSupport

/// Fault drills: cxllab interrupted, killed, starved of disk, or lied to in the middle of a
/// cell. Every drill ends with no cxllab domain of its run in libvirt, nothing left in its
/// labs folder, every finished result intact in its store, and a message that says what
/// happened. Each drill has its own labs folder and store, so they run beside the other
/// suites; those that touch what every lab shares (libvirtd, the cache) are
/// `HostFaultDrillTests`, run on their own.
@Suite(.tags(.vm, .network), .needsHost) struct FaultDrillTests {
    static let root = LabSessionTests.root
    static let cxllab = (try? AgentBinary.locateForTests().replacingOccurrences(of: "cxllab-agent", with: "cxllab")) ?? "cxllab"

    /// One drill's private labs folder, result store and run id.
    final class Drill: @unchecked Sendable {
        let id = "drill-\(UUID().uuidString.prefix(6).lowercased())"
        let folder: String
        var labs: String { folder + "/labs" }
        var store: String { folder + "/results.sqlite" }
        var matrix: String { folder + "/matrix.yaml" }
        /// The drills break booted labs, whose domains carry the run's name and whose console
        /// shows the agent's handshake: saved machines off, but in the drill that is about them.
        var environment: [String: String] { ["CXLLAB_LABS_DIR": labs, "CXLLAB_RESULTS": store, "CXLLAB_SAVED_MACHINES": "0"] }

        init(drivers: [String] = ["device_dax", "kmem", "fsdev_dax"], modules: [String] = [], standIn: [Int]? = [1, 0]) throws {
            folder = "/var/lib/cxllab/drills/" + id
            try FileManager.default.createDirectory(atPath: labs, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
            let moduleLines = modules.isEmpty ? "" : "    modules: [\(modules.map { "\"\($0)\"" }.joined(separator: ", "))]\n"
            let standInLine = standIn.map { "    stand_in: [\($0.map(String.init).joined(separator: ", "))]\n" } ?? ""
            try """
                name: \(id)
                description: a fault drill
                kernels: [debian:bookworm-backports]
                topologies: [topologies/nvdimm-single.yaml]
                scenarios:
                  - name: driver-order
                    drivers: [\(drivers.joined(separator: ", "))]
                \(moduleLines)\(standInLine)    orders: "2"
                    seed: 1
                    repeat: 1

                """.write(toFile: matrix, atomically: true, encoding: .utf8)
        }

        deinit { try? FileManager.default.removeItem(atPath: folder) }

        func matrixArguments(run: String? = nil, filter: String? = nil) -> [String] {
            ["matrix", matrix, "--jobs", "1", "--resume", run ?? id] + (filter.map { ["--filter", $0] } ?? [])
        }

        /// cxllab started in the background with this drill's environment.
        func start(_ arguments: [String]) throws -> Running {
            try Running(arguments, environment: environment)
        }

        func results(run: String? = nil) throws -> [CellResult] {
            try ResultStore(path: store).results(run: run ?? id)
        }

        /// Waits for the `index`-th domain of the run (1-based) to start and for its agent to
        /// shake hands with cxllab: the middle of a cell.
        func waitForAgent(inCell index: Int, run: String? = nil, events: AsyncStream<DomainEvent>) async throws -> String {
            let prefix = LabNames.domainName(run ?? id)
            let domain = try await withDeadline(.seconds(1800), what: "cell \(index)'s domain starting") {
                var started = 0
                for await event in events where event.domainName.hasPrefix(prefix) && event.kind == .started {
                    started += 1
                    if started == index { return event.domainName }
                }
                throw DrillError("the event stream ended")
            }
            let console = ConsoleWatcher(path: labs + "/" + domain + "/console.log")
            defer { console.stop() }
            let line = await console.waitForLine(containing: "cxllab-agent: the host shook hands", deadline: .seconds(120))
            try #require(line != nil, "the agent of \(domain) did not start; console: \(console.tail(20))")
            return domain
        }

        /// No domain of the run in libvirt (waiting a little for libvirt's autodestroy after
        /// a kill), nothing in the labs folder.
        func expectNothingLeft(run: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) async throws {
            let prefix = LabNames.domainName(run ?? id)
            let libvirt = try Connection()
            let events = try libvirt.lifecycleEvents()
            var left = Set(try libvirt.allDomains().map(\.name).filter { $0.hasPrefix(prefix) })
            if !left.isEmpty {
                // After SIGKILL, libvirt destroys an autodestroy domain once it notices the
                // connection gone; give it a few seconds to say so.
                let stillRunning = left
                _ = try? await withDeadline(.seconds(15), what: "libvirt's autodestroy") {
                    var waiting = stillRunning
                    for await event in events where event.kind == .stopped {
                        waiting.remove(event.domainName)
                        if waiting.isEmpty { return }
                    }
                }
                left = Set(try libvirt.allDomains().map(\.name).filter { $0.hasPrefix(prefix) })
            }
            #expect(left.isEmpty, "domains left: \(left)", sourceLocation: sourceLocation)
            let files = (try? FileManager.default.contentsOfDirectory(atPath: labs)) ?? []
            #expect(files.isEmpty, "left in \(labs): \(files)", sourceLocation: sourceLocation)
        }
    }

    /// A cxllab process: its exit status and everything it printed.
    final class Running: @unchecked Sendable {
        let process = Process()
        private let exited = AsyncStream<Int32>.makeStream()
        private let output = Collected()
        /// Everything written to stderr, as it comes: for `waitFor`.
        private let errorChunks = AsyncStream<String>.makeStream()

        init(_ arguments: [String], environment: [String: String]) throws {
            process.executableURL = URL(fileURLWithPath: FaultDrillTests.cxllab)
            process.currentDirectoryURL = URL(fileURLWithPath: FaultDrillTests.root)
            process.arguments = arguments
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
            let out = Pipe()
            let err = Pipe()
            process.standardOutput = out
            process.standardError = err
            for (pipe, name) in [(out, "stdout"), (err, "stderr")] {
                pipe.fileHandleForReading.readabilityHandler = { [output, errorChunks] handle in
                    let data = handle.availableData
                    if !data.isEmpty { output.add(name, String(decoding: data, as: UTF8.self)) }
                    if name == "stderr" {
                        if data.isEmpty { errorChunks.continuation.finish() } else { errorChunks.continuation.yield(String(decoding: data, as: UTF8.self)) }
                    }
                }
            }
            let continuation = exited.continuation
            process.terminationHandler = { continuation.yield($0.terminationReason == .uncaughtSignal ? 128 + $0.terminationStatus : $0.terminationStatus) }
            try process.run()
        }

        var pid: Int32 { process.processIdentifier }

        /// The first whole stderr line that contains `text`, once cxllab has written it.
        func waitFor(_ text: String, deadline: Duration) async throws -> String {
            let chunks = errorChunks.stream
            return try await withDeadline(deadline, what: "cxllab saying '\(text)'") {
                var said = ""
                for await chunk in chunks {
                    said += chunk
                    if let line = said.split(separator: "\n").first(where: { $0.contains(text) }), said.contains(line + "\n") { return String(line) }
                }
                throw DrillError("cxllab ended without saying '\(text)'")
            }
        }
        var stdout: String { output.text("stdout") }
        var stderr: String { output.text("stderr") }

        /// The exit status (128 + signal for a signal), within the deadline.
        func status(within deadline: Duration = .seconds(1800)) async throws -> Int32 {
            let stream = exited.stream
            let status = try await withDeadline(deadline, what: "cxllab exiting") {
                for await status in stream { return status }
                return -1
            }
            // Let the pipes drain what was written just before the exit.
            try await Task.sleep(for: .milliseconds(100))
            return status
        }
    }

    static func run(_ arguments: [String], drill: Drill) async throws -> (status: Int32, stdout: String, stderr: String) {
        let running = try drill.start(arguments)
        let status = try await running.status()
        return (status, running.stdout, running.stderr)
    }

    // MARK: - Interrupts

    /// SIGINT or SIGTERM in the middle of the second cell: cxllab removes that cell's lab and
    /// exits 128+signal; the first cell's result is kept, and --resume completes the run.
    @Test(arguments: [SIGINT, SIGTERM])
    func interruptedMidCell(signal: Int32) async throws {
        let drill = try Drill()
        let events = try Connection().lifecycleEvents()
        let running = try drill.start(drill.matrixArguments())
        _ = try await drill.waitForAgent(inCell: 2, events: events)
        kill(running.pid, signal)
        #expect(try await running.status(within: .seconds(60)) == 128 + signal)
        #expect(running.stderr.contains("interrupted; removing 1 lab(s)"), "stderr: \(running.stderr)")
        try await drill.expectNothingLeft()
        let kept = try drill.results()
        try #require(kept.count == 1)
        // Two drivers: two orders and udev's.
        #expect([.pass, .fail].contains(kept[0].verdict) && kept[0].cases.count == 3)

        let resumed = try await Self.run(drill.matrixArguments(), drill: drill)
        #expect(resumed.status == 1)  // the automatch=1 stand-in fails, as it must
        let all = try drill.results()
        #expect(all.count == 2 && all.contains { $0.cellID == kept[0].cellID && $0.verdict == kept[0].verdict })
        try await drill.expectNothingLeft()
    }

    /// SIGKILL in the middle of a cell: nothing can run in cxllab, so libvirt's autodestroy
    /// removes the domain and `cxllab clean` the lab's files.
    @Test func killedMidCellThenClean() async throws {
        let drill = try Drill()
        let events = try Connection().lifecycleEvents()
        let running = try drill.start(drill.matrixArguments())
        let domain = try await drill.waitForAgent(inCell: 2, events: events)
        kill(running.pid, SIGKILL)
        #expect(try await running.status(within: .seconds(30)) == 128 + SIGKILL)
        #expect(FileManager.default.fileExists(atPath: drill.labs + "/" + domain), "the killed cxllab could not remove its lab folder")
        let clean = try await Self.run(["clean"], drill: drill)
        #expect(clean.status == 0)
        #expect(clean.stdout.contains("removed \(drill.labs)/\(domain)"), "clean said: \(clean.stdout)")
        try await drill.expectNothingLeft()
        let kept = try drill.results()
        #expect(kept.count == 1 && [.pass, .fail].contains(kept.first?.verdict))
    }

    // MARK: - The guest fails

    /// A guest kernel panic in the middle of a cell (a module that panics when loaded, in the
    /// driver order): the kernel under test crashed while the scenario ran, so the cell fails
    /// (a deviation, exit 1; `--bisect` counts such a revision bad) with the panic as its
    /// `guest-crash` evidence and its error; the lab is gone.
    @Test func guestPanicMidCell() async throws {
        let source = FileManager.default.temporaryDirectory.appendingPathComponent("cxllab-drill-panic-\(UUID().uuidString.prefix(6))/drill_panic").path
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: (source as NSString).deletingLastPathComponent) }
        try "obj-m := drill_panic.o\n".write(toFile: source + "/Kbuild", atomically: true, encoding: .utf8)
        try """
            #include <linux/module.h>
            #include <linux/kernel.h>
            static int __init drill_panic_init(void) { panic("cxllab drill: a guest kernel panic on purpose"); return 0; }
            module_init(drill_panic_init);
            MODULE_LICENSE("GPL");
            """.write(toFile: source + "/drill_panic.c", atomically: true, encoding: .utf8)
        let drill = try Drill(drivers: ["device_dax", "drill_panic"], modules: [source], standIn: nil)
        let result = try await Self.run(drill.matrixArguments(), drill: drill)
        #expect(result.status == 1, "stderr: \(result.stderr)")
        let cells = try drill.results()
        try #require(cells.count == 1)
        #expect(cells[0].verdict == .fail)
        let crash = cells[0].scenario.cases.first { $0.name == ScenarioOutcome.guestCrashCase }
        #expect(crash?.message?.contains("cxllab drill") == true, "cases: \(cells[0].scenario.cases.map(\.name))")
        #expect(cells[0].scenario.error?.contains("panic") == true, "error: \(cells[0].scenario.error ?? "none")")
        #expect(cells[0].outcome.console.contains { $0.contains("Kernel panic") && $0.contains("cxllab drill") })
        try await drill.expectNothingLeft()
    }

    /// A guest that stops answering (its vCPUs paused): heartbeats stop, the cell ends as an
    /// error that says so within the heartbeat timeout, and the next cell runs as usual.
    @Test func unresponsiveGuestMidCell() async throws {
        let drill = try Drill()
        let libvirt = try Connection()
        let events = try libvirt.lifecycleEvents()
        let running = try drill.start(drill.matrixArguments())
        let domain = try await drill.waitForAgent(inCell: 1, events: events)
        try #require(try libvirt.lookupDomain(named: domain)).suspend()
        #expect(try await running.status() == 2)
        let cells = try drill.results()
        try #require(cells.count == 2)
        let hung = try #require(cells.first { $0.verdict == .error })
        #expect(hung.scenario.error?.contains("heartbeat") == true, "error: \(hung.scenario.error ?? "none")")
        #expect(cells.contains { $0.verdict == .pass || $0.verdict == .fail })
        try await drill.expectNothingLeft()
    }

    /// The disk that holds lab files full before a lab starts: the run fails at once with the
    /// folder and the fix in its message, and leaves nothing.
    @Test func labDiskFullBeforeTheLab() async throws {
        let drill = try Drill()
        try await ProcessRunner.check("mount", ["-t", "tmpfs", "-o", "size=16m", "cxllab-drill", drill.labs], context: "cannot mount a tmpfs")
        defer { _ = try? Process.run(URL(fileURLWithPath: "/bin/umount"), arguments: [drill.labs]).waitUntilExit() }
        let result = try await Self.run(["run", "topologies/nvdimm-single.yaml", "--orders", "1"], drill: drill)
        #expect(result.status != 0)
        let said = result.stdout + result.stderr
        #expect(said.contains("is full"), "said: \(said)")
        #expect(said.contains(drill.labs) && said.contains("CXLLAB_LABS_DIR"), "said: \(said)")
        try await drill.expectNothingLeft()
    }

    /// The disk that holds the backing files fills up while the guest runs: QEMU cannot write
    /// the NVDIMM's pages; the cell ends as an error, and nothing is left once it does.
    @Test func labDiskFillsUpMidCell() async throws {
        let drill = try Drill()
        try await ProcessRunner.check("mount", ["-t", "tmpfs", "-o", "size=96m", "cxllab-drill", drill.labs], context: "cannot mount a tmpfs")
        defer { _ = try? Process.run(URL(fileURLWithPath: "/bin/umount"), arguments: [drill.labs]).waitUntilExit() }
        let events = try Connection().lifecycleEvents()
        let running = try drill.start(drill.matrixArguments(filter: "automatch=0"))
        _ = try await drill.waitForAgent(inCell: 1, events: events)
        // Whatever space is left goes to a filler file.
        let filler = drill.labs + "/filler"
        _ = try? await ProcessRunner.run("dd", ["if=/dev/zero", "of=\(filler)", "bs=1M"], timeout: .seconds(60))
        let status = try await running.status()
        try? FileManager.default.removeItem(atPath: filler)
        let cells = try drill.results()
        try #require(cells.count == 1)
        #expect(status == 2 && cells[0].verdict == .error, "status \(status), verdict \(cells[0].verdict)")
        #expect(cells[0].scenario.error?.contains("CXLLAB_LABS_DIR") == true, "error: \(cells[0].scenario.error ?? "none")")
        try await drill.expectNothingLeft()
    }

    // MARK: - Company

    /// Two cxllab matrices at once, on one host, sharing the labs folder and the store: both
    /// finish with their own results and unique labs.
    @Test func twoMatricesAtOnce() async throws {
        let drill = try Drill()
        let first = try drill.start(drill.matrixArguments(run: drill.id + "-a", filter: "automatch=1"))
        let second = try drill.start(drill.matrixArguments(run: drill.id + "-b", filter: "automatch=0"))
        let (one, two) = (try await first.status(), try await second.status())
        #expect(one == 1, "stderr: \(first.stderr)")  // the automatch=1 stand-in fails, as it must
        #expect(two == 0, "stderr: \(second.stderr)")
        #expect(try drill.results(run: drill.id + "-a").map(\.verdict) == [Verdict.fail])
        #expect(try drill.results(run: drill.id + "-b").map(\.verdict) == [Verdict.pass])
        try await drill.expectNothingLeft(run: drill.id + "-a")
        try await drill.expectNothingLeft(run: drill.id + "-b")
    }
}

/// A process's exit, for a process that is not our child: a pidfd becomes readable then.
final class ProcessExit: @unchecked Sendable {
    let descriptor: Int32

    init(pid: Int32) throws {
        descriptor = glibcPidfdOpen(pid, 0)
        guard descriptor >= 0 else { throw DrillError("pidfd_open(\(pid)): \(String(cString: strerror(errno)))") }
    }

    deinit { close(descriptor) }

    /// Returns when the process exits; throws CancellationError when cancelled first.
    func wait() async throws {
        var wakeup: [Int32] = [0, 0]
        guard pipe(&wakeup) == 0 else { throw DrillError("pipe: \(String(cString: strerror(errno)))") }
        defer { close(wakeup[0]); close(wakeup[1]) }
        let (readEnd, writeEnd) = (wakeup[0], wakeup[1])
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                Thread.detachNewThread { [descriptor] in
                    var entries = [pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0), pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0)]
                    while poll(&entries, 2, -1) < 0 && errno == EINTR {}
                    continuation.resume()
                }
            }
        } onCancel: {
            var byte: UInt8 = 1
            _ = write(writeEnd, &byte, 1)
        }
        try Task.checkCancellation()
    }
}

/// glibc 2.36's pidfd_open(2) wrapper, which Swift's Glibc module does not export.
@_silgen_name("pidfd_open")
private func glibcPidfdOpen(_ pid: Int32, _ flags: UInt32) -> Int32

struct DrillError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
