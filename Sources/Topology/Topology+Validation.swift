import Foundation

extension TopologyDocument {
    /// Checks the document for sense against what the emulator offers, fills in defaults and
    /// assigns every number cxllab chooses. Throws every problem at once, including those
    /// found while reading.
    public func validate(capabilities: EmulatorCapabilities) throws(TopologyError) -> Topology {
        let sink = DiagnosticSink(file: file)
        for diagnostic in readingDiagnostics {
            sink.error(SourcePosition(line: diagnostic.line, column: diagnostic.column), diagnostic.message, fix: diagnostic.fix)
        }
        var validator = Validator(draft: draft, capabilities: capabilities, sink: sink)
        let topology = validator.run()
        guard sink.isEmpty, let topology else { throw TopologyError(sink.diagnostics) }
        return topology
    }
}

extension Topology {
    /// Reads and validates the text of a topology file named `file` (the name is used in
    /// diagnostics only: no I/O), throwing every problem of the file at once.
    public static func load(yaml: String, file: String, capabilities: EmulatorCapabilities) throws(TopologyError) -> Topology {
        try TopologyDocument.read(yaml: yaml, file: file).validate(capabilities: capabilities)
    }
}

/// What an id names, for "`rp0` is a root port, not a host bridge".
enum ComponentKind: String, Sendable {
    case nvdimm = "an NVDIMM"
    case hostBridge = "a host bridge"
    case rootPort = "a root port"
    case switchDevice = "a switch"
    case downstreamPort = "a downstream port"
    case memoryDevice = "a memory device"
}

private struct Validator {
    let draft: Draft
    let capabilities: EmulatorCapabilities
    let sink: DiagnosticSink

    /// Every id in the file, first place wins.
    private var ids: [String: (kind: ComponentKind, location: SourcePosition)] = [:]

    init(draft: Draft, capabilities: EmulatorCapabilities, sink: DiagnosticSink) {
        self.draft = draft
        self.capabilities = capabilities
        self.sink = sink
    }

    func error(_ location: SourcePosition, _ message: String, fix: String) {
        sink.error(location, message, fix: fix)
    }

    mutating func run() -> Topology? {
        let name = checkName()
        let machine = checkMachine()
        let nodeCount = machine?.numaNodes.count
        let nvdimms = checkNVDIMMs(nodeCount: nodeCount)
        let hotplug = checkHotplug(machine: machine, nvdimms: nvdimms)
        let cxl = checkCXL(nodeCount: nodeCount)
        checkKernelArguments()
        if let machine { checkLegacyPMem(machine) }
        guard sink.isEmpty, let machine, let nvdimms, let cxl else { return nil }
        return Topology(
            name: name, summary: draft.summary?.value ?? "", file: draft.file, machine: machine,
            nvdimms: nvdimms, cxl: cxl, memoryHotplug: hotplug
        )
    }

    // MARK: Names and ids

    func checkName() -> String {
        let base = (draft.file as NSString).lastPathComponent
        let fallback = ["yaml", "yml"].contains((base as NSString).pathExtension) ? (base as NSString).deletingPathExtension : base
        guard let name = draft.name else { return fallback }
        let allowed = name.value.range(of: #"^[a-z0-9][a-z0-9._-]{0,47}$"#, options: .regularExpression) != nil
        if !allowed {
            error(name.location, "the name `\(name.value)` is not a topology name",
                  fix: "use up to 48 lower-case letters, digits, '-', '_' and '.', starting with a letter or digit, e.g. `name: \(fallback.isEmpty ? "my-machine" : fallback)`")
        }
        return name.value
    }

    /// Records an id; reports a malformed or repeated one. Returns the id when usable.
    mutating func register(_ id: Located<String>?, _ kind: ComponentKind) -> String? {
        guard let id else { return nil }
        let value = id.value
        if value.range(of: #"^[A-Za-z][A-Za-z0-9_-]{0,31}$"#, options: .regularExpression) == nil {
            error(id.location, "the id `\(value)` is not a valid id",
                  fix: "use up to 32 letters, digits, '-' and '_', starting with a letter, e.g. `mem0`")
        } else if kind != .nvdimm, Validator.isReservedByLibvirt(value) {
            error(id.location, "the id `\(value)` looks like a name libvirt gives its own devices",
                  fix: "choose another id, e.g. `cxl-\(value)`; libvirt names its devices pci.N, usb, serial0, channel0, nvdimm0 and the like")
        }
        if let earlier = ids[value] {
            error(id.location, "the id `\(value)` is already used by \(earlier.kind.rawValue) at line \(earlier.location.line)",
                  fix: "give each NVDIMM and CXL component its own id")
            return nil
        }
        ids[value] = (kind, id.location)
        return value
    }

    /// QEMU device ids libvirt generates for the devices it adds itself.
    static func isReservedByLibvirt(_ id: String) -> Bool {
        id.range(of: #"^(pci|pcie|usb|ide|sata|serial|channel|console|virtio-serial|nvdimm|memnvdimm|dimm|memdimm|ram-node|balloon|input|video|sound|rng|watchdog|net|hostdev|tpm|fs|smartcard|redir|shmem|scsi|vsock|iommu|panic|hub|ua-.*)[0-9]*$"#,
                 options: .regularExpression) != nil
    }

    /// Resolves a reference to a component of one of `kinds`; reports a missing one or one of
    /// another kind.
    func resolve(_ reference: Located<String>?, as kinds: [ComponentKind], from what: String, candidates: [String]) -> String? {
        guard let reference else { return nil }
        let wanted = kinds.map(\.rawValue).joined(separator: " or ")
        let choices = candidates.isEmpty ? "" : " (\(candidates.map { "`\($0)`" }.joined(separator: ", ")))"
        guard let found = ids[reference.value] else {
            let nearest = Spelling.nearest(to: reference.value, in: candidates).map { "did you mean `\($0)`? " } ?? ""
            error(reference.location, "\(what) refers to `\(reference.value)`, but there is no such component",
                  fix: "\(nearest)name \(wanted) of this file\(choices), or add one with `id: \(reference.value)`")
            return nil
        }
        guard kinds.contains(found.kind) else {
            error(reference.location, "\(what) refers to `\(reference.value)`, which is \(found.kind.rawValue), not \(wanted)",
                  fix: "name \(wanted)\(choices)")
            return nil
        }
        return reference.value
    }

    // MARK: Machine

    func checkMachine() -> Topology.Machine? {
        let machine = draft.machine
        let location = machine.location ?? .start
        var valid = true
        if let type = machine.type, type.value != "q35" {
            error(type.location, "machine type `\(type.value)` is not supported: cxllab builds q35 machines only",
                  fix: "write `type: q35` or delete the line: CXL host bridges and NVDIMMs need q35's PCI Express and ACPI")
            valid = false
        }
        var vcpus = 2
        if let given = machine.vcpus {
            if (1...64).contains(given.value) { vcpus = given.value } else {
                error(given.location, "vcpus \(given.value) is out of range", fix: "use 1 to 64 vCPUs (guests run under TCG on few cores: 1 or 2 is plenty)")
                valid = false
            }
        }
        if let memory = machine.memory { valid = checkRAM(memory.value, at: memory.location, what: "memory") && valid }

        var nodes: [Topology.NUMANode] = []
        if let drafts = machine.numa {
            guard let checked = checkNUMA(drafts, vcpus: vcpus, vcpusValid: valid, listLocation: machine.numaLocation ?? location) else { return nil }
            nodes = checked
            let total = nodes.map(\.memory).checkedSum ?? UInt64.max
            if let memory = machine.memory {
                if memory.value != total {
                    error(memory.location, "memory \(ByteSize.describe(memory.value)) differs from the NUMA nodes' total, \(ByteSize.describe(total))",
                          fix: "make them equal, or delete `memory` (it is then the nodes' total)")
                    valid = false
                }
            } else if !checkRAM(total, at: machine.numaLocation ?? location, what: "the NUMA nodes' total memory") {
                valid = false
            }
        } else {
            let memory = machine.memory?.value ?? 2 * ByteSize.gib
            nodes = [Topology.NUMANode(id: 0, cpus: Array(0..<vcpus), memory: memory, distances: nil)]
        }
        guard valid, !nodes.isEmpty else { return nil }
        return Topology.Machine(
            type: "q35", vcpus: vcpus, memory: nodes.map(\.memory).checkedSum ?? 0, numaNodes: nodes,
            kernelArguments: machine.kernelArguments.map(\.value)
        )
    }

    func checkRAM(_ bytes: UInt64, at location: SourcePosition, what: String) -> Bool {
        if bytes < 256 * ByteSize.mib || bytes > ByteSize.tib {
            error(location, "\(what) \(ByteSize.describe(bytes)) is out of range", fix: "give the guest between 256M and 1T of RAM; 2G is plenty for dax tests")
            return false
        }
        if bytes % (2 * ByteSize.mib) != 0 {
            error(location, "\(what) \(ByteSize.describe(bytes)) is not a multiple of 2 MiB",
                  fix: "round it to a multiple of 2 MiB, e.g. \(ByteSize.qemu((bytes / (2 * ByteSize.mib)) * 2 * ByteSize.mib))")
            return false
        }
        return true
    }

    func checkNUMA(_ drafts: [NUMADraft], vcpus: Int, vcpusValid: Bool, listLocation: SourcePosition) -> [Topology.NUMANode]? {
        guard !drafts.isEmpty else {
            error(listLocation, "`numa` lists no nodes", fix: "list at least one node, e.g. `- {cpus: 0-1, memory: 2G}`, or delete `numa`")
            return nil
        }
        guard drafts.count <= 8 else {
            error(drafts[8].location, "\(drafts.count) NUMA nodes are more than cxllab's 8", fix: "use at most 8 nodes")
            return nil
        }
        var valid = true
        var owner: [Int: Int] = [:]
        var nodes: [Topology.NUMANode] = []
        for node in drafts {
            var memory: UInt64 = 0
            if let given = node.memory {
                if given.value == 0 || given.value % (2 * ByteSize.mib) != 0 || given.value > ByteSize.tib {
                    error(given.location, "NUMA node \(node.index)'s memory \(ByteSize.describe(given.value)) is not a positive multiple of 2 MiB",
                          fix: "give each node a multiple of 2 MiB, e.g. 1G")
                    valid = false
                }
                memory = given.value
            } else {
                error(node.location, "NUMA node \(node.index) has no `memory`", fix: "add `memory: 1G` (every node needs some RAM)")
                valid = false
            }
            var cpus: [Int] = []
            if node.cpusUnreadable { valid = false }
            if let given = node.cpus {
                let outside = given.value.filter { $0 >= vcpus }
                if vcpusValid, !outside.isEmpty {
                    error(given.location, "NUMA node \(node.index) has vCPU\(outside.count == 1 ? "" : "s") \(Topology.rangeList(outside)), but the machine has \(vcpus) vCPU\(vcpus == 1 ? "" : "s") (0-\(vcpus - 1))",
                          fix: "use vCPUs below \(vcpus), or raise `vcpus`")
                    valid = false
                }
                for cpu in given.value where cpu < vcpus {
                    if let other = owner[cpu], other != node.index {
                        error(given.location, "vCPU \(cpu) is in NUMA node \(other) and node \(node.index)", fix: "put each vCPU in one node")
                        valid = false
                    } else {
                        owner[cpu] = node.index
                    }
                }
                cpus = Array(Set(given.value)).sorted()
            }
            nodes.append(Topology.NUMANode(id: node.index, cpus: cpus, memory: memory, distances: node.distances?.value.map(\.value)))
        }
        if vcpusValid, valid {
            let missing = (0..<vcpus).filter { owner[$0] == nil }
            if !missing.isEmpty {
                let lower = missing.count < vcpus ? ", or lower `vcpus` to \(vcpus - missing.count)" : ""
                error(listLocation, "vCPU\(missing.count == 1 ? "" : "s") \(Topology.rangeList(missing)) \(missing.count == 1 ? "is" : "are") in no NUMA node",
                      fix: "add \(missing.count == 1 ? "it" : "them") to a node's `cpus`\(lower)")
                valid = false
            }
        }
        // Distances: all nodes or none, one per node, 10 to itself, 11-254 to others.
        let withDistances = drafts.filter { $0.distances != nil }
        if !withDistances.isEmpty {
            for node in drafts where node.distances == nil {
                error(node.location, "NUMA node \(node.index) has no `distances`, but other nodes do",
                      fix: "give every node `distances` (one per node, 10 to itself), or none")
                valid = false
            }
            for node in withDistances {
                let list = node.distances!
                if list.value.count != drafts.count {
                    error(list.location, "NUMA node \(node.index) has \(list.value.count) distances for \(drafts.count) nodes",
                          fix: "list one distance per node, in node order, 10 to itself")
                    valid = false
                    continue
                }
                for (other, distance) in list.value.enumerated() {
                    if other == node.index, distance.value != 10 {
                        error(distance.location, "NUMA node \(node.index)'s distance to itself is \(distance.value)", fix: "a node's distance to itself is 10")
                        valid = false
                    } else if other != node.index, !(11...254).contains(distance.value) {
                        error(distance.location, "NUMA node \(node.index)'s distance to node \(other) is \(distance.value)",
                              fix: "use 11 to 254 between different nodes (20 is typical for a neighbour)")
                        valid = false
                    }
                }
            }
        }
        return valid ? nodes : nil
    }

    /// Each argument is one word of printable text: the command line is written into XML and
    /// split on spaces by the kernel.
    func checkKernelArguments() {
        for argument in draft.machine.kernelArguments {
            let bad = argument.value.unicodeScalars.first { $0.properties.generalCategory == .control || $0 == " " || $0.properties.isWhitespace }
            if let bad {
                let what = bad.properties.isWhitespace ? "white space" : "the control character U+\(String(bad.value, radix: 16, uppercase: true))"
                error(argument.location, "the kernel argument `\(argument.value.unicodeScalars.filter { $0.properties.generalCategory != .control }.map(String.init).joined())` holds \(what)",
                      fix: "write each argument as one word of printable text; list several as `kernel_cmdline: [a=1, b=2]` or `kernel_cmdline: a=1 b=2`")
            } else if argument.value.isEmpty {
                error(argument.location, "a kernel argument is empty", fix: "delete the empty argument")
            }
        }
    }

    /// `memmap=SIZE!ADDRESS` makes the kernel treat guest RAM as legacy persistent memory, so
    /// the range must be RAM the guest has, clear of where the kernel and initramfs load.
    func checkLegacyPMem(_ machine: Topology.Machine) {
        let memory = machine.memory
        // q35 keeps RAM below 4 GiB up to 2 GiB once it reaches 2.75 GiB; the rest sits at 4 GiB.
        let low = memory >= 0xB000_0000 ? 2 * ByteSize.gib : memory
        let high = memory - low
        for argument in draft.machine.kernelArguments where argument.value.hasPrefix("memmap=") && argument.value.contains("!") {
            let spec = argument.value.dropFirst("memmap=".count)
            let parts = spec.split(separator: "!", omittingEmptySubsequences: false)
            let fix = "write `memmap=SIZE!START` inside guest RAM, e.g. `memmap=512M!1G` for a 2G guest"
            guard parts.count == 2, case .success(let size) = ByteSize.parse(String(parts[0])), case .success(let start) = ByteSize.parse(String(parts[1])), size > 0 else {
                error(argument.location, "`\(argument.value)` is not of the form memmap=SIZE!START", fix: fix)
                continue
            }
            let end = start + size
            let inLow = start >= ByteSize.gib && end <= low
            let inHigh = start >= 4 * ByteSize.gib && end <= 4 * ByteSize.gib + high
            if !inLow && !inHigh {
                let ram = high > 0 ? "1 GiB to \(ByteSize.describe(low)) and 4 GiB to \(ByteSize.describe(4 * ByteSize.gib + high))" : "1 GiB to \(ByteSize.describe(low))"
                error(argument.location, "`\(argument.value)` covers \(ByteSize.describe(start)) to \(ByteSize.describe(end)), which is not guest RAM clear of the kernel and initramfs (usable: \(ram))",
                      fix: "move START into that range and keep START+SIZE within it, or give the machine more memory")
            } else if size % (2 * ByteSize.mib) != 0 || start % (2 * ByteSize.mib) != 0 {
                error(argument.location, "`\(argument.value)` is not aligned to 2 MiB", fix: "use a size and start that are multiples of 2 MiB; ndctl refuses a misaligned region")
            } else if memory - size < 512 * ByteSize.mib {
                error(argument.location, "`\(argument.value)` leaves the guest \(ByteSize.describe(memory - size)) of RAM", fix: "leave at least 512 MiB of RAM, or give the machine more memory")
            }
        }
    }

    // MARK: NVDIMMs

    mutating func checkNVDIMMs(nodeCount: Int?) -> [Topology.NVDIMM]? {
        if !draft.nvdimms.isEmpty, !capabilities.hasNVDIMM {
            error(draft.nvdimmsLocation ?? .start, "QEMU \(capabilities.version) cannot emulate NVDIMMs (it lacks the nvdimm device or the nvdimm machine option)",
                  fix: "install a QEMU with NVDIMM support (`make setup` installs QEMU 10), or remove `nvdimms`")
        }
        var result: [Topology.NVDIMM] = []
        var valid = true
        for item in draft.nvdimms {
            let id = register(item.id, .nvdimm)
            let name = id.map { "NVDIMM `\($0)`" } ?? "this NVDIMM"
            var label = Topology.minimumLabelSize
            if let given = item.labelSize {
                label = given.value
                if label != 0, label < Topology.minimumLabelSize || label % (4 * ByteSize.kib) != 0 || label > 64 * ByteSize.mib {
                    error(given.location, "\(name)'s label_size \(ByteSize.describe(label)) is not a label area size",
                          fix: "use 0 for no labels, or a multiple of 4 KiB from 128K to 64M (128K holds plenty of namespace labels)")
                    valid = false
                }
            }
            var size: UInt64 = 0
            if let given = item.size {
                size = given.value
                if size == 0 || size % Topology.nvdimmAlignment != 0 {
                    let suggestion = ByteSize.qemu(max(1, (size + Topology.nvdimmAlignment - 1) / Topology.nvdimmAlignment) * Topology.nvdimmAlignment)
                    error(given.location, "\(name)'s size \(ByteSize.describe(size)) is not a positive multiple of 2 MiB",
                          fix: "write the usable size as a multiple of 2 MiB (e.g. \(suggestion)); cxllab adds room for the labels itself")
                    valid = false
                }
            } else { valid = false }
            var node = 0
            if let given = item.numaNode {
                node = given.value
                if let nodeCount, !(0..<nodeCount).contains(node) {
                    error(given.location, "\(name) is on NUMA node \(node), which does not exist (the machine has node\(nodeCount == 1 ? " 0" : "s 0-\(nodeCount - 1)"))",
                          fix: nodeCount == 1 ? "use `numa_node: 0`, or add nodes under machine.numa" : "use a node from 0 to \(nodeCount - 1), or add nodes under machine.numa")
                    valid = false
                }
            }
            guard let id else { valid = false; continue }
            result.append(Topology.NVDIMM(id: id, size: size, labelSize: label, numaNode: node, shared: item.shared?.value ?? true))
        }
        return valid ? result : nil
    }

    func checkHotplug(machine: Topology.Machine?, nvdimms: [Topology.NVDIMM]?) -> Topology.MemoryHotplug? {
        let given = draft.machine
        guard !draft.nvdimms.isEmpty || given.maxMemory != nil || given.slots != nil else { return nil }
        var slots = max(draft.nvdimms.count, 1)
        if let requested = given.slots {
            if !(1...256).contains(requested.value) {
                error(requested.location, "memory_slots \(requested.value) is out of range", fix: "use 1 to 256 slots")
                return nil
            }
            slots = requested.value
            if draft.nvdimms.count > slots {
                error(requested.location, "\(draft.nvdimms.count) NVDIMMs need \(draft.nvdimms.count) memory slots, but memory_slots is \(slots)",
                      fix: "raise memory_slots to \(draft.nvdimms.count) or more, or delete it (cxllab then gives each NVDIMM a slot)")
            }
        }
        guard let machine, let nvdimms else { return nil }
        let devices = nvdimms.map(\.deviceSize).checkedSum ?? UInt64.max
        let needed = machine.memory.addingReportingOverflow(devices)
        guard !needed.overflow else { return nil }
        if let requested = given.maxMemory {
            if requested.value % (2 * ByteSize.mib) != 0 {
                error(requested.location, "max_memory \(ByteSize.describe(requested.value)) is not a multiple of 2 MiB", fix: "round it to a multiple of 1G")
                return nil
            }
            if requested.value < needed.partialValue {
                let suggestion = ByteSize.qemu(ByteSize.alignUp(needed.partialValue, to: ByteSize.gib) ?? needed.partialValue)
                error(requested.location,
                      "RAM \(ByteSize.describe(machine.memory)) and the NVDIMMs' \(ByteSize.describe(devices)) (labels included) need \(ByteSize.describe(needed.partialValue)), more than max_memory \(ByteSize.describe(requested.value))",
                      fix: "raise max_memory to \(suggestion) or more, or delete it (cxllab then sizes it)")
                return nil
            }
            return Topology.MemoryHotplug(maxMemory: requested.value, slots: slots)
        }
        return Topology.MemoryHotplug(maxMemory: ByteSize.alignUp(needed.partialValue, to: ByteSize.gib) ?? needed.partialValue, slots: slots)
    }

    // MARK: CXL

    mutating func checkCXL(nodeCount: Int?) -> Topology.CXL? {
        let cxl = draft.cxl
        let any = !(cxl.hostBridges.isEmpty && cxl.rootPorts.isEmpty && cxl.switches.isEmpty && cxl.memoryDevices.isEmpty && cxl.windows.isEmpty)
        guard any else { return .empty }
        let cxlLocation = cxl.location ?? .start
        if !capabilities.hasCXL {
            error(cxlLocation, "QEMU \(capabilities.version) cannot emulate CXL (it lacks the pxb-cxl device or the cxl machine option)",
                  fix: "install a QEMU with CXL emulation (`make setup` installs QEMU 10), or remove `cxl`")
        }
        var valid = true

        // Register every id first, so references may point forward.
        let hostBridgeIDs = cxl.hostBridges.map { register($0.id, .hostBridge) }
        let rootPortIDs = cxl.rootPorts.map { register($0.id, .rootPort) }
        let switchIDs = cxl.switches.map { register($0.id, .switchDevice) }
        let downstreamIDs = cxl.switches.map { $0.downstreamPorts.map { register($0.id, .downstreamPort) } }
        let deviceIDs = cxl.memoryDevices.map { register($0.id, .memoryDevice) }
        if hostBridgeIDs.contains(nil) || rootPortIDs.contains(nil) || switchIDs.contains(nil) || downstreamIDs.joined().contains(nil) || deviceIDs.contains(nil) {
            valid = false
        }
        let hostBridgeNames = hostBridgeIDs.compactMap { $0 }
        let portNames = rootPortIDs.compactMap { $0 } + downstreamIDs.joined().compactMap { $0 }

        func need(_ device: String, at location: SourcePosition, for what: String) {
            // Without CXL at all, the one error above says it.
            if capabilities.hasCXL, !capabilities.devices.contains(device) {
                error(location, "QEMU \(capabilities.version) has no \(device) device (needed for \(what))",
                      fix: "install a newer QEMU (`make setup` installs QEMU 10), or remove \(what)")
            }
        }

        // Host bridges.
        if cxl.hostBridges.isEmpty {
            error(cxlLocation, "the CXL section has no host bridge", fix: "add `host_bridges: [{id: hb0}]` and root ports on it")
            valid = false
        }
        if cxl.hostBridges.count > Topology.hostBridgePCISlots.count {
            error(cxl.hostBridges[Topology.hostBridgePCISlots.count].location,
                  "\(cxl.hostBridges.count) host bridges are more than the \(Topology.hostBridgePCISlots.count) cxllab can place on pcie.0",
                  fix: "use at most \(Topology.hostBridgePCISlots.count) host bridges")
            valid = false
        }
        var hostBridgeNUMA: [Int?] = []
        for bridge in cxl.hostBridges {
            if let node = bridge.numaNode, let nodeCount, !(0..<nodeCount).contains(node.value) {
                error(node.location, "host bridge `\(bridge.id?.value ?? "?")` is on NUMA node \(node.value), which does not exist",
                      fix: "use a node from 0 to \(nodeCount - 1), or add nodes under machine.numa")
                valid = false
            }
            if let number = bridge.busNumber, !(Topology.firstCXLBus...254).contains(number.value) {
                let fix = number.value < Topology.firstCXLBus
                    ? "use \(Topology.firstCXLBus) or more: buses below \(Topology.firstCXLBus) belong to the root ports libvirt adds on pcie.0 (or delete bus_nr to let cxllab choose)"
                    : "use a bus number below 255, leaving room for the buses below the host bridge"
                error(number.location, "bus_nr \(number.value) is out of range", fix: fix)
                valid = false
            }
            hostBridgeNUMA.append(bridge.numaNode?.value)
        }

        // Root ports.
        if !cxl.rootPorts.isEmpty { need("cxl-rp", at: cxl.rootPorts[0].location, for: "root ports") }
        var rootPortBridge: [String: String] = [:]
        for (index, port) in cxl.rootPorts.enumerated() {
            let what = "root port `\(rootPortIDs[index] ?? port.id?.value ?? "?")`"
            if let bridge = resolve(port.hostBridge, as: [.hostBridge], from: what, candidates: hostBridgeNames), let id = rootPortIDs[index] {
                rootPortBridge[id] = bridge
            } else { valid = false }
            valid = checkPortNumbers(number: port.number, chassis: port.chassis, slot: port.slot, what: what) && valid
        }

        // Switches: resolve the port each plugs into; the host bridge comes from walking up.
        if !cxl.switches.isEmpty {
            need("cxl-upstream", at: cxl.switches[0].location, for: "switches")
            need("cxl-downstream", at: cxl.switches[0].location, for: "switches")
        }
        var downstreamOwner: [String: Int] = [:]  // downstream port id -> switch index
        for (index, ports) in downstreamIDs.enumerated() {
            for id in ports.compactMap({ $0 }) { downstreamOwner[id] = index }
        }
        var switchParent: [Int: String] = [:]  // switch index -> port id
        var occupant: [String: (name: String, location: SourcePosition)] = [:]
        for (index, device) in cxl.switches.enumerated() {
            let what = "switch `\(switchIDs[index] ?? device.id?.value ?? "?")`"
            if let port = resolve(device.port, as: [.rootPort, .downstreamPort], from: what, candidates: portNames) {
                switchParent[index] = port
                if let earlier = occupant[port] {
                    error(device.port!.location, "port `\(port)` already holds \(earlier.name) (line \(earlier.location.line))",
                          fix: "a port holds one device: plug \(what) into another port")
                    valid = false
                } else {
                    occupant[port] = (what, device.location)
                }
            } else { valid = false }
            if let mailbox = device.mailbox, mailbox.value, !capabilities.hasSwitchMailbox {
                error(mailbox.location, "QEMU \(capabilities.version) has no cxl-switch-mailbox-cci device for \(what)'s mailbox",
                      fix: "write `mailbox: false`, or install a newer QEMU (`make setup` installs QEMU 10, which has it)")
                valid = false
            }
            if device.downstreamPorts.isEmpty, let location = device.downstreamLocation {
                error(location, "\(what) has no downstream ports", fix: "list at least one, e.g. `downstream_ports: [\(switchIDs[index] ?? "sw0")p0]`")
                valid = false
            } else if device.downstreamPorts.count > 32 {
                error(device.downstreamPorts[32].location, "\(what) has \(device.downstreamPorts.count) downstream ports, more than the 32 its internal bus holds",
                      fix: "use at most 32 downstream ports per switch, or add another switch")
                valid = false
            }
            if let number = device.number, !(0...255).contains(number.value) {
                error(number.location, "\(what)'s upstream port number \(number.value) is out of range", fix: "use 0 to 255")
                valid = false
            }
            for port in device.downstreamPorts {
                valid = checkPortNumbers(number: port.number, chassis: port.chassis, slot: port.slot, what: "downstream port `\(port.id?.value ?? "?")`") && valid
            }
        }
        // Walk each switch up to its host bridge; a loop of switches has none.
        var switchBridge: [Int: String] = [:]
        var switchDepth: [Int: Int] = [:]
        for index in cxl.switches.indices {
            var seen: Set<Int> = [index]
            var current = index
            var depth = 0
            while let port = switchParent[current] {
                if let bridge = rootPortBridge[port] {
                    switchBridge[index] = bridge
                    switchDepth[index] = depth
                    break
                }
                guard let parent = downstreamOwner[port] else { break }
                if seen.contains(parent) {
                    error(cxl.switches[index].location, "switch `\(switchIDs[index] ?? "?")` plugs, through switches, into its own downstream port",
                          fix: "plug the first switch of a chain into a root port")
                    valid = false
                    break
                }
                seen.insert(parent)
                current = parent
                depth += 1
            }
        }

        // Memory devices.
        if !cxl.memoryDevices.isEmpty { need("cxl-type3", at: cxl.memoryDevices[0].location, for: "memory devices") }
        var devices: [Topology.MemoryDevice] = []
        for (index, device) in cxl.memoryDevices.enumerated() {
            let what = "memory device `\(deviceIDs[index] ?? device.id?.value ?? "?")`"
            var bridge: String?
            if let port = resolve(device.port, as: [.rootPort, .downstreamPort], from: what, candidates: portNames) {
                if let earlier = occupant[port] {
                    error(device.port!.location, "port `\(port)` already holds \(earlier.name) (line \(earlier.location.line))",
                          fix: "a port holds one device: plug \(what) into a free port, or add a root port or a switch")
                    valid = false
                } else {
                    occupant[port] = (what, device.location)
                }
                bridge = rootPortBridge[port] ?? downstreamOwner[port].flatMap { switchBridge[$0] }
            } else { valid = false }
            guard let checked = checkMemoryDevice(device, what: what) else { valid = false; continue }
            if let id = deviceIDs[index], let port = device.port?.value, let bridge {
                devices.append(Topology.MemoryDevice(
                    id: id, port: port, hostBridge: bridge, persistentSize: checked.persistent, lsaSize: checked.lsa,
                    volatileSize: checked.volatile, dynamicCapacity: checked.dynamic, serial: checked.serial
                ))
            }
        }

        // Windows.
        var windows: [Topology.Window] = []
        for window in cxl.windows {
            let what = "window \(window.index)"
            var targets: [String] = []
            var windowValid = true
            for target in window.targets ?? [] {
                guard let bridge = resolve(target, as: [.hostBridge], from: what, candidates: hostBridgeNames) else { windowValid = false; continue }
                if targets.contains(bridge) {
                    error(target.location, "\(what) lists host bridge `\(bridge)` twice", fix: "list each host bridge once: the targets are the interleave ways")
                    windowValid = false
                }
                targets.append(bridge)
            }
            let ways = window.targets?.count ?? 0
            if window.targets != nil {
                if ways == 0 {
                    error(window.targetsLocation ?? window.location, "\(what) has no targets", fix: "list the host bridges it interleaves across, e.g. `targets: [hb0]`")
                    windowValid = false
                } else if !Topology.interleaveWays.contains(ways) {
                    error(window.targetsLocation ?? window.location, "\(what) has \(ways) targets, a \(ways)-way interleave, which CXL does not have",
                          fix: "use 1, 2, 3, 4, 6, 8, 12 or 16 targets")
                    windowValid = false
                }
            }
            if let size = window.size, ways > 0 {
                let unit = Topology.cxlCapacityUnit * UInt64(ways)
                if size.value == 0 || size.value % unit != 0 {
                    let suggestion = ByteSize.qemu(max(1, (size.value + unit - 1) / unit) * unit)
                    error(size.location, "\(what)'s size \(ByteSize.describe(size.value)) is not a multiple of \(ByteSize.describe(unit)) (256 MiB for each of its \(ways) interleave way\(ways == 1 ? "" : "s"))",
                          fix: "use a multiple of \(ByteSize.qemu(unit)), e.g. \(suggestion)")
                    windowValid = false
                }
            }
            if let granularity = window.granularity, !Topology.interleaveGranularities.contains(granularity.value) {
                error(granularity.location, "\(what)'s granularity \(ByteSize.describe(granularity.value)) is not an interleave granularity",
                      fix: "use a power of two from 256 bytes to 16K: 256, 512, 1K, 2K, 4K, 8K or 16K")
                windowValid = false
            }
            if windowValid, let size = window.size {
                windows.append(Topology.Window(index: window.index, targets: targets, size: size.value, granularity: window.granularity?.value))
            } else {
                valid = false
            }
        }
        if !cxl.memoryDevices.isEmpty, cxl.windows.isEmpty {
            error(cxl.windowsLocation ?? cxlLocation, "the CXL memory devices have no fixed memory window to be mapped into",
                  fix: "add `windows: [{targets: [\(hostBridgeNames.first ?? "hb0")], size: 4G}]`")
            valid = false
        } else if !cxl.windows.isEmpty, valid {
            let covered = Set(windows.flatMap(\.targets))
            for (index, device) in devices.enumerated() where !covered.contains(device.hostBridge) {
                error(cxl.memoryDevices[index].location, "memory device `\(device.id)` is below host bridge `\(device.hostBridge)`, which no window targets",
                      fix: "add `\(device.hostBridge)` to a window's targets, or add a window for it")
                valid = false
            }
        }

        // Host bridges without root ports, and the numbers cxllab assigns.
        for (index, bridge) in cxl.hostBridges.enumerated() {
            if let id = hostBridgeIDs[index], !cxl.rootPorts.contains(where: { $0.hostBridge?.value == id }) {
                error(bridge.location, "host bridge `\(id)` has no root ports", fix: "add a root port with `host_bridge: \(id)`, or remove the host bridge")
                valid = false
            }
        }
        guard valid else { return nil }

        let switchOrder = cxl.switches.indices.sorted { (switchDepth[$0] ?? 0, $0) < (switchDepth[$1] ?? 0, $1) }
        return assignNumbers(
            hostBridgeIDs: hostBridgeIDs.map { $0! }, hostBridgeNUMA: hostBridgeNUMA, rootPortIDs: rootPortIDs.map { $0! },
            rootPortBridge: rootPortBridge, switchIDs: switchIDs.map { $0! }, downstreamIDs: downstreamIDs.map { $0.map { $0! } },
            switchParent: switchParent, switchBridge: switchBridge, switchOrder: switchOrder, devices: devices, windows: windows
        )
    }

    func checkPortNumbers(number: Located<Int>?, chassis: Located<Int>?, slot: Located<Int>?, what: String) -> Bool {
        var valid = true
        if let number, !(0...255).contains(number.value) {
            error(number.location, "\(what)'s number \(number.value) is out of range", fix: "use a port number from 0 to 255")
            valid = false
        }
        if let chassis, !(0...255).contains(chassis.value) {
            error(chassis.location, "\(what)'s chassis \(chassis.value) is out of range", fix: "use chassis 0 (or up to 255)")
            valid = false
        }
        if let slot, !(0...8191).contains(slot.value) {
            error(slot.location, "\(what)'s slot \(slot.value) is out of range", fix: "use a slot from 0 to 8191, or delete `slot` to let cxllab choose")
            valid = false
        }
        if let slot, slot.value == 0, (chassis?.value ?? 0) != 0 {
            error(slot.location, "\(what) has chassis \(chassis!.value) slot 0, where libvirt puts its own PCI Express root ports",
                  fix: "use chassis 0, or a slot other than 0")
            valid = false
        }
        return valid
    }

    struct CheckedCapacity {
        var persistent: UInt64?
        var lsa: UInt64?
        var volatile: UInt64?
        var dynamic: Topology.DynamicCapacity?
        var serial: UInt64?
    }

    func checkMemoryDevice(_ device: MemoryDeviceDraft, what: String) -> CheckedCapacity? {
        var valid = true
        var result = CheckedCapacity()
        func property(_ name: String, at location: SourcePosition, for feature: String) {
            if !capabilities.type3Properties.contains(name) {
                error(location, "QEMU \(capabilities.version)'s cxl-type3 has no \(name) property, so it cannot give \(what) \(feature)",
                      fix: "remove it from the device, or install a newer QEMU (`make setup` installs QEMU 10)")
                valid = false
            }
        }
        func capacity(_ size: Located<UInt64>?, _ name: String) -> UInt64? {
            guard let size else { return nil }
            if size.value == 0 || size.value % Topology.cxlCapacityUnit != 0 {
                let suggestion = ByteSize.qemu(max(1, (size.value + Topology.cxlCapacityUnit - 1) / Topology.cxlCapacityUnit) * Topology.cxlCapacityUnit)
                error(size.location, "\(what)'s \(name) size \(ByteSize.describe(size.value)) is not a positive multiple of 256 MiB",
                      fix: "CXL counts capacity in 256 MiB units: use e.g. \(suggestion)")
                valid = false
                return nil
            }
            return size.value
        }
        if device.persistent == nil, device.volatile == nil, device.dynamicCapacity == nil {
            error(device.location, "\(what) has no memory", fix: "give it `persistent: 256M`, `volatile: 256M` or `dynamic_capacity: {size: 512M}`")
            valid = false
        }
        if let persistent = device.persistent {
            property("persistent-memdev", at: persistent.location, for: "persistent memory")
            result.persistent = capacity(persistent, "persistent")
            if device.lsa == nil { result.lsa = 256 * ByteSize.mib }
        }
        if let volatile = device.volatile {
            property("volatile-memdev", at: volatile.location, for: "volatile memory")
            result.volatile = capacity(volatile, "volatile")
        }
        if let lsa = device.lsa {
            property("lsa", at: lsa.location, for: "a label storage area")
            if lsa.value < Topology.minimumLabelSize || lsa.value % (4 * ByteSize.kib) != 0 || lsa.value > ByteSize.gib {
                error(lsa.location, "\(what)'s lsa \(ByteSize.describe(lsa.value)) is not a label storage area size",
                      fix: "use a multiple of 4 KiB from 128K to 1G, e.g. 256M")
                valid = false
            }
            result.lsa = lsa.value
        }
        if let dynamic = device.dynamicCapacity {
            if !capabilities.hasDynamicCapacity {
                error(dynamic.location, "QEMU \(capabilities.version) cannot give \(what) dynamic capacity (its cxl-type3 lacks volatile-dc-memdev and num-dc-regions)",
                      fix: "remove `dynamic_capacity`, or install a newer QEMU (`make setup` installs QEMU 10, which has it)")
                valid = false
            }
            var regions = 1
            if let given = dynamic.regions {
                if !(1...8).contains(given.value) {
                    error(given.location, "\(what) has \(given.value) dynamic capacity regions", fix: "use 1 to 8 regions")
                    valid = false
                } else {
                    regions = given.value
                }
            }
            if let size = dynamic.size {
                let unit = Topology.cxlCapacityUnit * UInt64(regions)
                if size.value == 0 || size.value % unit != 0 {
                    error(size.location, "\(what)'s dynamic capacity \(ByteSize.describe(size.value)) does not split into \(regions) region\(regions == 1 ? "" : "s") of whole 256 MiB units",
                          fix: "use a multiple of \(ByteSize.qemu(unit)) (\(regions) × 256M)")
                    valid = false
                } else {
                    result.dynamic = Topology.DynamicCapacity(size: size.value, regions: regions)
                }
            } else { valid = false }
        }
        if let serial = device.serial {
            if serial.value < 0 {
                error(serial.location, "\(what)'s serial \(serial.value) is negative", fix: "use a serial number of 0 or more")
                valid = false
            } else {
                result.serial = UInt64(serial.value)
            }
        }
        return valid ? result : nil
    }

    // MARK: Numbers cxllab assigns

    /// Bus numbers, PCI slots, port numbers, chassis and slots, in file order, explicit ones
    /// kept; collisions among explicit ones reported.
    func assignNumbers(
        hostBridgeIDs: [String], hostBridgeNUMA: [Int?], rootPortIDs: [String], rootPortBridge: [String: String],
        switchIDs: [String], downstreamIDs: [[String]], switchParent: [Int: String], switchBridge: [Int: String],
        switchOrder: [Int], devices: [Topology.MemoryDevice], windows: [Topology.Window]
    ) -> Topology.CXL? {
        let cxl = draft.cxl
        var valid = true

        // Port numbers within each host bridge and each switch.
        var rootNumbers: [Int] = Array(repeating: 0, count: cxl.rootPorts.count)
        for bridge in hostBridgeIDs {
            let members = cxl.rootPorts.indices.filter { rootPortBridge[rootPortIDs[$0]] == bridge }
            guard let numbers = assignPortNumbers(members.map { cxl.rootPorts[$0].number }, ids: members.map { rootPortIDs[$0] }, within: "host bridge `\(bridge)`") else {
                valid = false
                continue
            }
            for (member, number) in zip(members, numbers) { rootNumbers[member] = number }
        }
        var downstreamNumbers: [[Int]] = []
        var upstreamNumbers: [Int] = []
        for (index, device) in cxl.switches.enumerated() {
            let numbers = assignPortNumbers(device.downstreamPorts.map(\.number), ids: downstreamIDs[index], within: "switch `\(switchIDs[index])`") ?? []
            if numbers.count != device.downstreamPorts.count { valid = false }
            downstreamNumbers.append(numbers)
            if let given = device.number {
                if numbers.contains(given.value) {
                    error(given.location, "switch `\(switchIDs[index])`'s upstream port number \(given.value) is also a downstream port's",
                          fix: "give the upstream port a number none of its downstream ports has, or delete `number`")
                    valid = false
                }
                upstreamNumbers.append(given.value)
            } else {
                upstreamNumbers.append((0...).first { !numbers.contains($0) }!)
            }
        }

        // Chassis and slots: explicit pairs first, then the rest from slot 2 up in chassis 0.
        struct PortPlace { var id: String; var chassis: Located<Int>?; var slot: Located<Int>?; var location: SourcePosition }
        var places: [PortPlace] = cxl.rootPorts.indices.map { PortPlace(id: rootPortIDs[$0], chassis: cxl.rootPorts[$0].chassis, slot: cxl.rootPorts[$0].slot, location: cxl.rootPorts[$0].location) }
        for index in switchOrder {
            for (port, id) in zip(cxl.switches[index].downstreamPorts, downstreamIDs[index]) {
                places.append(PortPlace(id: id, chassis: port.chassis, slot: port.slot, location: port.location))
            }
        }
        var taken: [Int: [Int: String]] = [:]  // chassis -> slot -> port id
        var assigned: [String: (chassis: Int, slot: Int)] = [:]
        for place in places {
            guard let slot = place.slot else { continue }
            let chassis = place.chassis?.value ?? 0
            if let other = taken[chassis]?[slot.value] {
                error(slot.location, "chassis \(chassis) slot \(slot.value) of port `\(place.id)` is also port `\(other)`'s",
                      fix: "give each port its own slot, or delete `slot` to let cxllab choose")
                valid = false
            }
            taken[chassis, default: [:]][slot.value] = place.id
            assigned[place.id] = (chassis, slot.value)
        }
        for place in places where place.slot == nil {
            let chassis = place.chassis?.value ?? 0
            let slot = (Topology.firstPortSlot...).first { taken[chassis]?[$0] == nil }!
            taken[chassis, default: [:]][slot] = place.id
            assigned[place.id] = (chassis, slot)
        }

        // Bus numbers: each host bridge needs its root bus, a bus below each root port, and
        // per switch an internal bus plus one below each downstream port.
        var busesNeeded: [String: Int] = [:]
        for bridge in hostBridgeIDs {
            let ports = rootPortIDs.filter { rootPortBridge[$0] == bridge }.count
            let switches = cxl.switches.indices.filter { switchBridge[$0] == bridge }
            busesNeeded[bridge] = 1 + ports + switches.map { 1 + cxl.switches[$0].downstreamPorts.count }.reduce(0, +)
        }
        var ranges: [String: ClosedRange<Int>] = [:]
        var order: [String] = []
        for (index, bridge) in cxl.hostBridges.enumerated() {
            guard let given = bridge.busNumber else { continue }
            let id = hostBridgeIDs[index]
            let range = given.value...(given.value + busesNeeded[id]! - 1)
            if range.upperBound > 255 {
                error(given.location, "host bridge `\(id)` needs buses \(range.lowerBound)-\(range.upperBound), past the last bus, 255",
                      fix: "lower bus_nr to \(256 - busesNeeded[id]!) or less")
                valid = false
            }
            for other in order {
                let theirs = ranges[other]!
                if theirs.lowerBound == range.lowerBound {
                    error(given.location, "bus_nr \(given.value) of host bridge `\(id)` is also host bridge `\(other)`'s",
                          fix: "give each host bridge its own bus range: `\(other)` uses buses \(theirs.lowerBound)-\(theirs.upperBound), so use bus_nr \(theirs.upperBound + 1) or more, or delete bus_nr")
                    valid = false
                } else if theirs.overlaps(range) {
                    error(given.location, "host bridge `\(id)`'s buses \(range.lowerBound)-\(range.upperBound) overlap host bridge `\(other)`'s buses \(theirs.lowerBound)-\(theirs.upperBound)",
                          fix: "each host bridge needs a bus for itself, each root port, and each switch and its downstream ports; move bus_nr so the ranges do not overlap, or delete bus_nr to let cxllab choose")
                    valid = false
                }
            }
            ranges[id] = range
            order.append(id)
        }
        for (index, bridge) in cxl.hostBridges.enumerated() where bridge.busNumber == nil {
            let id = hostBridgeIDs[index]
            let needed = busesNeeded[id]!
            let start = (Topology.firstCXLBus...256).first { start in
                let candidate = start...(start + needed - 1)
                return candidate.upperBound <= 255 && !ranges.values.contains { $0.overlaps(candidate) }
            }
            guard let start, start + needed - 1 <= 255 else {
                error(bridge.location, "no room below bus 255 for the \(needed) buses host bridge `\(id)` needs",
                      fix: "use fewer ports and switches, or set bus_nr of the host bridges so they pack tighter")
                valid = false
                continue
            }
            ranges[id] = start...(start + needed - 1)
        }
        guard valid else { return nil }

        let hostBridges = hostBridgeIDs.enumerated().map { index, id in
            Topology.HostBridge(id: id, busNumber: ranges[id]!.lowerBound, lastBusNumber: ranges[id]!.upperBound,
                                pciSlot: Topology.hostBridgePCISlots[index], numaNode: hostBridgeNUMA[index])
        }
        let rootPorts = rootPortIDs.enumerated().map { index, id in
            Topology.RootPort(id: id, hostBridge: rootPortBridge[id]!, number: rootNumbers[index], chassis: assigned[id]!.chassis, slot: assigned[id]!.slot)
        }
        let switches = switchOrder.map { index in
            Topology.Switch(
                id: switchIDs[index], port: switchParent[index]!, hostBridge: switchBridge[index]!, number: upstreamNumbers[index],
                mailbox: cxl.switches[index].mailbox?.value ?? capabilities.hasSwitchMailbox,
                downstreamPorts: downstreamIDs[index].enumerated().map { position, id in
                    Topology.DownstreamPort(id: id, number: downstreamNumbers[index][position], chassis: assigned[id]!.chassis, slot: assigned[id]!.slot)
                }
            )
        }
        return Topology.CXL(hostBridges: hostBridges, rootPorts: rootPorts, switches: switches, memoryDevices: devices, windows: windows)
    }

    /// Explicit numbers kept (duplicates reported), the rest the lowest free, in order.
    func assignPortNumbers(_ given: [Located<Int>?], ids: [String], within owner: String) -> [Int]? {
        var used: [Int: String] = [:]
        var valid = true
        for (number, id) in zip(given, ids) {
            guard let number else { continue }
            if let other = used[number.value] {
                error(number.location, "port number \(number.value) of `\(id)` is also `\(other)`'s in \(owner)",
                      fix: "give each port of \(owner) its own number, or delete `number` to let cxllab choose")
                valid = false
            }
            used[number.value] = id
        }
        var result: [Int] = []
        for (number, id) in zip(given, ids) {
            if let number {
                result.append(number.value)
            } else {
                let free = (0...).first { used[$0] == nil }!
                used[free] = id
                result.append(free)
            }
        }
        return valid ? result : nil
    }
}
