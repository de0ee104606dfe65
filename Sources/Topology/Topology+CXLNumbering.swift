// The numbers cxllab assigns to the CXL tree: port numbers, chassis and slots, and the bus
// ranges of the host bridges.

import Foundation
import YAMLGuard

extension Validator {
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
    private func assignPortNumbers(_ given: [Located<Int>?], ids: [String], within owner: String) -> [Int]? {
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
