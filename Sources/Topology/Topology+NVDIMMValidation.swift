// Validation of the NVDIMMs and of the memory hotplug (slots, max_memory) they need.

import Foundation
import YAMLGuard

extension Validator {
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
}
