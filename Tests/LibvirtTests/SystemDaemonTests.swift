import Foundation
import Libvirt
import Testing
import TestSupport

/// The real qemu:///system daemon with a real QEMU guest. CI installs and starts libvirtd
/// (`make setup`), so a missing daemon fails here instead of skipping.
@Suite(.serialized, .tags(.vm), .needsHost) struct SystemDaemonTests {
    /// A guest with no disk and no kernel: SeaBIOS runs and finds nothing to boot, which is
    /// enough to exercise start, state, metadata, events and destroy.
    static func tinyDomainXML(_ name: String) -> String {
        """
        <domain type='qemu'>
          <name>\(name)</name>
          <memory unit='MiB'>32</memory>
          <vcpu>1</vcpu>
          <metadata><cxllab:lab xmlns:cxllab='https://cxllab.example/lab/1' run='test' owner-pid='\(getpid())'/></metadata>
          <os><type arch='x86_64' machine='q35'>hvm</type></os>
          <on_poweroff>destroy</on_poweroff><on_reboot>destroy</on_reboot><on_crash>destroy</on_crash>
          <devices><memballoon model='none'/></devices>
        </domain>
        """
    }

    @Test func startsAndStopsARealDomainWithEvents() async throws {
        let connection = try Connection(uri: "qemu:///system")
        #expect(try connection.hypervisorVersion() >= VersionNumber(major: 8, minor: 0))
        let name = "cxllab-test-\(UUID().uuidString.prefix(8).lowercased())"
        let events = try connection.lifecycleEvents()
        let domain = try connection.createDomain(xml: Self.tinyDomainXML(name), flags: [.autodestroy])
        var destroyed = false
        defer { if !destroyed { try? domain.destroy() } }

        #expect(try domain.state() == .running)
        #expect(try domain.xmlDescription().contains("<name>\(name)</name>"))
        let metadata = try #require(try domain.metadata(namespace: "https://cxllab.example/lab/1"))
        #expect(metadata.contains("owner-pid=\"\(getpid())\""))

        try domain.destroy()
        destroyed = true
        var kinds: [DomainEvent.Kind] = []
        for await event in events where event.domainName == name {
            kinds.append(try #require(event.kind))
            if event.kind == .stopped { break }
        }
        // QEMU also reports resumed and shutdown around these; the order of the two that
        // matter is what counts.
        let started = try #require(kinds.firstIndex(of: .started))
        #expect(kinds.last == .stopped)
        #expect(started < kinds.count - 1)
        #expect(try connection.lookupDomain(named: name) == nil)
        #expect(try connection.allDomains().allSatisfy { $0.name != name })
    }

    @Test func autodestroyRemovesTheDomainWhenItsConnectionCloses() async throws {
        let name = "cxllab-test-\(UUID().uuidString.prefix(8).lowercased())"
        let watcher = try Connection(uri: "qemu:///system")
        let events = try watcher.lifecycleEvents()
        do {
            let owner = try Connection(uri: "qemu:///system")
            _ = try owner.createDomain(xml: Self.tinyDomainXML(name), flags: [.autodestroy])
        }
        // Both the domain and its connection are released here; libvirt destroys the guest.
        var sawStop = false
        for await event in events where event.domainName == name && event.kind == .stopped {
            sawStop = true
            break
        }
        #expect(sawStop)
        #expect(try watcher.lookupDomain(named: name) == nil)
    }
}
