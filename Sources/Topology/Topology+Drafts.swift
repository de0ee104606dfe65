// The draft: what a topology file says, with places, before validation. The top level,
// the machine and its NUMA nodes, and the NVDIMMs; the CXL section is in
// Topology+CXLDrafts.swift.

import Foundation
import YAMLGuard
import Yams

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
    var hypervisorBit: Located<Bool>?
    var cpuFeatures: [Located<String>] = []

    static let keys = ["type", "vcpus", "memory", "max_memory", "memory_slots", "numa", "kernel_cmdline", "hypervisor_bit", "cpu_features"]

    static func read(_ reader: MappingReader) -> MachineDraft {
        var draft = MachineDraft(location: reader.location)
        draft.type = reader.string("type")
        draft.vcpus = reader.int("vcpus", example: "2")
        draft.memory = reader.size("memory", example: "2G")
        draft.maxMemory = reader.size("max_memory", example: "8G")
        draft.slots = reader.int("memory_slots", example: "4")
        draft.hypervisorBit = reader.bool("hypervisor_bit")
        if let list = reader.list("numa", example: "{cpus: 0-1, memory: 2G}") {
            draft.numaLocation = list.location
            draft.numa = list.value.enumerated().compactMap { index, node in
                MappingReader(node, what: "NUMA node \(index)", known: NUMADraft.keys, sink: reader.sink).map { NUMADraft.read($0, index: index) }
            }
        }
        draft.kernelArguments = readWords(reader, "kernel_cmdline", noun: "argument", example: "memmap=512M!1G")
        draft.cpuFeatures = readWords(reader, "cpu_features", noun: "feature name", example: "pdpe1gb")
        return draft
    }

    /// Text split on spaces, or a list of text: each word with its place, so diagnostics point
    /// at the word. `kernel_cmdline` and `cpu_features` take the same two forms.
    private static func readWords(_ reader: MappingReader, _ key: String, noun: String, example: String) -> [Located<String>] {
        guard let node = reader.node(key) else { return [] }
        let one = ("aeiou".contains(noun.first ?? " ") ? "an " : "a ") + noun
        var words: [Located<String>] = []
        switch node {
        case .scalar(let scalar):
            var column = node.location.column + (scalar.style == .plain ? 0 : 1)
            for part in scalar.string.split(separator: " ", omittingEmptySubsequences: false) {
                if !part.isEmpty {
                    words.append(Located(value: String(part), location: SourcePosition(line: node.location.line, column: column)))
                }
                column += part.unicodeScalars.count + 1
            }
        case .sequence(let sequence):
            for item in sequence {
                if case .scalar(let scalar) = item, !item.isNull {
                    words.append(Located(value: scalar.string, location: item.location))
                } else {
                    reader.sink.error(item.location, "\(one) in `\(key)` is \(item.kindDescription), not text",
                                      fix: "write each \(noun) as text, e.g. `- \(example)`")
                }
            }
        default:
            reader.sink.error(node.location, "`\(key)` should be text or a list of \(noun)s, but is \(node.kindDescription)",
                              fix: "write `\(key): \(example)` or a list of \(noun)s")
        }
        return words
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
            // Each vCPU once: a list that repeats itself cannot grow past 4096 entries.
            var seen = Set<Int>()
            for part in scalar.string.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
                let bounds = part.split(separator: "-", omittingEmptySubsequences: false)
                guard (1...2).contains(bounds.count), let low = Int(bounds[0]), let high = Int(bounds.last!), low >= 0, low <= high, high < 4096 else {
                    sink.error(node.location, "`cpus` of \(what) has `\(part)`, which is not a vCPU number or range", fix: fix)
                    return nil
                }
                if let again = (low...high).first(where: { seen.contains($0) }) {
                    sink.error(node.location, "`cpus` of \(what) names vCPU \(again) more than once", fix: fix)
                    return nil
                }
                seen.formUnion(low...high)
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
