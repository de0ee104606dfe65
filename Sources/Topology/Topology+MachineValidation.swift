// Validation of the machine: type, vCPUs, RAM, NUMA nodes, CPU features and the kernel
// command line (including memmap= legacy persistent memory).

import Foundation
import YAMLGuard

extension Validator {
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
        // Before the NUMA nodes, which may end the check early. A bad name leaves the machine
        // usable for the checks of memory layout that follow (the sink keeps the error).
        let features = checkCPUFeatures()

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
            kernelArguments: machine.kernelArguments.map(\.value), hypervisorBit: machine.hypervisorBit?.value ?? false,
            cpuFeatures: features
        )
    }

    /// Names as libvirt spells x86 features (`pdpe1gb`, `sse4.2`, `lahf_lm`, `avx512-bf16`: all
    /// lower case), each once; not whether libvirt and QEMU know the name (no I/O here).
    /// `\z`, not `$`: `$` also matches before a final newline, which would reach the XML.
    private func checkCPUFeatures() -> [String] {
        let pattern = #"\A[a-z0-9][a-z0-9_.-]*\z"#
        var first: [String: SourcePosition] = [:]
        var accepted: [String] = []
        for feature in draft.machine.cpuFeatures {
            let name = feature.value
            if name == "hypervisor" {
                // The bit has its own key, whose default (off) a `require` would contradict.
                error(feature.location, "the CPU feature `hypervisor` is set with `hypervisor_bit`, not `cpu_features`",
                      fix: "delete it here and write `hypervisor_bit: true` to keep the CPUID hypervisor bit (cxllab turns it off by default)")
            } else if name.range(of: pattern, options: .regularExpression) == nil {
                let lower = name.lowercased()
                let hint = lower != name && lower.range(of: pattern, options: .regularExpression) != nil ? "did you mean `\(lower)`? " : ""
                // Escaped, so a quoted "pdpe1gb\n" does not print as the valid name it resembles.
                let shown = name.unicodeScalars.map { $0.properties.generalCategory == .control ? $0.escaped(asASCII: true) : String($0) }.joined()
                error(feature.location, "`\(shown)` is not a CPU feature name",
                      fix: "\(hint)write libvirt's name for the feature: lower-case letters, digits, '_', '.' and '-', starting with a letter or digit, e.g. `pdpe1gb`")
            } else if let earlier = first[name] {
                error(feature.location, "the CPU feature `\(name)` is listed twice (first at line \(earlier.line))", fix: "list each feature once")
            } else {
                first[name] = feature.location
                accepted.append(name)
            }
        }
        return accepted
    }

    private func checkRAM(_ bytes: UInt64, at location: SourcePosition, what: String) -> Bool {
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

    private func checkNUMA(_ drafts: [NUMADraft], vcpus: Int, vcpusValid: Bool, listLocation: SourcePosition) -> [Topology.NUMANode]? {
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
            } else if argument.value.hasPrefix("cxllab.") {
                // cxllab's own switches (the agent's shell) are the lab's to set, not a
                // topology's: `up --no-shell` must mean no shell.
                error(argument.location, "`\(argument.value)` is a switch cxllab sets itself",
                      fix: "delete it; `cxllab up` enables the agent's shell unless --no-shell")
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
}
