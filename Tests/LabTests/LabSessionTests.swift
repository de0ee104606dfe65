import AgentProtocol
import Foundation
import Kernels
import HostSupport
@testable import LabRuntime
@testable import Scenarios
@testable import Matrix
@testable import Bench
import Libvirt
import Synchronization
import Testing
import TestSupport
import Topology

/// Real labs: real QEMU guests through qemu:///system, the real agent in them. Serialized,
/// so at most one of these guests runs at a time (other suites may run one more).
@Suite(.tags(.vm, .network), .needsHost) struct LabSessionTests {
    static var root: String { URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path }
    let context = LabContext.forTests()

    func prepared(_ topology: String = "nvdimm-single") async throws -> PreparedLab {
        try await Fixtures.prepare(topology, context: context)
    }

    func request(_ lab: PreparedLab, name: String, shell: Bool = true, heartbeatTimeout: Double = 10) -> LabRequest {
        LabRequest(name: name, topology: lab.topology, kernel: lab.kernel, image: lab.image, shell: shell,
                   runID: "test", cellID: name, bootDeadline: .seconds(120), heartbeatTimeout: heartbeatTimeout)
    }

    static func uniqueName(_ base: String) -> String { "\(base)-\(UUID().uuidString.prefix(6).lowercased())" }

    func assertGone(_ session: LabSession) throws {
        #expect(try Connection().lookupDomain(named: session.domainName) == nil)
        #expect(!FileManager.default.fileExists(atPath: session.folder))
    }

    @Test func bootsTalksAndLeavesNothing() async throws {
        let lab = try await prepared()
        let session = try await LabSession.start(request(lab, name: Self.uniqueName("life")), context: context, libvirt: try Connection())
        #expect(session.hello?.kernel == lab.kernel.release)
        let info = try await session.send(AgentCalls.Info())
        #expect(info.kernel == lab.kernel.release)
        #expect(info.modules.contains { $0.name == "nd_pmem" })
        let ndctl = try await session.send(AgentCalls.RunTool("ndctl", ["list", "-R"]))
        #expect(ndctl.status == 0)
        #expect(ndctl.json?.arrayValue?.first?["dev"]?.stringValue == "region0" || ndctl.json?["dev"]?.stringValue == "region0",
                "ndctl said: \(ndctl.stdout)")
        let mark = try await session.send(AgentCalls.DmesgMark())
        _ = try await session.send(AgentCalls.Shell("echo cxllab-mark-test > /dev/kmsg"))
        let lines = try await session.send(AgentCalls.DmesgSince(mark: mark))
        #expect(lines.contains { $0.contains("cxllab-mark-test") })
        let streamed = Collected()
        let outcome = try await session.agent.send(AgentCalls.Shell("echo one; echo two >&2; exit 5", stream: true),
                                                   onOutput: { streamed.add($0, $1) })
        #expect(outcome.status == 5)
        #expect(streamed.text("stdout") == "one\n")
        #expect(streamed.text("stderr") == "two\n")
        await session.powerOff()
        try assertGone(session)
    }

    @Test func shellIsRefusedWhenTheLabDidNotEnableIt() async throws {
        let lab = try await prepared()
        let session = try await LabSession.start(request(lab, name: Self.uniqueName("noshell"), shell: false), context: context, libvirt: try Connection())
        defer { Task { await session.teardown() } }
        await #expect(throws: AgentConnectionError.self) { try await session.send(AgentCalls.Shell("true")) }
        await session.teardown()
        try assertGone(session)
    }

    @Test func aGuestPanicEndsTheSessionWithThePanicAsEvidence() async throws {
        let lab = try await prepared()
        let session = try await LabSession.start(request(lab, name: Self.uniqueName("panic")), context: context, libvirt: try Connection())
        let clock = ContinuousClock()
        let start = clock.now
        let error = await #expect(throws: LabError.self) {
            try await session.send(AgentCalls.Shell("echo c > /proc/sysrq-trigger"), timeout: .seconds(60))
        }
        #expect(clock.now - start < .seconds(30))
        guard let error, error.code == .guestPanicked else {
            Issue.record("expected a panic, got \(String(describing: error))")
            await session.teardown()
            return
        }
        #expect(error.message.contains("Kernel panic"))
        #expect(error.console?.contains("sysrq") == true)
        await session.teardown()
        try assertGone(session)
    }

    @Test func anAgentThatStopsAnsweringEndsInATimeout() async throws {
        let lab = try await prepared()
        let session = try await LabSession.start(request(lab, name: Self.uniqueName("hang"), heartbeatTimeout: 4), context: context, libvirt: try Connection())
        let error = await #expect(throws: AgentConnectionError.self) {
            // The agent waits for this shell, which stops the agent itself: no reply, no heartbeat.
            try await session.send(AgentCalls.Shell("kill -STOP $(pidof cxllab-agent)"), timeout: .seconds(60))
        }
        guard case .unresponsive? = error else {
            Issue.record("expected unresponsive, got \(String(describing: error))")
            await session.teardown()
            return
        }
        await session.teardown()
        try assertGone(session)
    }

    @Test func fuzzedFramesAtTheRealAgentGetErrorRepliesAndNoCrash() async throws {
        let lab = try await prepared()
        let session = try await LabSession.start(request(lab, name: Self.uniqueName("fuzz")), context: context, libvirt: try Connection())
        let agent = session.agent
        let errors = Task {
            var count = 0
            for await frame in agent.events {
                if case .reply(nil, .failure) = frame { count += 1 }
                if count == 5 { return count }
            }
            return count
        }
        agent.write("this is not json\n")
        agent.write("{\"id\": \"seven\"}\n")
        agent.write(String(repeating: "x", count: AgentProtocol.maximumFrameBytes + 10) + "\n")
        agent.write("[1,2,3]\n")
        var noise: [UInt8] = []
        for index in 0..<300 {
            let byte = UInt8((index * 37) % 250 + 1)
            if byte != 0x0A { noise.append(byte) }
        }
        agent.write(String(decoding: noise, as: UTF8.self) + "\n")
        let counted = try await withDeadline(.seconds(30), what: "error replies") { await errors.value }
        #expect(counted == 5)
        await #expect(throws: AgentConnectionError.self) { try await agent.call(AgentMethod.bind, ["bus": "dax"]) }
        // Still up and answering.
        #expect(try await session.send(AgentCalls.Info()).kernel == lab.kernel.release)
        await session.powerOff()
        try assertGone(session)
    }

    /// QEMU dying by itself (as QEMU 10 under TCG very rarely does) is told apart from the
    /// guest crashing: a boot it ended is made once more, and a call it ended says so.
    @Test func qemuDyingIsNotTheGuestsFaultAndABootItEndsIsMadeOnceMore() async throws {
        let lab = try await prepared()
        let name = Self.uniqueName("qemudies")
        let domainName = LabNames.domainName(name)
        let said = AsyncStream<String>.makeStream()
        let lines = Collected()
        let booting = Task {
            try await LabSession.start(request(lab, name: name), context: context, libvirt: try Connection(), progress: {
                lines.add("progress", $0 + "\n")
                said.continuation.yield($0)
            })
        }
        let session: LabSession
        do {
            // A boot begins when a guest slot is free: under `make test` other suites' guests
            // may hold them for many minutes (CI: over 120 s). Then the boot itself has 120 s.
            let progress = said.stream
            try await withDeadline(.seconds(1800), what: "a guest slot for the first boot") {
                for await line in progress where line.hasPrefix("preparing") { return }
            }
            try await withDeadline(.seconds(120), what: "the first boot waiting for its agent") {
                for await line in progress where line.hasPrefix("waiting for the agent") { return }
            }
            #expect(QEMUPidFile.killLibvirtGuest(named: domainName))  // as a crash of QEMU would end it
            // The second boot takes a slot again, after whoever waited for one first.
            session = try await withDeadline(.seconds(1800), what: "the second boot") { try await booting.value }
        } catch {
            // Whatever failed, the boot under way leaves nothing behind.
            booting.cancel()
            if let stray = try? await booting.value { await stray.teardown() }
            throw error
        }
        #expect(lines.text("progress").contains("QEMU itself died, not the guest"), "progress: \(lines.text("progress"))")
        #expect(lines.text("progress").contains("booting it once more"))
        #expect(try await session.send(AgentCalls.Info()).kernel == lab.kernel.release)

        #expect(QEMUPidFile.killLibvirtGuest(named: domainName))  // as a crash of QEMU would end it
        let clock = ContinuousClock()
        let start = clock.now
        let error = await #expect(throws: LabError.self) { try await session.send(AgentCalls.Info(), timeout: .seconds(60)) }
        #expect(error?.code == .emulatorDied, "got \(String(describing: error))")
        #expect(clock.now - start < .seconds(20))
        await session.teardown()
        try assertGone(session)
    }

    /// `cxllab up` interrupted while its lab starts, booting or restoring from a saved machine,
    /// leaves no domain, no files and no name link.
    @Test(arguments: [false, true]) func sigintDuringStartLeavesNothingBehind(restoring: Bool) async throws {
        _ = try await prepared()  // everything cached, so the command reaches the start quickly
        let executable = try #require(try? AgentBinary.locateForTests()).replacingOccurrences(of: "cxllab-agent", with: "cxllab")
        // Restoring: a machine of this test's own (a memory size no shipped topology has), so
        // no other test holds its saved copies when this one wants one.
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("cxllab-sigint-\(UUID().uuidString.prefix(6))").path
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let topology = restoring ? try Fixtures.privateTopology("nvdimm-single", memory: "1920M", in: scratch) : Self.root + "/topologies/nvdimm-single.yaml"
        var environment = ProcessInfo.processInfo.environment
        environment["CXLLAB_SAVED_MACHINES"] = restoring ? "1" : "0"
        if restoring {
            // A saved copy to restore from (made here when the store has none free).
            let name = Self.uniqueName("presave")
            defer { LabCommandTests.removeLab(name) }
            for arguments in [["up", topology, "--name", name], ["down", name]] {
                let result = try await ProcessRunner.run(executable, arguments, environment: environment, timeout: .seconds(1800))
                try #require(result.status == 0, "\(arguments[0]): \(result.errorOutput)")
            }
        }
        let name = Self.uniqueName("sigint")
        let libvirt = try Connection()
        let events = try libvirt.lifecycleEvents()
        let process = Process()
        let exited = AsyncStream<Int32>.makeStream()
        let lines = AsyncStream<String>.makeStream()
        // The progress stream ends with the process, whether or not its pipe says so.
        process.terminationHandler = {
            exited.continuation.yield($0.terminationStatus)
            lines.continuation.finish()
        }
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["up", topology, "--name", name]
        process.environment = environment
        process.standardOutput = FileHandle.nullDevice
        let progress = Pipe()
        process.standardError = progress
        progress.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            if data.isEmpty { lines.continuation.finish() } else { lines.continuation.yield(String(decoding: data, as: UTF8.self)) }
        }
        try process.run()
        // Interrupted while booting: once its domain has started. While restoring: once it
        // says it restores (a restore is over in a second), in the copy's domain name.
        let paths = context.paths
        let domainName = try await withDeadline(.seconds(1800), what: "the lab's start") {
            if restoring {
                for await chunk in lines.stream {
                    if let range = chunk.range(of: #"restoring cxllab-m[0-9a-f]+-[0-9]+"#, options: .regularExpression) {
                        return String(chunk[range].dropFirst("restoring ".count))
                    }
                }
            } else {
                for await event in events where event.kind == .started && event.domainName == LabNames.domainName(name) { return event.domainName }
            }
            throw DrillError("cxllab up ended before its lab started")
        }
        defer {
            // Whatever the outcome, leave no lab behind for the next test.
            if let stray = try? libvirt.lookupDomain(named: domainName) { try? stray.destroy() }
            try? FileManager.default.removeItem(atPath: paths.folder(ofDomain: domainName))
            LabCommandTests.removeLab(name)
        }
        kill(process.processIdentifier, SIGINT)
        let status = try await withDeadline(.seconds(30), what: "cxllab exiting") {
            for await status in exited.stream { return status }
            return -1
        }
        progress.fileHandleForReading.readabilityHandler = nil
        #expect(status == 128 + SIGINT)
        #expect(try libvirt.lookupDomain(named: domainName) == nil)
        #expect(!FileManager.default.fileExists(atPath: paths.folder(ofDomain: domainName)))
        #expect(LabPaths.nameLinkTarget(paths.folder(ofDomain: LabNames.domainName(name))) == nil)
    }
}

final class Collected: Sendable {
    private let streams = Mutex<[String: String]>([:])
    func add(_ stream: String, _ data: String) { streams.withLock { $0[stream, default: ""] += data } }
    func text(_ stream: String) -> String { streams.withLock { $0[stream] ?? "" } }
}
