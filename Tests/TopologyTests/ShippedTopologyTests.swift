import Foundation
import Testing
@testable import Topology
import XML

/// Every file in topologies/ parses, validates, renders, passes libvirt's schema (through the
/// XML module and through `virt-xml-validate`), and renders exactly as its golden file says.
@Suite struct ShippedTopologyTests {
    @Test func everyShippedFileIsTested() throws {
        let present = try Repository.yamlFiles(in: Repository.topologies).map { $0.deletingPathExtension().lastPathComponent }
        #expect(Set(present) == Set(Repository.shippedNames), "add new topologies to Repository.shippedNames")
    }

    @Test(arguments: Repository.shippedNames)
    func parsesValidatesAndRenders(_ name: String) throws {
        let (file, text) = try Repository.shipped(name)
        let document = try TopologyDocument.parse(yaml: text, file: file)
        let topology = try document.validate(capabilities: .qemu10)
        #expect(topology.name == name)
        #expect(!topology.summary.isEmpty)
        // ndctl-suite's device-dax round needs 4 GiB of legacy pmem beside the guest's RAM.
        let limit = name == "ndctl-suite" ? 8 * ByteSize.gib : 2 * ByteSize.gib
        #expect(topology.machine.memory <= limit, "keep guests modest: they run under TCG")
        let spec = try topology.render(Fixture.lab(name))
        try DomainSchema.check(spec.xml, name: name)
        // Every backing file lives in the lab directory.
        for file in spec.backingFiles {
            #expect(file.path.hasPrefix(Fixture.lab(name).labDirectory + "/"))
            #expect(file.size > 0)
        }
    }

    @Test(arguments: Repository.shippedNames)
    func passesVirtXMLValidate(_ name: String) throws {
        let (file, text) = try Repository.shipped(name)
        let spec = try Topology.load(yaml: text, file: file, capabilities: .qemu10).render(Fixture.lab(name))
        let result = try VirtXMLValidate.run(spec.xml, name: name)
        #expect(result.status == 0, "virt-xml-validate: \(result.output)")
    }

    @Test(arguments: Repository.shippedNames)
    func matchesSnapshot(_ name: String) throws {
        let (file, text) = try Repository.shipped(name)
        let xml = try Topology.load(yaml: text, file: file, capabilities: .qemu10).render(Fixture.lab(name)).xml
        try Snapshot.assertMatches(xml, named: "\(name).xml")
    }

    @Test(arguments: Repository.shippedNames)
    func renderingIsDeterministic(_ name: String) throws {
        let (file, text) = try Repository.shipped(name)
        let first = try Topology.load(yaml: text, file: file, capabilities: .qemu10).render(Fixture.lab(name))
        let second = try Topology.load(yaml: text, file: file, capabilities: .qemu10).render(Fixture.lab(name))
        #expect(first == second)
    }

    /// The CXL machine mirrors the reference domain that booted: same device arguments.
    @Test func cxlPMemSingleMirrorsTheReferenceDomain() throws {
        let (file, text) = try Repository.shipped("cxl-pmem-single")
        let topology = try Topology.load(yaml: text, file: file, capabilities: .qemu10)
        let arguments = topology.qemuArguments(Fixture.lab("x"))
        #expect(arguments.starts(with: ["-M", "cxl=on"]))
        #expect(arguments.contains("pxb-cxl,bus_nr=12,bus=pcie.0,id=hb0,addr=0x10"))
        #expect(arguments.contains("cxl-rp,port=0,bus=hb0,id=rp0,chassis=0,slot=2"))
        #expect(arguments.contains("cxl-type3,bus=rp0,persistent-memdev=mem0.pmem,lsa=mem0.lsa,id=mem0,sn=3706160458"), "a serial derived from the id")
        #expect(arguments.last == "cxl-fmw.0.targets.0=hb0,cxl-fmw.0.size=4G")
        #expect(!arguments.contains { $0.contains(",memdev=") }, "memdev= is the deprecated spelling")
    }

    @Test func nvdimmSingleGetsRoomForItsLabels() throws {
        let (file, text) = try Repository.shipped("nvdimm-single")
        let topology = try Topology.load(yaml: text, file: file, capabilities: .qemu10)
        let xml = try XMLDocument(parsing: try topology.render(Fixture.lab("x")).xml)
        // As in the reference domain: 1 GiB + 2 MiB, with 128 KiB of labels.
        #expect(try xml.string("/domain/devices/memory[@model='nvdimm']/target/size") == "1050624")
        #expect(try xml.string("/domain/devices/memory[@model='nvdimm']/target/label/size") == "128")
        #expect(try xml.string("/domain/maxMemory/@slots") == "1")
        #expect(try xml.string("/domain/features/acpi") != nil)
        #expect(try xml.strings("/domain/*[local-name()='commandline']").isEmpty, "no CXL, no QEMU arguments")
        let files = topology.backingFiles(Fixture.lab("x"))
        #expect(files.count == 1 && files[0].size == 1_075_838_976 && !files[0].qemuCommandLineOnly)
    }

    /// What ndctl's device-dax test needs for its 1 GiB round, and nothing the test modules
    /// (nfit_test, cxl_test) make themselves.
    @Test func ndctlSuiteHasLegacyPMemGigabytePagesAndALabelledNVDIMM() throws {
        let (file, text) = try Repository.shipped("ndctl-suite")
        let topology = try Topology.load(yaml: text, file: file, capabilities: .qemu10)
        let xml = try XMLDocument(parsing: try topology.render(Fixture.lab("x")).xml)
        #expect(try xml.string("/domain/memory") == "8192")
        #expect(try xml.string("/domain/os/cmdline") == "console=ttyS0 quiet panic=-1 memmap=4G!4G")
        #expect(try xml.strings("/domain/cpu/feature/@name") == ["hypervisor", "pdpe1gb"])
        #expect(try xml.string("/domain/cpu/feature[@name='pdpe1gb']/@policy") == "require")
        // daxctl-devices.sh's 4 GiB namespace and dm.sh's two 1 GiB ones on ACPI.NFIT need a
        // labelled NVDIMM of 6 GiB; device-dax's timed loop, one vCPU.
        #expect(topology.nvdimms.count == 1 && topology.nvdimms[0].isLabelled && topology.nvdimms[0].size == 6 << 30 && topology.cxl.isEmpty)
        #expect(try xml.string("/domain/vcpu") == "1")
        #expect(try xml.strings("/domain/devices/memory[@model='nvdimm']/target/label/size").count == 1)
        #expect(try xml.strings("/domain/*[local-name()='commandline']").isEmpty)
    }

    @Test func cxlBackingFilesAreForTheQEMUUser() throws {
        let (file, text) = try Repository.shipped("mixed")
        let files = try Topology.load(yaml: text, file: file, capabilities: .qemu10).backingFiles(Fixture.lab("x"))
        #expect(files.map(\.qemuCommandLineOnly) == [false, true, true])
        #expect(files.map { ($0.path as NSString).lastPathComponent } == ["nvdimm-pmem0.img", "cxl-mem0-pmem.img", "cxl-mem0-lsa.img"])
    }

    @Test func renderedDomainCarriesTheAlwaysPresentDevices() throws {
        let (file, text) = try Repository.shipped("cxl-volatile")
        let lab = Fixture.lab("x")
        let xml = try XMLDocument(parsing: try Topology.load(yaml: text, file: file, capabilities: .qemu10).render(lab).xml)
        #expect(try xml.string("/domain/devices/serial/source/@path") == lab.consoleLog)
        #expect(try xml.string("/domain/devices/console/target/@type") == "serial")
        #expect(try xml.string("/domain/devices/channel/source/@mode") == "bind")
        #expect(try xml.string("/domain/devices/channel/target/@name") == "org.cxllab.agent.0")
        #expect(try xml.string("/domain/devices/memballoon/@model") == "none")
        #expect(try xml.strings("/domain/*[starts-with(name(), 'on_')]") == ["destroy", "destroy", "destroy"])
        #expect(try xml.string("/domain/os/cmdline") == "console=ttyS0 quiet panic=-1")
        #expect(try xml.string("/domain/metadata/*[local-name()='lab']/@owner-pid") == "4242")
        #expect(try xml.string("/domain/metadata/*[local-name()='lab']/@created") == "2025-06-15T15:06:40Z")
    }
}

/// Golden files: a test fails with a line diff when the rendering changes, and
/// `CXLLAB_RECORD_SNAPSHOTS=1` re-records them.
enum Snapshot {
    static var recording: Bool { ProcessInfo.processInfo.environment["CXLLAB_RECORD_SNAPSHOTS"] == "1" }

    static func assertMatches(_ actual: String, named name: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let url = Repository.snapshots.appendingPathComponent(name)
        if recording {
            try FileManager.default.createDirectory(at: Repository.snapshots, withIntermediateDirectories: true)
            try actual.write(to: url, atomically: true, encoding: .utf8)
            return
        }
        guard let expected = try? String(contentsOf: url, encoding: .utf8) else {
            Issue.record("no snapshot \(url.path); record it with CXLLAB_RECORD_SNAPSHOTS=1 swift test --filter TopologyTests", sourceLocation: sourceLocation)
            return
        }
        if expected != actual {
            Issue.record("""
                \(name) differs from its snapshot (re-record with CXLLAB_RECORD_SNAPSHOTS=1 if the change is intended):
                \(diff(expected: expected, actual: actual))
                """, sourceLocation: sourceLocation)
        }
    }

    /// Changed lines with their line numbers: `-` from the snapshot, `+` rendered now.
    static func diff(expected: String, actual: String) -> String {
        let old = expected.components(separatedBy: "\n")
        let new = actual.components(separatedBy: "\n")
        var lines: [String] = []
        for change in new.difference(from: old) {
            switch change {
            case let .remove(offset, element, _): lines.append("  \(offset + 1) - \(element)")
            case let .insert(offset, element, _): lines.append("  \(offset + 1) + \(element)")
            }
        }
        return lines.prefix(40).joined(separator: "\n")
    }
}
