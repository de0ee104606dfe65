import Foundation
import Testing
@testable import Topology
import XML

/// Files of the repository, found from this source file (tests run from any directory).
enum Repository {
    static let testsFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    static let root = testsFolder.deletingLastPathComponent().deletingLastPathComponent()
    static let topologies = root.appendingPathComponent("topologies")
    static let snapshots = testsFolder.appendingPathComponent("Snapshots")
    static let broken = testsFolder.appendingPathComponent("Broken")

    static let shippedNames = [
        "nvdimm-single", "cxl-pmem-single", "cxl-pmem-ram", "cxl-switch-4", "cxl-interleave-2hb", "cxl-volatile", "mixed", "ndctl-suite",
    ]

    static func text(_ url: URL) throws -> String { try String(contentsOf: url, encoding: .utf8) }

    static func shipped(_ name: String) throws -> (file: String, text: String) {
        (file: "topologies/\(name).yaml", text: try text(topologies.appendingPathComponent("\(name).yaml")))
    }

    static func yamlFiles(in folder: URL) throws -> [URL] {
        try FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "yaml" }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
    }
}

/// The lab files every snapshot is rendered with: fixed, so snapshots are stable.
enum Fixture {
    static func lab(_ name: String) -> LabFiles {
        let directory = "/var/lib/cxllab/labs/snapshot-\(name)"
        return LabFiles(
            domainName: "cxllab-snapshot-\(name)", domainType: .qemu,
            kernel: "/var/cache/cxllab/kernels/6.12.0-snapshot/vmlinuz", initrd: "/var/cache/cxllab/images/snapshot/initramfs.cpio",
            kernelArguments: ["console=ttyS0", "quiet", "panic=-1"], labDirectory: directory,
            consoleLog: directory + "/console.log", agentSocket: directory + "/agent.sock",
            emulator: "/usr/bin/qemu-system-x86_64",
            metadata: .init(runID: "run-snapshot", cellID: "cell-0", ownerPID: 4242, created: Date(timeIntervalSince1970: 1_750_000_000))
        )
    }
}

/// libvirt's domain schema, read once: it is large and includes a dozen files.
enum DomainSchema {
    static let shared: Result<RelaxNGSchema, XMLError> = Result { try RelaxNGSchema(path: RelaxNGSchema.libvirtDomainPath) }
        .mapError { $0 as? XMLError ?? XMLError("\($0)") }

    static func check(_ xml: String, name: String) throws {
        try shared.get().validate(xml, name: name)
    }
}

/// `virt-xml-validate FILE domain`, libvirt's own validator.
enum VirtXMLValidate {
    static func run(_ xml: String, name: String) throws -> (status: Int32, output: String) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("cxllab-topology-tests-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let file = folder.appendingPathComponent("\(name).xml")
        try xml.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/virt-xml-validate")
        process.arguments = [file.path, "domain"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }
}

extension EmulatorCapabilities {
    /// QEMU 10 without one feature, for the corpus's `# capabilities:` lines.
    static func qemu10(without feature: String) -> EmulatorCapabilities? {
        var capabilities = EmulatorCapabilities.qemu10
        switch feature {
        case "no-dynamic-capacity": capabilities.type3Properties.subtract(["volatile-dc-memdev", "num-dc-regions"])
        case "no-switch-mailbox": capabilities.devices.remove("cxl-switch-mailbox-cci")
        case "no-cxl": capabilities.devices.subtract(["pxb-cxl", "cxl-rp", "cxl-upstream", "cxl-downstream", "cxl-switch-mailbox-cci", "cxl-type3"])
            capabilities.machineOptions.remove("cxl")
        case "no-nvdimm": capabilities.devices.remove("nvdimm")
            capabilities.machineOptions.remove("nvdimm")
        default: return nil
        }
        capabilities.version = "test-\(feature)"
        return capabilities
    }
}
