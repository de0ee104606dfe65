// Validation's entry point and the validator it runs: names, ids and references between
// components. The parts are checked in Topology+MachineValidation, +NVDIMMValidation,
// +CXLValidation and +CXLMemoryValidation; +CXLNumbering assigns the CXL tree's numbers.

import Foundation
import HostSupport
import YAMLGuard

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

struct Validator {
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
        if let machine, let cxl { checkAddressSpace(machine: machine, hotplug: hotplug, cxl: cxl) }
        guard sink.isEmpty, let machine, let nvdimms, let cxl else { return nil }
        return Topology(
            name: name, summary: draft.summary?.value ?? "", file: draft.file, machine: machine,
            nvdimms: nvdimms, cxl: cxl, memoryHotplug: hotplug
        )
    }

    // MARK: Names and ids

    private func checkName() -> String {
        let base = (draft.file as NSString).lastPathComponent
        let fallback = ["yaml", "yml"].contains((base as NSString).pathExtension) ? (base as NSString).deletingPathExtension : base
        guard let name = draft.name else { return fallback }
        let allowed = name.value.range(of: #"\A[a-z0-9][a-z0-9._-]{0,47}\z"#, options: .regularExpression) != nil
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
        if value.range(of: #"\A[A-Za-z][A-Za-z0-9_-]{0,31}\z"#, options: .regularExpression) == nil {
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
    private static func isReservedByLibvirt(_ id: String) -> Bool {
        id.range(of: #"\A(pci|pcie|usb|ide|sata|serial|channel|console|virtio-serial|nvdimm|memnvdimm|dimm|memdimm|ram-node|balloon|input|video|sound|rng|watchdog|net|hostdev|tpm|fs|smartcard|redir|shmem|scsi|vsock|iommu|panic|hub|ua-.*)[0-9]*\z"#,
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
}
