import AgentProtocol
import Foundation
import HostSupport
@testable import LabRuntime
import Libvirt
import Testing

/// Drills of a guest that misbehaves towards the host, or just sits there: what it sends is
/// bounded, and an idle lab costs (almost) nothing.
extension FaultDrillTests {
    /// A lab of the default NVDIMM machine, its agent shaken hands with.
    static func lab(_ name: String, shell: Bool = true) async throws -> LabSession {
        let context = LabContext.forTests()
        let prepared = try await Fixtures.prepare("nvdimm-single", context: context)
        return try await LabSession.start(
            LabRequest(name: "\(name)-\(UUID().uuidString.prefix(6).lowercased())", topology: prepared.topology, kernel: prepared.kernel,
                       image: prepared.image, shell: shell, runID: "drill", cellID: name, heartbeatTimeout: 10),
            context: context, libvirt: try Connection())
    }

    /// The CPU seconds (user and system) a process has used, from /proc.
    static func cpuSeconds(of pid: Int32) throws -> Double {
        let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        let fields = stat[stat.index(after: try #require(stat.lastIndex(of: ")")))...].split(separator: " ")
        // After "(comm)": state is field 3, utime 14 and stime 15 of the whole line.
        let ticks = (Double(fields[11]) ?? 0) + (Double(fields[12]) ?? 0)
        return ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    static func qemuPID(_ domain: String) throws -> Int32 {
        let text = try String(contentsOfFile: "/run/libvirt/qemu/\(domain).pid", encoding: .utf8)
        return try #require(Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)))
    }

    /// An `up` lab that nobody talks to: its agent has no host on the other end of its port,
    /// and must sleep, not spin (it once kept a whole host core busy). Over 10 s its QEMU
    /// uses under 5% of a core (a spinning agent takes a whole one: 10 s tells them apart): what is left is QEMU's own idle cost under TCG (0.7% measured
    /// with the agent asleep and the guest's HPET off; 4.2% with it on, QEMU's main loop
    /// serving the HPET 500 times a second).
    @Test func anIdleLabCostsAlmostNothing() async throws {
        let session = try await Self.lab("idle")
        // As after `cxllab up` returns: the host end of the channel closes.
        session.agent.close(reason: "the drill hung up")
        let pid = try Self.qemuPID(session.domainName)
        // Let the guest settle after the hang-up, then measure a window of wall time.
        try await Task.sleep(for: .seconds(3))
        let clock = ContinuousClock()
        let before = try Self.cpuSeconds(of: pid), start = clock.now
        try await Task.sleep(for: .seconds(10))
        let used = try Self.cpuSeconds(of: pid) - before, wall = (clock.now - start).seconds
        #expect(used / wall < 0.05, "\(String(format: "QEMU used %.2f s of CPU in %.1f s (%.1f%% of a core)", used, wall, used / wall * 100))")
        // And a host that comes back is served at once.
        let again = try AgentConnection(socketPath: session.folder + "/agent.sock")
        _ = try await again.handshake(deadline: .seconds(10))
        #expect(try await again.send(AgentCalls.Info()).kernel.isEmpty == false)
        again.close()
        await session.teardown()
    }

    /// The guest side of the agent channel sends a flood with no newline (the agent killed,
    /// and 40 MB of noise written to its port): the host reads at most one frame's worth, the
    /// pending call fails with the reason, and the lab tears down.
    @Test func garbageOnTheAgentChannelIsBounded() async throws {
        let session = try await Self.lab("garbage")
        let port = "$(for p in /sys/class/virtio-ports/*; do [ \"$(cat $p/name)\" = \(AgentProtocol.channelName) ] && echo /dev/${p##*/}; done)"
        let flood = "(sleep 1; head -c 40000000 /dev/urandom | tr -d '\\n' > \(port)) >/dev/null 2>&1 & kill -9 $(pidof cxllab-agent)"
        let resident = { () -> Int in
            let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
            return Int(status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }?.split(separator: " ").dropFirst().first ?? "0") ?? 0
        }
        let before = resident()
        let error = await #expect(throws: (any Error).self) {
            _ = try await session.send(AgentCalls.Shell(flood, timeoutSeconds: 120), timeout: .seconds(180))
        }
        let grownKiB = resident() - before
        #expect(grownKiB < 64 * 1024, "the host grew by \(grownKiB) KiB reading the flood")
        #expect(error != nil)
        await session.teardown()
        #expect(try Connection().lookupDomain(named: session.domainName) == nil)
    }

    /// The guest floods its serial console (5 MB, much of it one endless line): the host
    /// keeps a bounded tail of it, and the lab still answers.
    @Test func aFloodingConsoleIsBounded() async throws {
        let session = try await Self.lab("flood")
        let flood = "head -c 5000000 /dev/zero | tr '\\0' x > /dev/console; echo > /dev/console; echo cxllab-flood-done > /dev/console"
        let outcome = try await session.send(AgentCalls.Shell(flood, timeoutSeconds: 600), timeout: .seconds(660))
        #expect(outcome.status == 0, "\(outcome.stderr)")
        let line = await session.console.waitForLine(containing: "cxllab-flood-done", deadline: .seconds(120))
        #expect(line != nil)
        #expect(session.console.contents.utf8.count <= ConsoleWatcher.keptBytes)
        let (_, end) = session.console.output(after: 0)
        // More came than is kept (the serial line may lose a little of a flood), and what is
        // kept is the newest.
        #expect(end > ConsoleWatcher.keptBytes, "the console grew to \(end) bytes")
        #expect(session.console.contents.hasSuffix("cxllab-flood-done\n") || session.console.contents.contains("cxllab-flood-done"))
        #expect(try await session.send(AgentCalls.Info()).kernel.isEmpty == false)
        await session.teardown()
    }
}
