import AgentProtocol
import Foundation
import HostSupport
import XML

/// Where one lab's files are, and what the domain is called: everything the rendering needs
/// besides the topology. The caller chooses the paths; rendering only writes them down.
public struct LabFiles: Sendable, Hashable {
    public enum DomainType: String, Sendable, Hashable, CaseIterable {
        case qemu
        case kvm
    }

    /// Recorded in the domain's `<metadata>` so `cxllab clean` can find stray domains.
    public struct Metadata: Sendable, Hashable {
        public var runID: String
        public var cellID: String
        public var ownerPID: Int32
        public var created: Date

        public init(runID: String, cellID: String, ownerPID: Int32, created: Date) {
            self.runID = runID
            self.cellID = cellID
            self.ownerPID = ownerPID
            self.created = created
        }
    }

    public var domainName: String
    public var domainType: DomainType
    public var kernel: String
    public var initrd: String
    /// The base kernel command line; the topology's own arguments are appended.
    public var kernelArguments: [String]
    /// The lab's own directory: backing files go here.
    public var labDirectory: String
    public var consoleLog: String
    public var agentSocket: String
    /// The virtio-serial port name the guest agent opens.
    public var agentChannel: String
    /// The QEMU binary, or nil for libvirt's default.
    public var emulator: String?
    public var metadata: Metadata

    public init(
        domainName: String, domainType: DomainType, kernel: String, initrd: String, kernelArguments: [String],
        labDirectory: String, consoleLog: String, agentSocket: String, agentChannel: String = AgentProtocol.channelName,
        emulator: String? = nil, metadata: Metadata
    ) {
        self.domainName = domainName
        self.domainType = domainType
        self.kernel = kernel
        self.initrd = initrd
        self.kernelArguments = kernelArguments
        self.labDirectory = labDirectory
        self.consoleLog = consoleLog
        self.agentSocket = agentSocket
        self.agentChannel = agentChannel
        self.emulator = emulator
        self.metadata = metadata
    }

    /// A path inside the lab directory.
    public func path(_ name: String) -> String {
        labDirectory.hasSuffix("/") ? labDirectory + name : labDirectory + "/" + name
    }
}

/// A file a lab must create before the domain starts: sparse, of `size` bytes.
public struct BackingFile: Sendable, Hashable {
    public var path: String
    public var size: UInt64
    /// True for files only QEMU's command line names (CXL memory): libvirt does not label
    /// them, so the caller must give them to the QEMU user (libvirt-qemu on Debian).
    public var qemuCommandLineOnly: Bool
    /// What it backs, for people: "NVDIMM pmem0", "CXL mem0 label storage area".
    public var purpose: String

    public init(path: String, size: UInt64, qemuCommandLineOnly: Bool, purpose: String) {
        self.path = path
        self.size = size
        self.qemuCommandLineOnly = qemuCommandLineOnly
        self.purpose = purpose
    }
}

/// A rendered domain: libvirt XML, and the files to create before starting it.
public struct DomainSpec: Sendable, Hashable {
    public var name: String
    public var xml: String
    public var backingFiles: [BackingFile]
}

public enum DomainXMLNamespace {
    public static let qemu = XMLNamespace(prefix: "qemu", uri: "http://libvirt.org/schemas/domain/qemu/1.0")
    public static let lab = XMLNamespace(prefix: "cxllab", uri: "https://cxllab.dev/xmlns/lab/1")
}

extension Topology {
    /// The libvirt domain for this machine in the lab `files` describes. Deterministic: the
    /// same topology and files give byte-identical XML.
    public func render(_ files: LabFiles) throws -> DomainSpec {
        let xml = try domainTree(files).serialized()
        return DomainSpec(name: files.domainName, xml: xml, backingFiles: backingFiles(files))
    }

    /// The files the domain's memory lives in, in the order the XML names them.
    public func backingFiles(_ files: LabFiles) -> [BackingFile] {
        var result = nvdimms.map {
            BackingFile(path: files.path(BackingName.nvdimm($0.id)), size: $0.deviceSize, qemuCommandLineOnly: false, purpose: "NVDIMM \($0.id)")
        }
        for device in cxl.memoryDevices {
            result += cxlBackends(device).map {
                BackingFile(path: files.path($0.file), size: $0.size, qemuCommandLineOnly: true, purpose: "CXL \(device.id) \($0.purpose)")
            }
        }
        return result
    }

    /// The arguments that go through `<qemu:commandline>`: everything CXL, which libvirt has
    /// no elements for. Empty for a machine without CXL.
    public func qemuArguments(_ files: LabFiles) -> [String] {
        guard !cxl.isEmpty else { return [] }
        var arguments = ["-M", "cxl=on"]
        for device in cxl.memoryDevices {
            for backend in cxlBackends(device) {
                let path = files.path(backend.file).replacingOccurrences(of: ",", with: ",,")
                arguments += ["-object", "memory-backend-file,id=\(backend.id),share=on,mem-path=\(path),size=\(ByteSize.qemu(backend.size))"]
            }
        }
        for bridge in cxl.hostBridges {
            var device = "pxb-cxl,bus_nr=\(bridge.busNumber),bus=pcie.0,id=\(bridge.id),addr=0x\(String(bridge.pciSlot, radix: 16))"
            if let node = bridge.numaNode { device += ",numa_node=\(node)" }
            arguments += ["-device", device]
        }
        for port in cxl.rootPorts {
            arguments += ["-device", "cxl-rp,port=\(port.number),bus=\(port.hostBridge),id=\(port.id),chassis=\(port.chassis),slot=\(port.slot)"]
        }
        for device in cxl.switches {
            if device.mailbox {
                // The mailbox is function 1 of the upstream port's slot.
                arguments += ["-device", "cxl-upstream,port=\(device.number),bus=\(device.port),id=\(device.id),addr=0.0,multifunction=on"]
                arguments += ["-device", "cxl-switch-mailbox-cci,bus=\(device.port),addr=0.1,target=\(device.id),id=\(device.id).cci"]
            } else {
                arguments += ["-device", "cxl-upstream,port=\(device.number),bus=\(device.port),id=\(device.id)"]
            }
            for port in device.downstreamPorts {
                arguments += ["-device", "cxl-downstream,port=\(port.number),bus=\(device.id),id=\(port.id),chassis=\(port.chassis),slot=\(port.slot)"]
            }
        }
        for device in cxl.memoryDevices {
            var properties = ["cxl-type3", "bus=\(device.port)"]
            if device.persistentSize != nil { properties.append("persistent-memdev=\(device.id).pmem") }
            if device.lsaSize != nil { properties.append("lsa=\(device.id).lsa") }
            if device.volatileSize != nil { properties.append("volatile-memdev=\(device.id).vmem") }
            if let dynamic = device.dynamicCapacity { properties += ["volatile-dc-memdev=\(device.id).dc", "num-dc-regions=\(dynamic.regions)"] }
            properties.append("id=\(device.id)")
            if let serial = device.serial { properties.append("sn=\(serial)") }
            arguments += ["-device", properties.joined(separator: ",")]
        }
        // All windows in one -M: QEMU refuses cxl-fmw.* options spread over several.
        var windowOptions: [String] = []
        for window in cxl.windows {
            windowOptions += window.targets.enumerated().map { "cxl-fmw.\(window.index).targets.\($0.offset)=\($0.element)" }
            windowOptions.append("cxl-fmw.\(window.index).size=\(ByteSize.qemu(window.size))")
            if let granularity = window.granularity {
                windowOptions.append("cxl-fmw.\(window.index).interleave-granularity=\(ByteSize.qemu(granularity))")
            }
        }
        if !windowOptions.isEmpty { arguments += ["-M", windowOptions.joined(separator: ",")] }
        return arguments
    }

    /// The domain as an XML tree, before libxml2 writes it out.
    public func domainTree(_ files: LabFiles) -> XMLTree {
        let qemu = DomainXMLNamespace.qemu
        let lab = DomainXMLNamespace.lab
        let arguments = qemuArguments(files)
        let commandLine = (files.kernelArguments + machine.kernelArguments).joined(separator: " ")
        return XMLTree("domain", ["type": files.domainType.rawValue], declaring: [qemu]) {
            XMLTree("name", text: files.domainName)
            XMLTree("metadata") {
                XMLTree("lab", namespace: lab, [
                    "run": files.metadata.runID, "cell": files.metadata.cellID, "owner-pid": String(files.metadata.ownerPID),
                    "created": UTCTimestamp.iso8601(files.metadata.created), "topology": name,
                ], declaring: [lab])
            }
            XMLTree("memory", ["unit": "MiB"], text: mebibytes(machine.memory))
            if let hotplug = memoryHotplug {
                XMLTree("maxMemory", ["slots": String(hotplug.slots), "unit": "MiB"], text: mebibytes(hotplug.maxMemory))
            }
            XMLTree("vcpu", text: String(machine.vcpus))
            // QEMU's default model, named so that features can be set. Without the hypervisor
            // bit the guest kernel believes it owns the machine and commits CXL regions
            // (docs/TOPOLOGIES.md says what else that changes).
            XMLTree("cpu", ["mode": "custom", "match": "exact", "check": "none"]) {
                XMLTree("model", ["fallback": "allow"], text: "qemu64")
                if !machine.hypervisorBit { XMLTree("feature", ["policy": "disable", "name": "hypervisor"]) }
                // What the file adds to qemu64 (e.g. pdpe1gb, 1 GiB pages); `require` is
                // libvirt's policy for a feature the guest must have.
                for feature in machine.cpuFeatures { XMLTree("feature", ["policy": "require", "name": feature]) }
                XMLTree("numa") {
                    for node in machine.numaNodes { numaCell(node) }
                }
            }
            XMLTree("os") {
                XMLTree("type", ["arch": "x86_64", "machine": machine.type], text: "hvm")
                XMLTree("kernel", text: files.kernel)
                XMLTree("initrd", text: files.initrd)
                XMLTree("cmdline", text: commandLine)
            }
            // NVDIMMs are described to the guest through ACPI (NFIT), CXL through ACPI (CEDT).
            XMLTree("features") { XMLTree("acpi") }
            XMLTree("on_poweroff", text: "destroy")
            XMLTree("on_reboot", text: "destroy")
            XMLTree("on_crash", text: "destroy")
            XMLTree("devices") {
                if let emulator = files.emulator { XMLTree("emulator", text: emulator) }
                // libvirt adds a USB controller unless told not to; a lab has no USB, and
                // probing the controller costs boot time under TCG.
                XMLTree("controller", ["type": "usb", "model": "none"])
                XMLTree("serial", ["type": "file"]) {
                    XMLTree("source", ["path": files.consoleLog])
                    XMLTree("target", ["port": "0"])
                }
                XMLTree("console", ["type": "file"]) {
                    XMLTree("source", ["path": files.consoleLog])
                    XMLTree("target", ["type": "serial", "port": "0"])
                }
                XMLTree("channel", ["type": "unix"]) {
                    XMLTree("source", ["mode": "bind", "path": files.agentSocket])
                    XMLTree("target", ["type": "virtio", "name": files.agentChannel])
                }
                for nvdimm in nvdimms { nvdimmElement(nvdimm, files) }
                XMLTree("memballoon", ["model": "none"])
            }
            if !arguments.isEmpty {
                XMLTree("commandline", namespace: qemu) {
                    for argument in arguments { XMLTree("arg", namespace: qemu, ["value": argument]) }
                }
            }
        }
    }

    private func numaCell(_ node: NUMANode) -> XMLTree {
        var cell = XMLTree("cell", ["id": String(node.id)]) {
            if let distances = node.distances {
                XMLTree("distances") {
                    for (other, value) in distances.enumerated() {
                        XMLTree("sibling", ["id": String(other), "value": String(value)])
                    }
                }
            }
        }
        if !node.cpus.isEmpty { cell.attributes.append(.init("cpus", node.cpuList)) }
        cell.attributes += [.init("memory", mebibytes(node.memory)), .init("unit", "MiB")]
        return cell
    }

    private func nvdimmElement(_ nvdimm: NVDIMM, _ files: LabFiles) -> XMLTree {
        XMLTree("memory", ["model": "nvdimm", "access": nvdimm.shared ? "shared" : "private"]) {
            XMLTree("source") {
                XMLTree("path", text: files.path(BackingName.nvdimm(nvdimm.id)))
                // Without <pmem/> libvirt asks QEMU to preallocate the whole backing file at
                // every start (measured: seconds per GiB under a lab's boot); a lab's backing
                // file is scratch, so QEMU's warning about a non-DAX file with pmem=on is moot.
                XMLTree("pmem")
            }
            XMLTree("target") {
                XMLTree("size", ["unit": "KiB"], text: String(nvdimm.deviceSize / ByteSize.kib))
                XMLTree("node", text: String(nvdimm.numaNode))
                if nvdimm.isLabelled {
                    XMLTree("label") {
                        XMLTree("size", ["unit": "KiB"], text: String(nvdimm.labelSize / ByteSize.kib))
                    }
                }
            }
        }
    }

    private func mebibytes(_ bytes: UInt64) -> String { String(bytes / ByteSize.mib) }

    struct Backend {
        var id: String
        var file: String
        var size: UInt64
        var purpose: String
    }

    /// The memory backends of one CXL memory device: ids use a '.', which user ids cannot
    /// hold, so they never collide.
    func cxlBackends(_ device: MemoryDevice) -> [Backend] {
        var backends: [Backend] = []
        if let size = device.persistentSize {
            backends.append(Backend(id: "\(device.id).pmem", file: BackingName.cxl(device.id, "pmem"), size: size, purpose: "persistent memory"))
        }
        if let size = device.lsaSize {
            backends.append(Backend(id: "\(device.id).lsa", file: BackingName.cxl(device.id, "lsa"), size: size, purpose: "label storage area"))
        }
        if let size = device.volatileSize {
            backends.append(Backend(id: "\(device.id).vmem", file: BackingName.cxl(device.id, "vmem"), size: size, purpose: "volatile memory"))
        }
        if let dynamic = device.dynamicCapacity {
            backends.append(Backend(id: "\(device.id).dc", file: BackingName.cxl(device.id, "dc"), size: dynamic.size, purpose: "dynamic capacity"))
        }
        return backends
    }
}

/// File names of backing files inside the lab directory.
enum BackingName {
    static func nvdimm(_ id: String) -> String { "nvdimm-\(id).img" }
    static func cxl(_ id: String, _ kind: String) -> String { "cxl-\(id)-\(kind).img" }
}
