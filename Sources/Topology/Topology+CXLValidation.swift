// Validation of the CXL section: host bridges, root ports, switches, where memory devices
// plug in, and the fixed memory windows.

import Foundation
import YAMLGuard

extension Validator {
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
        /// A port holds one device: puts `what` (written at `location`) in `port`, or reports at
        /// `reference` the device already there.
        func occupy(_ port: String, with what: String, at location: SourcePosition, reference: SourcePosition, fix: String) {
            if let earlier = occupant[port] {
                error(reference, "port `\(port)` already holds \(earlier.name) (line \(earlier.location.line))", fix: fix)
                valid = false
            } else {
                occupant[port] = (what, location)
            }
        }
        for (index, device) in cxl.switches.enumerated() {
            let what = "switch `\(switchIDs[index] ?? device.id?.value ?? "?")`"
            if let port = resolve(device.port, as: [.rootPort, .downstreamPort], from: what, candidates: portNames) {
                switchParent[index] = port
                occupy(port, with: what, at: device.location, reference: device.port!.location,
                       fix: "a port holds one device: plug \(what) into another port")
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
                occupy(port, with: what, at: device.location, reference: device.port!.location,
                       fix: "a port holds one device: plug \(what) into a free port, or add a root port or a switch")
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

        devices = assignSerials(devices, drafts: cxl.memoryDevices)

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

    private func checkPortNumbers(number: Located<Int>?, chassis: Located<Int>?, slot: Located<Int>?, what: String) -> Bool {
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
}
