import Foundation
import Testing
@testable import Topology
import XML

/// Serial numbers and the guest CPU's hypervisor bit: what makes CXL regions commit in a VM;
/// and the CPU features a file requires on top of qemu64's.
@Suite struct TopologyCXLGuestTests {
    static func load(_ text: String) throws -> Topology {
        try Topology.load(yaml: text, file: "test.yaml", capabilities: .qemu10)
    }

    static let twoDevices = """
        cxl:
          host_bridges: [{id: hb0}]
          root_ports: [{id: rp0, host_bridge: hb0}, {id: rp1, host_bridge: hb0}]
          memory_devices:
            - {id: mem0, port: rp0, volatile: 256M}
            - {id: mem1, port: rp1, volatile: 256M%@}
          windows: [{targets: [hb0], size: 4G}]
        """

    @Test func everyMemoryDeviceGetsADistinctNonZeroSerial() throws {
        for name in Repository.shippedNames {
            let topology = try Topology.load(yaml: try Repository.shipped(name).text, file: name, capabilities: .qemu10)
            let serials = topology.cxl.memoryDevices.compactMap(\.serial)
            #expect(serials.count == topology.cxl.memoryDevices.count, "\(name)")
            #expect(Set(serials).count == serials.count && !serials.contains(0), "\(name): \(serials)")
        }
    }

    /// Derived from the id alone: a device keeps its serial when others come and go.
    @Test func aDerivedSerialFollowsTheIdNotThePosition() throws {
        let both = try Self.load(Self.twoDevices.replacingOccurrences(of: "%@", with: ""))
        let alone = try Self.load("""
            cxl:
              host_bridges: [{id: hb0}]
              root_ports: [{id: rp1, host_bridge: hb0}]
              memory_devices: [{id: mem1, port: rp1, volatile: 256M}]
              windows: [{targets: [hb0], size: 4G}]
            """)
        #expect(both.cxl.memoryDevices[1].serial == alone.cxl.memoryDevices[0].serial)
        #expect(both.cxl.memoryDevices[0].serial != both.cxl.memoryDevices[1].serial)
    }

    /// A serial the file sets is kept, and a derived one steps around it.
    @Test func aSetSerialIsKeptAndNeverReused() throws {
        let derived = Validator.derivedSerial("mem0")
        let topology = try Self.load(Self.twoDevices.replacingOccurrences(of: "%@", with: ", serial: \(derived)"))
        #expect(topology.cxl.memoryDevices[1].serial == derived)
        #expect(topology.cxl.memoryDevices[0].serial == derived + 1)
    }

    @Test func serialsAreRenderedForQEMU() throws {
        let topology = try Self.load(Self.twoDevices.replacingOccurrences(of: "%@", with: ", serial: 42"))
        let arguments = topology.qemuArguments(Fixture.lab("serials"))
        #expect(arguments.contains { $0.hasPrefix("cxl-type3,") && $0.hasSuffix(",id=mem1,sn=42") }, "\(arguments)")
    }

    @Test func theHypervisorBitIsOffUnlessTheFileKeepsIt() throws {
        let plain = try Self.load("machine: {vcpus: 1}\n")
        let kept = try Self.load("machine: {vcpus: 1, hypervisor_bit: true}\n")
        let plainXML = try XMLDocument(parsing: try plain.render(Fixture.lab("plain")).xml)
        let keptXML = try XMLDocument(parsing: try kept.render(Fixture.lab("kept")).xml)
        #expect(try plainXML.string("/domain/cpu/feature[@name='hypervisor']/@policy") == "disable")
        #expect(try plainXML.string("/domain/cpu/model") == "qemu64")
        #expect(try keptXML.strings("/domain/cpu/feature").isEmpty)
    }

    @Test func aHypervisorBitThatIsNotABooleanIsRefused() throws {
        #expect(throws: (any Error).self) { try Self.load("machine: {hypervisor_bit: maybe}\n") }
    }

    /// Each feature a `require` after the hypervisor line, in the file's order, whether the
    /// bit is off or kept; text and a list say the same.
    @Test func cpuFeaturesAreRequiredInFileOrder() throws {
        let list = try Self.load("machine: {vcpus: 1, cpu_features: [pdpe1gb, sse4.2, lahf_lm]}\n")
        let text = try Self.load("machine: {vcpus: 1, cpu_features: pdpe1gb  sse4.2 lahf_lm}\n")
        let kept = try Self.load("machine: {vcpus: 1, hypervisor_bit: true, cpu_features: [pdpe1gb]}\n")
        #expect(list.machine.cpuFeatures == ["pdpe1gb", "sse4.2", "lahf_lm"])
        #expect(text.machine == list.machine)
        let listXML = try XMLDocument(parsing: try list.render(Fixture.lab("list")).xml)
        let keptXML = try XMLDocument(parsing: try kept.render(Fixture.lab("kept")).xml)
        #expect(try listXML.strings("/domain/cpu/feature/@name") == ["hypervisor", "pdpe1gb", "sse4.2", "lahf_lm"])
        #expect(try listXML.strings("/domain/cpu/feature/@policy") == ["disable", "require", "require", "require"])
        #expect(try keptXML.strings("/domain/cpu/feature/@name") == ["pdpe1gb"])
        #expect(list.outline().contains("qemu64 + pdpe1gb sse4.2 lahf_lm"))
        try DomainSchema.check(try list.render(Fixture.lab("list")).xml, name: "list")
    }

    @Test func noCPUFeaturesRenderNoRequire() throws {
        let plain = try Self.load("machine: {vcpus: 1, cpu_features: []}\n")
        #expect(plain.machine.cpuFeatures.isEmpty)
        #expect(try Self.load("machine: {vcpus: 1}\n").render(Fixture.lab("p")) == plain.render(Fixture.lab("p")))
        #expect(!plain.outline().contains("cpu features"))
    }

    @Test func cpuFeaturesThatAreNotTextAreRefused() throws {
        let error = try #require(throws: TopologyError.self) { try Self.load("machine:\n  cpu_features: {pdpe1gb: true}\n") }
        #expect(error.diagnostics.map(\.message) == ["`cpu_features` should be text or a list of feature names, but is a mapping (key: value lines)"])
        #expect(error.diagnostics.first.map { "\($0.line):\($0.column)" } == "2:17")
    }

    /// A quoted name with a control character is shown escaped, not as the name it resembles.
    @Test func aNameWithANewlineIsRefusedAndShownEscaped() throws {
        let error = try #require(throws: TopologyError.self) { try Self.load("machine: {cpu_features: \"pdpe1gb\\n\"}\n") }
        #expect(error.diagnostics.map(\.message) == ["`pdpe1gb\\n` is not a CPU feature name"])
    }
}
