import Foundation
import HostSupport
import PropertyBased
import Testing
@testable import Topology
import XML

/// Random machines and random damage: nothing crashes, every problem is a diagnostic with a
/// place in the file, and every topology found valid renders to XML libvirt's schema accepts.
@Suite struct TopologyPropertyTests {
    /// Loads `text`; when valid, renders it twice (the same) and checks it against the schema
    /// and the layout invariants. Returns whether it was valid.
    @discardableResult
    static func check(_ text: String, capabilities: EmulatorCapabilities = .qemu10) throws -> Bool {
        let topology: Topology
        do {
            topology = try Topology.load(yaml: text, file: "random.yaml", capabilities: capabilities)
        } catch {
            #expect(!error.diagnostics.isEmpty)
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false).count
            for diagnostic in error.diagnostics {
                #expect(diagnostic.line >= 1 && diagnostic.line <= lines + 1 && diagnostic.column >= 1, "\(diagnostic) in\n\(text)")
                #expect(!diagnostic.message.isEmpty && !diagnostic.fix.isEmpty)
            }
            return false
        }
        let lab = Fixture.lab("random")
        let spec = try topology.render(lab)
        #expect(try topology.render(lab) == spec)
        let problems = try DomainSchema.shared.get().problems(in: XMLDocument(parsing: spec.xml))
        #expect(problems.isEmpty, "schema: \(problems)\n\(text)\n\(spec.xml)")
        // Layout invariants.
        let cxl = topology.cxl
        let ranges = cxl.hostBridges.map(\.busRange)
        for (index, range) in ranges.enumerated() {
            #expect(range.lowerBound >= Topology.firstCXLBus && range.upperBound <= 255)
            for other in ranges[(index + 1)...] { #expect(!range.overlaps(other), "\(text)") }
        }
        let places = cxl.rootPorts.map { [$0.chassis, $0.slot] } + cxl.switches.flatMap { $0.downstreamPorts.map { [$0.chassis, $0.slot] } }
        #expect(Set(places).count == places.count, "\(text)")
        #expect(Set(cxl.hostBridges.map(\.pciSlot)).count == cxl.hostBridges.count)
        let ids = topology.nvdimms.map(\.id) + cxl.hostBridges.map(\.id) + cxl.rootPorts.map(\.id) + cxl.switches.map(\.id)
            + cxl.switches.flatMap { $0.downstreamPorts.map(\.id) } + cxl.memoryDevices.map(\.id)
        #expect(Set(ids).count == ids.count)
        #expect(Set(spec.backingFiles.map(\.path)).count == spec.backingFiles.count)
        return true
    }

    @Test func randomMachinesNeverCrashAndValidOnesRenderToSchemaValidXML() async throws {
        let valid = Counter()
        await propertyCheck(count: 300, input: RandomTopology.generator) { text in
            if try Self.check(text) { valid.increment() }
        }
        // The generator aims mostly at valid machines: most must pass, or it tests too little.
        #expect(valid.value >= 100, "only \(valid.value) of 300 random topologies were valid")
    }

    @Test(arguments: Repository.shippedNames)
    func damagedShippedFilesNeverCrash(_ name: String) async throws {
        let text = try Repository.shipped(name).text
        await propertyCheck(count: 60, input: Mutation.generator(of: text)) { mutated in
            try Self.check(mutated)
        }
    }

    @Test func damagedRandomMachinesNeverCrash() async throws {
        let input = RandomTopology.generator.map { text in text }
        await propertyCheck(count: 100, input: input, Gen.int(in: 0...Int.max)) { text, seed in
            var generator = SeededGenerator(seed: UInt64(truncatingIfNeeded: seed))
            try Self.check(Mutation.apply(to: text, using: &generator))
        }
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func increment() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}

/// Random topologies as YAML text: a model chosen at random, mostly within the rules, with
/// now and then a value outside them.
enum RandomTopology {
    static let generator = Generator<String, Shrink.None<String>> { rng in
        var random = rng
        defer { rng = random }
        return make(using: &random)
    }

    static func make<R: RandomNumberGenerator>(using rng: inout R) -> String {
        func chance(_ percent: Int) -> Bool { Int.random(in: 0..<100, using: &rng) < percent }
        func pick<T>(_ values: [T]) -> T { values[Int.random(in: 0..<values.count, using: &rng)] }
        var lines: [String] = ["name: random-\(Int.random(in: 0...999, using: &rng))"]

        // Machine and NUMA.
        let vcpus = chance(95) ? Int.random(in: 1...4, using: &rng) : pick([0, 65, 100])
        let nodeCount = chance(60) ? 1 : Int.random(in: 2...3, using: &rng)
        let nodeMemory = pick([512, 768, 1024]) * (chance(97) ? 1 : 3) / (chance(97) ? 1 : 2)
        lines.append("machine:")
        lines.append("  vcpus: \(vcpus)")
        let memoryMiB = nodeMemory * nodeCount
        if chance(90) { lines.append("  memory: \(memoryMiB + (chance(97) ? 0 : 2))M") }
        var explicitNUMA = false
        if nodeCount > 1 || chance(30) {
            explicitNUMA = true
            lines.append("  numa:")
            let withDistances = chance(50)
            for node in 0..<nodeCount {
                let cpus = (0..<max(vcpus, 1)).filter { $0 % nodeCount == node }
                var entry = "    - {memory: \(nodeMemory)M"
                if !cpus.isEmpty { entry += ", cpus: \"\(cpus.map(String.init).joined(separator: ","))\"" }
                if withDistances || chance(3) {
                    entry += ", distances: [\((0..<nodeCount).map { $0 == node ? (chance(97) ? 10 : 20) : pick([20, 21, 30]) }.map(String.init).joined(separator: ", "))]"
                }
                lines.append(entry + "}")
            }
        }
        let nodes = explicitNUMA ? nodeCount : 1
        if chance(20) { lines.append("  kernel_cmdline: memmap=\(pick([128, 256]))M!\(pick(["1G", "4G", "1280M"]))") }
        if chance(15) { lines.append("  cpu_features: \(pick(["[pdpe1gb]", "pdpe1gb sse4.2", "[lahf_lm, avx512-bf16]", "[PDPE1GB]", "[hypervisor]", "[x2apic, x2apic]"]))") }

        // NVDIMMs.
        let nvdimmCount = chance(50) ? 0 : Int.random(in: 1...3, using: &rng)
        if nvdimmCount > 0 {
            if chance(30) { lines.append("  memory_slots: \(Int.random(in: 1...4, using: &rng))") }
            if chance(30) { lines.append("  max_memory: \(pick([4, 6, 8]))G") }
            lines.append("nvdimms:")
            for index in 0..<nvdimmCount {
                var entry = "  - {id: pmem\(index), size: \(pick(["256M", "512M", "1G", "130M"]) )"
                if chance(50) { entry += ", label_size: \(pick(["0", "128K", "256K", "2M", "64K"]))" }
                if chance(50) { entry += ", numa_node: \(Int.random(in: 0..<(nodes + (chance(90) ? 0 : 1)), using: &rng))" }
                if chance(30) { entry += ", shared: \(pick(["true", "false"]))" }
                lines.append(entry + "}")
            }
        }

        // CXL.
        guard chance(75) else { return lines.joined(separator: "\n") + "\n" }
        let bridges = Int.random(in: 1...3, using: &rng)
        lines.append("cxl:")
        lines.append("  host_bridges:")
        for index in 0..<bridges {
            var entry = "    - {id: hb\(index)"
            if chance(15) { entry += ", bus_nr: \(pick([12, 20, 30, 40, 200, 13]))" }
            if chance(15) { entry += ", numa_node: \(Int.random(in: 0..<nodes, using: &rng))" }
            lines.append(entry + "}")
        }
        var freePorts: [(id: String, bridge: Int)] = []
        lines.append("  root_ports:")
        for bridge in 0..<bridges {
            for port in 0..<Int.random(in: 1...2, using: &rng) {
                let id = "hb\(bridge)rp\(port)"
                var entry = "    - {id: \(id), host_bridge: hb\(chance(98) ? bridge : bridges)"
                if chance(10) { entry += ", slot: \(Int.random(in: 2...9, using: &rng))" }
                if chance(10) { entry += ", number: \(Int.random(in: 0...3, using: &rng))" }
                lines.append(entry + "}")
                freePorts.append((id, bridge))
            }
        }
        if chance(40) {
            lines.append("  switches:")
            for index in 0..<Int.random(in: 1...2, using: &rng) where !freePorts.isEmpty {
                let upstream = freePorts.remove(at: Int.random(in: 0..<freePorts.count, using: &rng))
                let ports = (0..<Int.random(in: 1...4, using: &rng)).map { "sw\(index)p\($0)" }
                var entry = "    - {id: sw\(index), port: \(upstream.id), downstream_ports: [\(ports.joined(separator: ", "))]"
                if chance(30) { entry += ", mailbox: \(pick(["true", "false"]))" }
                lines.append(entry + "}")
                freePorts += ports.map { ($0, upstream.bridge) }
            }
        }
        var used: Set<Int> = []
        if !freePorts.isEmpty {
            lines.append("  memory_devices:")
            for index in 0..<Int.random(in: 1...min(4, freePorts.count), using: &rng) {
                let port = freePorts.remove(at: Int.random(in: 0..<freePorts.count, using: &rng))
                used.insert(port.bridge)
                var parts = ["id: mem\(index)", "port: \(port.id)"]
                switch Int.random(in: 0..<5, using: &rng) {
                case 0: parts.append("volatile: \(pick(["256M", "512M"]))")
                case 1: parts.append("dynamic_capacity: {size: \(pick(["512M", "1G"])), regions: \(pick([1, 2]))}")
                case 2: parts += ["persistent: 256M", "volatile: 256M"]
                default: parts.append("persistent: \(pick(["256M", "512M", "300M"]))")
                }
                if chance(40) { parts.append("lsa: \(pick(["1M", "256M", "128K"]))") }
                if chance(10) { parts.append("serial: \(Int.random(in: 1...1000, using: &rng))") }
                lines.append("    - {\(parts.joined(separator: ", "))}")
            }
        }
        if chance(95) {
            lines.append("  windows:")
            let all = (0..<bridges).map { "hb\($0)" }
            if chance(50) || used.isEmpty {
                let ways = bridges == 3 && chance(50) ? 3 : (bridges >= 2 ? 2 : 1)
                lines.append("    - {targets: [\(all.prefix(ways).joined(separator: ", "))], size: \(ways * 1024)M\(chance(50) ? ", granularity: \(pick(["256", "4K", "16K", "3K"]))" : "")}")
            }
            for bridge in used.sorted() {
                lines.append("    - {targets: [hb\(bridge)], size: \(pick(["4G", "1G", "256M"]))}")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// Random damage to a topology's text: lines lost, doubled, swapped or re-indented, characters
/// replaced, stray keys and values inserted, the text cut short.
enum Mutation {
    static func generator(of text: String) -> Generator<String, Shrink.None<String>> {
        Generator { rng in
            var random = rng
            defer { rng = random }
            return apply(to: text, using: &random)
        }
    }

    static let fragments = [
        ":", "-", " ", "  ", "[", "]", "{", "}", ",", "0", "x", "\t", "\"", "'", "#", "&a", "*a", "!!str", "~", "null",
        "bus_nr: 300", "size: 1X", "id: hb0", "- ", "port: rp0", "targets: []", "99999999999999999999", "-5", "1.5G", "é",
        "yes", "[[[", "? ", "|", ">", "%", "@", "\\", "\u{7}", "\u{FFFE}",
    ]

    static func apply<R: RandomNumberGenerator>(to text: String, using rng: inout R) -> String {
        var lines = text.components(separatedBy: "\n")
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            guard !lines.isEmpty else { break }
            let index = Int.random(in: 0..<lines.count, using: &rng)
            switch Int.random(in: 0..<8, using: &rng) {
            case 0: lines.remove(at: index)
            case 1: lines.insert(lines[index], at: index)
            case 2: lines.swapAt(index, Int.random(in: 0..<lines.count, using: &rng))
            case 3: lines[index] = String(repeating: " ", count: Int.random(in: 0...6, using: &rng)) + lines[index].trimmingCharacters(in: .whitespaces)
            case 4:
                var characters = Array(lines[index])
                let fragment = fragments.randomElement(using: &rng)!
                let position = characters.isEmpty ? 0 : Int.random(in: 0..<characters.count, using: &rng)
                if !characters.isEmpty, Bool.random(using: &rng) { characters.remove(at: position) }
                characters.insert(contentsOf: fragment, at: min(position, characters.count))
                lines[index] = String(characters)
            case 5: lines.insert(String(repeating: " ", count: Int.random(in: 0...6, using: &rng)) + fragments.randomElement(using: &rng)!, at: index)
            case 6:
                // Change a number.
                lines[index] = lines[index].replacingOccurrences(of: "1", with: ["0", "3", "17", "256", "-1"].randomElement(using: &rng)!)
            default: lines = Array(lines.prefix(index))
            }
        }
        return lines.joined(separator: "\n")
    }
}
