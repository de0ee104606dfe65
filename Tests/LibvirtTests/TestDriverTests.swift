import Foundation
import Libvirt
import Testing

/// libvirt's mock driver: the wrapper's mechanics without a hypervisor.
@Suite struct TestDriverTests {
    static func domainXML(_ name: String) -> String {
        """
        <domain type='test'>
          <name>\(name)</name>
          <memory unit='MiB'>64</memory>
          <os><type arch='x86_64'>hvm</type></os>
        </domain>
        """
    }

    @Test func opensAndReportsVersions() throws {
        let connection = try Connection(uri: "test:///default")
        #expect(try connection.libraryVersion() >= VersionNumber(major: 9, minor: 0))
        #expect(try connection.capabilities().contains("<capabilities>"))
        #expect(connection.isAlive)
    }

    @Test func listsAndLooksUpDomains() throws {
        let connection = try Connection(uri: "test:///default")
        let names = try connection.allDomains().map(\.name)
        #expect(names.contains("test"))
        let domain = try #require(try connection.lookupDomain(named: "test"))
        #expect(try domain.state() == .running)
        #expect(try domain.uuid().count == 36)
        #expect(try connection.lookupDomain(named: "no-such-domain") == nil)
    }

    @Test func badXMLIsATypedError() throws {
        let connection = try Connection(uri: "test:///default")
        let error = try #require(throws: LibvirtError.self) {
            try connection.createDomain(xml: "<domain type='test'><name>broken")
        }
        #expect(error.code == .xmlDetail)
        #expect(!error.message.isEmpty)
        #expect(error.description.hasPrefix("create domain: "))
        #expect(error.kind == nil)
    }

    @Test func qemuDyingAtStartHasItsOwnKind() {
        let died = LibvirtError(
            code: .internalError,
            message: "internal error: QEMU unexpectedly closed the monitor (vm='cxllab-x'): qemu-system-x86_64: terminating",
            operation: "create domain"
        )
        #expect(died.kind == .qemuClosedMonitor)
        // The wording when QEMU dies before its monitor is up (a CI run's call_rcu segfault).
        let diedEarlier = LibvirtError(
            code: .internalError,
            message: "internal error: process exited while connecting to monitor: qemu-system-x86_64: warning: Using non DAX backing file with 'pmem=on' option is deprecated",
            operation: "create domain"
        )
        #expect(diedEarlier.kind == .qemuClosedMonitor)
        #expect(LibvirtError(code: .internalError, message: "internal error: something else", operation: "create domain").kind == nil)
    }

    @Test func transientDomainEventsArriveAsAStream() async throws {
        let connection = try Connection(uri: "test:///default")
        let name = "cxllab-unit-\(UUID().uuidString.prefix(8))"
        let events = try connection.lifecycleEvents()
        let domain = try connection.createDomain(xml: Self.domainXML(name))
        #expect(try domain.isActive())
        try domain.destroy()
        var kinds: [DomainEvent.Kind] = []
        for await event in events where event.domainName == name {
            kinds.append(try #require(event.kind))
            if event.kind == .stopped { break }
        }
        #expect(kinds == [.started, .stopped])
        #expect(try connection.lookupDomain(named: name) == nil)
    }

    @Test func metadataRoundTrips() throws {
        let connection = try Connection(uri: "test:///default")
        let name = "cxllab-meta-\(UUID().uuidString.prefix(8))"
        let domain = try connection.createDomain(xml: Self.domainXML(name))
        defer { try? domain.destroy() }
        let namespace = "https://cxllab.example/lab/1"
        #expect(try domain.metadata(namespace: namespace) == nil)
        try domain.setMetadata("<lab run='r1' cell='c1'/>", key: "cxllab", namespace: namespace)
        let stored = try #require(try domain.metadata(namespace: namespace))
        #expect(stored.contains("run=\"r1\""))
        #expect(stored.contains("cell=\"c1\""))
    }
}
