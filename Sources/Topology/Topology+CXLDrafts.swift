// The draft of the CXL section: host bridges, root ports, switches and their downstream
// ports, memory devices and windows, as the file writes them.

import Foundation
import YAMLGuard
import Yams

struct CXLDraft: Sendable, Hashable {
    var location: SourcePosition?
    var hostBridges: [HostBridgeDraft] = []
    var rootPorts: [RootPortDraft] = []
    var switches: [SwitchDraft] = []
    var memoryDevices: [MemoryDeviceDraft] = []
    var windows: [WindowDraft] = []
    var windowsLocation: SourcePosition?

    static let keys = ["host_bridges", "root_ports", "switches", "memory_devices", "windows"]

    static func read(_ reader: MappingReader) -> CXLDraft {
        var draft = CXLDraft(location: reader.location)
        func items<T>(_ key: String, _ noun: String, _ keys: [String], _ example: String, _ make: (MappingReader, Int) -> T) -> [T] {
            guard let list = reader.list(key, example: example) else { return [] }
            return list.value.enumerated().compactMap { index, node in
                MappingReader(node, what: "\(noun) \(Draft.itemName(node, index))", known: keys, sink: reader.sink).map { make($0, index) }
            }
        }
        draft.hostBridges = items("host_bridges", "host bridge", HostBridgeDraft.keys, "{id: hb0}") { reader, _ in HostBridgeDraft.read(reader) }
        draft.rootPorts = items("root_ports", "root port", RootPortDraft.keys, "{id: rp0, host_bridge: hb0}") { reader, _ in RootPortDraft.read(reader) }
        draft.switches = items("switches", "switch", SwitchDraft.keys, "{id: sw0, port: rp0, downstream_ports: [dp0]}") { reader, _ in SwitchDraft.read(reader) }
        draft.memoryDevices = items("memory_devices", "memory device", MemoryDeviceDraft.keys, "{id: mem0, port: rp0, persistent: 256M}") { reader, _ in
            MemoryDeviceDraft.read(reader)
        }
        draft.windowsLocation = reader.keyLocation("windows")
        draft.windows = items("windows", "window", WindowDraft.keys, "{targets: [hb0], size: 4G}") { reader, index in WindowDraft.read(reader, index: index) }
        return draft
    }
}

struct HostBridgeDraft: Sendable, Hashable {
    var location: SourcePosition
    var id: Located<String>?
    var busNumber: Located<Int>?
    var numaNode: Located<Int>?

    static let keys = ["id", "bus_nr", "numa_node"]

    static func read(_ reader: MappingReader) -> HostBridgeDraft {
        reader.require("id", "hb0")
        return HostBridgeDraft(location: reader.location, id: reader.string("id"), busNumber: reader.int("bus_nr", example: "12"), numaNode: reader.int("numa_node"))
    }
}

struct RootPortDraft: Sendable, Hashable {
    var location: SourcePosition
    var id: Located<String>?
    var hostBridge: Located<String>?
    var number: Located<Int>?
    var chassis: Located<Int>?
    var slot: Located<Int>?

    static let keys = ["id", "host_bridge", "number", "chassis", "slot"]

    static func read(_ reader: MappingReader) -> RootPortDraft {
        reader.require("id", "rp0")
        reader.require("host_bridge", "hb0")
        return RootPortDraft(
            location: reader.location, id: reader.string("id"), hostBridge: reader.string("host_bridge"),
            number: reader.int("number"), chassis: reader.int("chassis"), slot: reader.int("slot", example: "2")
        )
    }
}

struct DownstreamPortDraft: Sendable, Hashable {
    var location: SourcePosition
    var id: Located<String>?
    var number: Located<Int>?
    var chassis: Located<Int>?
    var slot: Located<Int>?

    static let keys = ["id", "number", "chassis", "slot"]
}

struct SwitchDraft: Sendable, Hashable {
    var location: SourcePosition
    var id: Located<String>?
    var port: Located<String>?
    var number: Located<Int>?
    var mailbox: Located<Bool>?
    var downstreamPorts: [DownstreamPortDraft] = []
    var downstreamLocation: SourcePosition?

    static let keys = ["id", "port", "number", "mailbox", "downstream_ports"]

    static func read(_ reader: MappingReader) -> SwitchDraft {
        reader.require("id", "sw0")
        reader.require("port", "rp0")
        reader.require("downstream_ports", "[dp0, dp1]")
        var draft = SwitchDraft(location: reader.location, id: reader.string("id"), port: reader.string("port"), number: reader.int("number"), mailbox: reader.bool("mailbox"))
        if let list = reader.list("downstream_ports", example: "dp0, dp1") {
            draft.downstreamLocation = list.location
            for (index, node) in list.value.enumerated() {
                // The short form is the id alone: `- dp0`.
                if case .scalar(let scalar) = node, !node.isNull {
                    draft.downstreamPorts.append(DownstreamPortDraft(location: node.location, id: Located(value: scalar.string, location: node.location)))
                    continue
                }
                let what = "downstream port \(Draft.itemName(node, index)) of \(reader.what)"
                guard let port = MappingReader(node, what: what, known: DownstreamPortDraft.keys, sink: reader.sink) else { continue }
                port.require("id", "dp\(index)")
                draft.downstreamPorts.append(DownstreamPortDraft(
                    location: port.location, id: port.string("id"), number: port.int("number"), chassis: port.int("chassis"), slot: port.int("slot", example: "3")
                ))
            }
        }
        return draft
    }
}

struct MemoryDeviceDraft: Sendable, Hashable {
    var location: SourcePosition
    var id: Located<String>?
    var port: Located<String>?
    var persistent: Located<UInt64>?
    var lsa: Located<UInt64>?
    var volatile: Located<UInt64>?
    var dynamicCapacity: DynamicCapacityDraft?
    var serial: Located<Int>?

    static let keys = ["id", "port", "persistent", "lsa", "volatile", "dynamic_capacity", "serial"]

    static func read(_ reader: MappingReader) -> MemoryDeviceDraft {
        reader.require("id", "mem0")
        reader.require("port", "rp0")
        var draft = MemoryDeviceDraft(
            location: reader.location, id: reader.string("id"), port: reader.string("port"),
            persistent: reader.size("persistent", example: "256M"), lsa: reader.size("lsa", example: "256M"),
            volatile: reader.size("volatile", example: "256M"), serial: reader.int("serial", example: "1")
        )
        if let dynamic = reader.mapping("dynamic_capacity", known: DynamicCapacityDraft.keys) {
            dynamic.require("size", "512M")
            draft.dynamicCapacity = DynamicCapacityDraft(
                location: reader.keyLocation("dynamic_capacity") ?? dynamic.location, size: dynamic.size("size", example: "512M"), regions: dynamic.int("regions", example: "2")
            )
        }
        return draft
    }
}

struct DynamicCapacityDraft: Sendable, Hashable {
    var location: SourcePosition
    var size: Located<UInt64>?
    var regions: Located<Int>?

    static let keys = ["size", "regions"]
}

struct WindowDraft: Sendable, Hashable {
    var index: Int
    var location: SourcePosition
    var targets: [Located<String>]?
    var targetsLocation: SourcePosition?
    var size: Located<UInt64>?
    var granularity: Located<UInt64>?

    static let keys = ["targets", "size", "granularity"]

    static func read(_ reader: MappingReader, index: Int) -> WindowDraft {
        reader.require("targets", "[hb0]")
        reader.require("size", "4G")
        var draft = WindowDraft(index: index, location: reader.location, size: reader.size("size", example: "4G"), granularity: reader.size("granularity", example: "4K"))
        if let list = reader.list("targets", example: "hb0, hb1") {
            draft.targetsLocation = list.location
            var targets: [Located<String>] = []
            for node in list.value {
                if case .scalar(let scalar) = node, !node.isNull {
                    targets.append(Located(value: scalar.string, location: node.location))
                } else {
                    reader.sink.error(node.location, "a target of \(reader.what) is \(node.kindDescription), not a host bridge id", fix: "list host bridge ids, e.g. `targets: [hb0, hb1]`")
                }
            }
            draft.targets = targets
        }
        return draft
    }
}
