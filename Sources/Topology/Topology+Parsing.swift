import Foundation
import Yams

/// A topology file read into its parts with their places in the file, not yet checked for
/// sense. Reading reports every problem of shape (syntax, unknown keys, wrong types, sizes
/// that do not parse); `validate` reports every problem of sense.
public struct TopologyDocument: Sendable {
    public let file: String
    let draft: Draft
    /// Problems found while reading; `validate` reports them along with its own.
    let readingDiagnostics: [TopologyDiagnostic]

    /// Reads `yaml`, the text of the file named `file` (used in diagnostics only: no I/O).
    /// Throws every problem of shape at once.
    public static func parse(yaml: String, file: String) throws(TopologyError) -> TopologyDocument {
        let document = read(yaml: yaml, file: file)
        guard document.readingDiagnostics.isEmpty else { throw TopologyError(document.readingDiagnostics) }
        return document
    }

    /// Reads as much as it can, keeping the problems for `validate` to report with its own.
    static func read(yaml: String, file: String) -> TopologyDocument {
        let sink = DiagnosticSink(file: file)
        var draft = Draft(file: file)
        do {
            if let root = try Yams.compose(yaml: yaml) {
                draft = Draft.read(root, file: file, sink: sink)
            } else {
                sink.error(.start, "the file holds no topology", fix: "start from one of the files in topologies/, e.g. topologies/nvdimm-single.yaml")
            }
        } catch let error as YamlError {
            report(error, in: yaml, to: sink)
        } catch {
            sink.error(.start, "the YAML cannot be read: \(error)", fix: "check that the file is UTF-8 text in YAML")
        }
        return TopologyDocument(file: file, draft: draft, readingDiagnostics: sink.diagnostics)
    }

    private static func report(_ error: YamlError, in yaml: String, to sink: DiagnosticSink) {
        let syntaxFix = "check the indentation (spaces only, the same depth for keys of one mapping) and the punctuation near here"
        switch error {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _), let .composer(context, problem, mark, _):
            let detail = context.map { " (\($0.text) at \($0.mark.line):\($0.mark.column))" } ?? ""
            sink.error(SourcePosition(mark), "YAML syntax: \(problem)\(detail)", fix: syntaxFix)
        case let .duplicatedKeysInMapping(duplicates, context):
            let keys = duplicates.map { "`\($0)`" }.joined(separator: ", ")
            sink.error(SourcePosition(context.mark), "the key \(keys) appears more than once in the same mapping",
                       fix: "keep one of them: a later one would silently replace the earlier")
        case let .reader(problem, offset, _, _):
            let location = offset.map { SourcePosition(yaml, utf8Offset: $0) } ?? .start
            sink.error(location, "the file cannot be read as text: \(problem)", fix: "save the file as UTF-8 text")
        default:
            sink.error(.start, "the YAML cannot be read: \(error)", fix: syntaxFix)
        }
    }
}

extension SourcePosition {
    init(_ mark: Mark) { self.init(line: max(mark.line, 1), column: max(mark.column, 1)) }

    init(_ text: String, utf8Offset: Int) {
        let prefix = text.utf8.prefix(max(0, utf8Offset))
        let lines = prefix.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        self.init(line: lines.count, column: (lines.last?.count ?? 0) + 1)
    }
}

/// A value with the place in the file it came from.
struct Located<Value: Sendable & Hashable>: Sendable, Hashable {
    var value: Value
    var location: SourcePosition
}

extension Node {
    var location: SourcePosition { mark.map(SourcePosition.init) ?? .start }

    /// How a user would call this kind of node, for "expected X, found Y".
    var kindDescription: String {
        switch self {
        case .mapping: "a mapping (key: value lines)"
        case .sequence: "a list"
        case .alias: "an alias"
        case .scalar(let scalar):
            if Node.scalar(scalar).isNull { "nothing" }
            else { "`\(scalar.string)`" }
        }
    }

    var isNull: Bool {
        guard case .scalar(let scalar) = self else { return false }
        return scalar.style == .plain && ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }
}

// MARK: - Reading mappings

/// Reads one YAML mapping: reports keys it does not know (with the nearest known key), and
/// hands out typed values, reporting those of the wrong type. Every getter returns nil after
/// reporting, so a reader carries on and finds the next problem.
struct MappingReader {
    let what: String
    let location: SourcePosition
    let sink: DiagnosticSink
    private var entries: [String: (key: SourcePosition, value: Node)] = [:]
    /// Known keys that an unknown key was taken for: not reported missing on top of it.
    private var suggested: Set<String> = []

    /// Nil (after reporting) when `node` is not a mapping.
    init?(_ node: Node, what: String, known: [String], sink: DiagnosticSink) {
        self.what = what
        self.location = node.location
        self.sink = sink
        guard case .mapping(let mapping) = node else {
            sink.error(node.location, "\(what) should be a mapping (key: value lines), but is \(node.kindDescription)",
                       fix: "write it as indented `key: value` lines; it takes: \(known.joined(separator: ", "))")
            return nil
        }
        for (keyNode, value) in mapping {
            guard case .scalar(let scalar) = keyNode else {
                sink.error(keyNode.location, "a key in \(what) is \(keyNode.kindDescription), not a name",
                           fix: "use one of: \(known.joined(separator: ", "))")
                continue
            }
            let key = scalar.string
            guard known.contains(key) else {
                let nearest = Spelling.nearest(to: key, in: known)
                let hint = nearest.map { "did you mean `\($0)`? " } ?? ""
                if let nearest { suggested.insert(nearest) }
                sink.error(keyNode.location, "unknown key `\(key)` in \(what)",
                           fix: "\(hint)\(what) takes: \(known.joined(separator: ", "))")
                continue
            }
            entries[key] = (keyNode.location, value)
        }
    }

    func has(_ key: String) -> Bool { entries[key] != nil }

    func keyLocation(_ key: String) -> SourcePosition? { entries[key]?.key }

    /// The value node, or nil when absent; a null value (`key:` with nothing) is reported.
    func node(_ key: String) -> Node? {
        guard let entry = entries[key] else { return nil }
        if entry.value.isNull {
            sink.error(entry.key, "`\(key)` in \(what) has no value", fix: "give `\(key)` a value, or delete the line")
            return nil
        }
        if case .alias = entry.value {
            sink.error(entry.value.location, "`\(key)` in \(what) is a YAML alias", fix: "write the value out; topology files do not use anchors and aliases")
            return nil
        }
        return entry.value
    }

    /// Reports a missing required key at the start of this mapping.
    func require(_ key: String, _ example: String) {
        if entries[key] == nil, !suggested.contains(key) {
            sink.error(location, "\(what) has no `\(key)`", fix: "add `\(key): \(example)`")
        }
    }

    func string(_ key: String) -> Located<String>? {
        guard let node = node(key) else { return nil }
        guard case .scalar(let scalar) = node else {
            sink.error(node.location, "`\(key)` in \(what) should be text, but is \(node.kindDescription)", fix: "write `\(key): <text>` on one line")
            return nil
        }
        return Located(value: scalar.string, location: node.location)
    }

    func int(_ key: String, example: String = "0") -> Located<Int>? {
        guard let node = node(key) else { return nil }
        return MappingReader.int(node, name: "`\(key)` in \(what)", example: "\(key): \(example)", sink: sink)
    }

    static func int(_ node: Node, name: String, example: String, sink: DiagnosticSink) -> Located<Int>? {
        guard case .scalar = node, let value = node.int else {
            sink.error(node.location, "\(name) should be a whole number, but is \(node.kindDescription)", fix: "write a number, e.g. `\(example)`")
            return nil
        }
        return Located(value: value, location: node.location)
    }

    func bool(_ key: String) -> Located<Bool>? {
        guard let node = node(key) else { return nil }
        guard case .scalar = node, let value = node.bool else {
            sink.error(node.location, "`\(key)` in \(what) should be true or false, but is \(node.kindDescription)", fix: "write `\(key): true` or `\(key): false`")
            return nil
        }
        return Located(value: value, location: node.location)
    }

    func size(_ key: String, example: String = "1G") -> Located<UInt64>? {
        guard let node = node(key) else { return nil }
        return MappingReader.size(node, name: "`\(key)` in \(what)", example: "\(key): \(example)", sink: sink)
    }

    static func size(_ node: Node, name: String, example: String, sink: DiagnosticSink) -> Located<UInt64>? {
        guard case .scalar(let scalar) = node else {
            sink.error(node.location, "\(name) should be a size, but is \(node.kindDescription)", fix: "write a size such as `\(example)`")
            return nil
        }
        if scalar.string.hasPrefix("-") {
            sink.error(node.location, "\(name) is negative", fix: "write a size such as `\(example)`")
            return nil
        }
        switch ByteSize.parse(scalar.string) {
        case .success(let bytes): return Located(value: bytes, location: node.location)
        case .failure(let problem):
            sink.error(node.location, "\(name): \(problem)", fix: problem.fix)
            return nil
        }
    }

    func list(_ key: String, example: String) -> (value: [Node], location: SourcePosition)? {
        guard let node = node(key) else { return nil }
        guard case .sequence(let sequence) = node else {
            sink.error(node.location, "`\(key)` in \(what) should be a list, but is \(node.kindDescription)",
                       fix: "write a list: one `- ` item per line below `\(key):`, or `\(key): [\(example)]`")
            return nil
        }
        return (Array(sequence), node.location)
    }

    func mapping(_ key: String, known: [String]) -> MappingReader? {
        guard let node = node(key) else { return nil }
        return MappingReader(node, what: what == "the topology" ? "`\(key)`" : "`\(key)` of \(what)", known: known, sink: sink)
    }
}

/// Nearest names, for "did you mean".
enum Spelling {
    static func nearest(to word: String, in candidates: [String]) -> String? {
        let lower = word.lowercased().replacingOccurrences(of: "-", with: "_")
        let scored = candidates.map { ($0, distance(lower, $0)) }.sorted { ($0.1, $0.0) < ($1.1, $1.0) }
        guard let best = scored.first else { return nil }
        let limit = max(2, best.0.count / 3)
        if best.1 <= limit { return best.0 }
        // `bus` for `bus_nr`, `label` for `label_size`: a prefix is a good guess too.
        return candidates.first { $0.hasPrefix(lower) || (lower.count >= 3 && lower.hasPrefix($0)) }
    }

    /// Levenshtein distance.
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}

// MARK: - The draft: what the file says, with places

struct Draft: Sendable, Hashable {
    var file: String
    var name: Located<String>?
    var summary: Located<String>?
    var machine = MachineDraft()
    var nvdimms: [NVDIMMDraft] = []
    var nvdimmsLocation: SourcePosition?
    var cxl = CXLDraft()

    init(file: String) { self.file = file }

    static let keys = ["name", "description", "machine", "nvdimms", "cxl"]

    static func read(_ root: Node, file: String, sink: DiagnosticSink) -> Draft {
        var draft = Draft(file: file)
        guard let top = MappingReader(root, what: "the topology", known: keys, sink: sink) else { return draft }
        draft.name = top.string("name")
        draft.summary = top.string("description")
        if let machine = top.mapping("machine", known: MachineDraft.keys) {
            draft.machine = MachineDraft.read(machine)
        }
        if let list = top.list("nvdimms", example: "{id: pmem0, size: 1G}") {
            draft.nvdimmsLocation = top.keyLocation("nvdimms")
            draft.nvdimms = list.value.enumerated().compactMap { index, node in
                MappingReader(node, what: "NVDIMM \(itemName(node, index))", known: NVDIMMDraft.keys, sink: sink).map(NVDIMMDraft.read)
            }
        }
        if let cxl = top.mapping("cxl", known: CXLDraft.keys) {
            draft.cxl = CXLDraft.read(cxl)
        }
        return draft
    }

    /// "pmem0" when the item has an id, else "#2" (1-based), for messages.
    static func itemName(_ node: Node, _ index: Int) -> String {
        if case .mapping(let mapping) = node, let id = mapping["id"], case .scalar(let scalar) = id, !scalar.string.isEmpty {
            return "`\(scalar.string)`"
        }
        return "#\(index + 1)"
    }
}

struct MachineDraft: Sendable, Hashable {
    var location: SourcePosition?
    var type: Located<String>?
    var vcpus: Located<Int>?
    var memory: Located<UInt64>?
    var maxMemory: Located<UInt64>?
    var slots: Located<Int>?
    var numa: [NUMADraft]?
    var numaLocation: SourcePosition?
    var kernelArguments: [Located<String>] = []

    static let keys = ["type", "vcpus", "memory", "max_memory", "memory_slots", "numa", "kernel_cmdline"]

    static func read(_ reader: MappingReader) -> MachineDraft {
        var draft = MachineDraft(location: reader.location)
        draft.type = reader.string("type")
        draft.vcpus = reader.int("vcpus", example: "2")
        draft.memory = reader.size("memory", example: "2G")
        draft.maxMemory = reader.size("max_memory", example: "8G")
        draft.slots = reader.int("memory_slots", example: "4")
        if let list = reader.list("numa", example: "{cpus: 0-1, memory: 2G}") {
            draft.numaLocation = list.location
            draft.numa = list.value.enumerated().compactMap { index, node in
                MappingReader(node, what: "NUMA node \(index)", known: NUMADraft.keys, sink: reader.sink).map { NUMADraft.read($0, index: index) }
            }
        }
        if let node = reader.node("kernel_cmdline") {
            switch node {
            case .scalar(let scalar):
                // Split on spaces, keeping each argument's column for diagnostics.
                var column = node.location.column + (scalar.style == .plain ? 0 : 1)
                for part in scalar.string.split(separator: " ", omittingEmptySubsequences: false) {
                    if !part.isEmpty {
                        draft.kernelArguments.append(Located(value: String(part), location: SourcePosition(line: node.location.line, column: column)))
                    }
                    column += part.unicodeScalars.count + 1
                }
            case .sequence(let sequence):
                for item in sequence {
                    if case .scalar(let scalar) = item, !item.isNull {
                        draft.kernelArguments.append(Located(value: scalar.string, location: item.location))
                    } else {
                        reader.sink.error(item.location, "an argument in `kernel_cmdline` is \(item.kindDescription), not text",
                                          fix: "write each argument as text, e.g. `- memmap=512M!1G`")
                    }
                }
            default:
                reader.sink.error(node.location, "`kernel_cmdline` should be text or a list of arguments, but is \(node.kindDescription)",
                                  fix: "write `kernel_cmdline: memmap=512M!1G` or a list of arguments")
            }
        }
        return draft
    }
}

struct NUMADraft: Sendable, Hashable {
    var index: Int
    var location: SourcePosition
    var cpus: Located<[Int]>?
    /// `cpus` was written but could not be read (already reported).
    var cpusUnreadable = false
    var memory: Located<UInt64>?
    var distances: Located<[Located<Int>]>?

    static let keys = ["cpus", "memory", "distances"]

    static func read(_ reader: MappingReader, index: Int) -> NUMADraft {
        var draft = NUMADraft(index: index, location: reader.location)
        draft.memory = reader.size("memory", example: "1G")
        if let node = reader.node("cpus") {
            draft.cpus = readCPUs(node, what: reader.what, sink: reader.sink)
            draft.cpusUnreadable = draft.cpus == nil
        }
        if let list = reader.list("distances", example: "10, 20") {
            let values = list.value.compactMap { MappingReader.int($0, name: "a distance of \(reader.what)", example: "20", sink: reader.sink) }
            if values.count == list.value.count { draft.distances = Located(value: values, location: list.location) }
        }
        return draft
    }

    /// `0`, `"0-1,4"` or `[0, 1, 4]`.
    static func readCPUs(_ node: Node, what: String, sink: DiagnosticSink) -> Located<[Int]>? {
        let fix = "write vCPU numbers and ranges, e.g. `cpus: 0-1`, `cpus: 0,2-3` or `cpus: [0, 1]`"
        switch node {
        case .scalar(let scalar):
            var cpus: [Int] = []
            for part in scalar.string.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
                let bounds = part.split(separator: "-", omittingEmptySubsequences: false)
                guard (1...2).contains(bounds.count), let low = Int(bounds[0]), let high = Int(bounds.last!), low >= 0, low <= high, high < 4096 else {
                    sink.error(node.location, "`cpus` of \(what) has `\(part)`, which is not a vCPU number or range", fix: fix)
                    return nil
                }
                cpus += Array(low...high)
            }
            if cpus.isEmpty { sink.error(node.location, "`cpus` of \(what) is empty", fix: fix); return nil }
            return Located(value: cpus, location: node.location)
        case .sequence(let sequence):
            var cpus: [Int] = []
            for item in sequence {
                guard let value = item.int, value >= 0, value < 4096 else {
                    sink.error(item.location, "`cpus` of \(what) has \(item.kindDescription), which is not a vCPU number", fix: fix)
                    return nil
                }
                cpus.append(value)
            }
            return Located(value: cpus, location: node.location)
        default:
            sink.error(node.location, "`cpus` of \(what) is \(node.kindDescription)", fix: fix)
            return nil
        }
    }
}

struct NVDIMMDraft: Sendable, Hashable {
    var location: SourcePosition
    var id: Located<String>?
    var size: Located<UInt64>?
    var labelSize: Located<UInt64>?
    var numaNode: Located<Int>?
    var shared: Located<Bool>?

    static let keys = ["id", "size", "label_size", "numa_node", "shared"]

    static func read(_ reader: MappingReader) -> NVDIMMDraft {
        reader.require("id", "pmem0")
        reader.require("size", "1G")
        return NVDIMMDraft(
            location: reader.location,
            id: reader.string("id"),
            size: reader.size("size"),
            labelSize: reader.size("label_size", example: "128K"),
            numaNode: reader.int("numa_node"),
            shared: reader.bool("shared")
        )
    }
}

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
