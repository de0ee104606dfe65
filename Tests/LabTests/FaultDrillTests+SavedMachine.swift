import Foundation
import HostSupport
@testable import LabRuntime
import Libvirt
import Testing
import TestSupport

extension FaultDrillTests {
    /// cxllab killed (SIGKILL) while it saves a machine: what it was writing stays in a staging
    /// folder, never a copy a lab would restore; the next lab of that machine boots and saves it
    /// whole (sweeping the dead one's staging), and the lab after restores from it.
    @Test func killedWhileSavingAMachine() async throws {
        let drill = try Drill()
        // A machine of this drill's own (a memory size no shipped topology has), so its key is
        // used by no other test running beside it.
        let topology = try Fixtures.privateTopology("nvdimm-single", memory: "1984M", in: drill.folder)
        let store = SavedMachines(cache: LabContext.forTests().cache)
        var environment = drill.environment
        environment["CXLLAB_SAVED_MACHINES"] = "1"
        let arguments = ["run", topology, "--orders", "1"]

        let killed = try Running(arguments, environment: environment)
        let saving = try await killed.waitFor("saving \(LabNames.prefix)m", deadline: .seconds(1800))
        kill(killed.pid, SIGKILL)
        #expect(try await killed.status(within: .seconds(30)) == 128 + SIGKILL)
        // The copy's domain name carries the first 12 digits of its key.
        let domainName = try #require(saving.split(separator: " ").last.map(String.init), "said: \(killed.stderr)")
        let keyPrefix = String(domainName.dropFirst(LabNames.prefix.count + 1).prefix(12))
        let key = try #require(try FileManager.default.contentsOfDirectory(atPath: store.root + "/.staging").first { $0.hasPrefix(keyPrefix) }
            .map { String($0.prefix(64)) }, "no staging folder of the killed save")
        defer { try? FileManager.default.removeItem(atPath: store.root + "/" + key) }
        #expect(store.record(key: key, index: 0) == nil, "a half-saved machine was put in place")
        try await Self.waitUntilGone(domainName)

        let again = try Running(arguments, environment: environment)
        let status = try await again.status()
        #expect([0, 1].contains(status), "stderr: \(again.stderr)")
        #expect(again.stderr.contains("cannot be used (there is none): booting and saving it"), "stderr: \(again.stderr)")
        #expect(again.stdout.contains("lab: restored"), "stdout: \(again.stdout)")
        #expect(store.record(key: key, index: 0) != nil)
        let staged = (try? FileManager.default.contentsOfDirectory(atPath: store.root + "/.staging")) ?? []
        #expect(!staged.contains { $0.hasSuffix("-\(killed.pid)") }, "the killed save's staging folder was not swept: \(staged)")

        let third = try Running(arguments, environment: environment)
        #expect([0, 1].contains(try await third.status()), "stderr: \(third.stderr)")
        #expect(!third.stderr.contains("booting and saving"), "stderr: \(third.stderr)")
        #expect(third.stdout.contains("lab: restored"), "stdout: \(third.stdout)")
        try await drill.expectNothingLeft(run: "run")
        try await Self.waitUntilGone(domainName)
    }

    /// The domain gone from libvirt, waiting a little for libvirt to finish with it (a save
    /// it was writing, an autodestroy).
    static func waitUntilGone(_ domainName: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let libvirt = try Connection()
        let events = try libvirt.lifecycleEvents()
        if try libvirt.lookupDomain(named: domainName) != nil {
            _ = try? await withDeadline(.seconds(30), what: "domain \(domainName) ending") {
                for await event in events where event.domainName == domainName && event.kind == .stopped { return }
            }
        }
        #expect(try libvirt.lookupDomain(named: domainName) == nil, "domain \(domainName) left", sourceLocation: sourceLocation)
    }
}
