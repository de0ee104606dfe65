import Foundation

extension Topology {
    /// The machine as an aligned tree for people (`cxllab topology show`): machine, NUMA
    /// nodes, NVDIMMs, and the CXL hierarchy from host bridges down to memory devices.
    public func outline() -> String {
        var rows: [(label: String, kind: String, detail: String)] = []
        func row(_ label: String, _ kind: String = "", _ detail: String = "") { rows.append((label, kind, detail)) }

        let cpus = machine.vcpus == 1 ? "1 vCPU" : "\(machine.vcpus) vCPUs"
        row("machine", machine.type, "\(cpus), \(ByteSize.describe(machine.memory)) RAM")
        if let hotplug = memoryHotplug {
            row("  hotplug", "max memory", "\(ByteSize.describe(hotplug.maxMemory)), \(hotplug.slots) slot\(hotplug.slots == 1 ? "" : "s")")
        }
        for node in machine.numaNodes {
            var detail = "\(ByteSize.describe(node.memory)), " + (node.cpus.isEmpty ? "no vCPUs" : "vCPU\(node.cpus.count == 1 ? "" : "s") \(node.cpuList)")
            if let distances = node.distances { detail += ", distances \(distances.map(String.init).joined(separator: " "))" }
            row("  node \(node.id)", "NUMA node", detail)
        }
        if !machine.kernelArguments.isEmpty {
            row("  cmdline", "kernel args", machine.kernelArguments.joined(separator: " "))
        }
        if !machine.cpuFeatures.isEmpty {
            row("  cpu", "cpu features", "qemu64 + " + machine.cpuFeatures.joined(separator: " "))
        }
        if !nvdimms.isEmpty {
            row("nvdimms")
            for nvdimm in nvdimms {
                let labels = nvdimm.isLabelled ? "\(ByteSize.describe(nvdimm.labelSize)) labels" : "no labels"
                row("  \(nvdimm.id)", "NVDIMM",
                    "\(ByteSize.describe(nvdimm.size)) usable, \(labels), device \(ByteSize.describe(nvdimm.deviceSize)), node \(nvdimm.numaNode), \(nvdimm.shared ? "shared" : "private")")
            }
        }
        if !cxl.isEmpty {
            row("cxl")
            for bridge in cxl.hostBridges {
                var detail = "buses \(bridge.busNumber)-\(bridge.lastBusNumber), pcie.0 slot 0x\(String(bridge.pciSlot, radix: 16))"
                if let node = bridge.numaNode { detail += ", node \(node)" }
                row("  \(bridge.id)", "host bridge", detail)
                let ports = cxl.rootPorts.filter { $0.hostBridge == bridge.id }
                for (index, port) in ports.enumerated() {
                    let last = index == ports.count - 1
                    row("  " + (last ? "└─ " : "├─ ") + port.id, "root port \(port.number)", "chassis \(port.chassis) slot \(port.slot)")
                    below(port: port.id, indent: "  " + (last ? "   " : "│  "))
                }
            }
            for window in cxl.windows {
                let granularity = window.granularity.map(ByteSize.describe) ?? "256 B (QEMU's default)"
                row("  window \(window.index)", "\(window.ways)-way window",
                    "\(ByteSize.describe(window.size)), targets \(window.targets.joined(separator: " ")), granularity \(granularity)")
            }
        }

        func below(port: String, indent: String) {
            if let device = cxl.switches.first(where: { $0.port == port }) {
                row(indent + "└─ " + device.id, "switch", "upstream port \(device.number)\(device.mailbox ? ", mailbox" : "")")
                for (index, downstream) in device.downstreamPorts.enumerated() {
                    let last = index == device.downstreamPorts.count - 1
                    row(indent + "   " + (last ? "└─ " : "├─ ") + downstream.id, "downstream port \(downstream.number)",
                        "chassis \(downstream.chassis) slot \(downstream.slot)")
                    below(port: downstream.id, indent: indent + "   " + (last ? "   " : "│  "))
                }
            } else if let device = cxl.memoryDevices.first(where: { $0.port == port }) {
                row(indent + "└─ " + device.id, "memory device", memoryDescription(device))
            }
        }

        let labelWidth = rows.map(\.label.count).max() ?? 0
        let kindWidth = rows.map(\.kind.count).max() ?? 0
        var lines = [summary.isEmpty ? name : "\(name): \(summary)"]
        for entry in rows {
            let line = entry.label.padding(toLength: labelWidth + 2, withPad: " ", startingAt: 0)
                + entry.kind.padding(toLength: kindWidth + 2, withPad: " ", startingAt: 0) + entry.detail
            lines.append(String(line.reversed().drop { $0 == " " }.reversed()))
        }
        return lines.joined(separator: "\n")
    }

    private func memoryDescription(_ device: MemoryDevice) -> String {
        var parts: [String] = []
        if let size = device.persistentSize { parts.append("persistent \(ByteSize.describe(size))") }
        if let size = device.lsaSize { parts.append("LSA \(ByteSize.describe(size))") }
        if let size = device.volatileSize { parts.append("volatile \(ByteSize.describe(size))") }
        if let dynamic = device.dynamicCapacity {
            parts.append("dynamic capacity \(ByteSize.describe(dynamic.size)) in \(dynamic.regions) region\(dynamic.regions == 1 ? "" : "s")")
        }
        if let serial = device.serial { parts.append("serial \(serial)") }
        return parts.joined(separator: ", ")
    }
}
