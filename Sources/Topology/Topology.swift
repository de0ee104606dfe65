/// A validated machine: what a topology file describes, with every default filled in and
/// every number cxllab chooses (bus numbers, PCI slots, port numbers, chassis and slots)
/// assigned. Only validation makes one (`Topology.load` or `TopologyDocument.validate`), so
/// a `Topology` always renders.
///
/// The same file and capabilities always give the same `Topology`, and so the same XML.
public struct Topology: Sendable, Hashable, Encodable {
    /// The topology's name (`name:`, or the file's base name).
    public var name: String
    /// The one-line description (`description:`), empty when the file has none.
    public var summary: String
    /// The file name it was read from, as diagnostics print it.
    public var file: String
    public var machine: Machine
    public var nvdimms: [NVDIMM]
    public var cxl: CXL

    /// The memory devices libvirt places in the hotplug area (today: NVDIMMs), or nil when the
    /// machine has neither NVDIMMs nor `max_memory`.
    public var memoryHotplug: MemoryHotplug?
}

extension Topology {
    public struct Machine: Sendable, Hashable, Encodable {
        /// Always "q35": CXL host bridges need PCI Express.
        public var type: String
        public var vcpus: Int
        /// Guest RAM in bytes: the sum of the NUMA nodes' memory.
        public var memory: UInt64
        /// At least one: libvirt wants NUMA cells whenever memory devices are present, so
        /// cxllab always writes them.
        public var numaNodes: [NUMANode]
        /// Arguments appended to the kernel command line, e.g. `memmap=512M!1G`.
        public var kernelArguments: [String]
        /// Whether the guest CPU announces a hypervisor (CPUID leaf 1, ECX bit 31). Off by
        /// default: x86 Linux can flush a CXL region's caches only when it believes it runs on
        /// bare metal, so with the bit set it refuses every region commit ("Failed to
        /// synchronize CPU cache state"). Under TCG the flush it then does is a no-op.
        public var hypervisorBit: Bool = false
        /// CPU features the guest CPU must have on top of `qemu64`'s, by libvirt's names, in
        /// the file's order (e.g. `pdpe1gb`: 1 GiB pages, which ndctl's device-dax test maps).
        public var cpuFeatures: [String] = []
    }

    public struct NUMANode: Sendable, Hashable, Encodable {
        public var id: Int
        /// vCPU numbers, ascending; empty for a memory-only node.
        public var cpus: [Int]
        public var memory: UInt64
        /// Distance to each node by id (10 to itself), or nil for QEMU's defaults.
        public var distances: [Int]?

        /// libvirt's cpuset form: `0-1,4`.
        public var cpuList: String { Topology.rangeList(cpus) }
    }

    /// `<maxMemory slots='N'>`: the room libvirt reserves for memory devices.
    public struct MemoryHotplug: Sendable, Hashable, Encodable {
        public var maxMemory: UInt64
        public var slots: Int
    }

    public struct NVDIMM: Sendable, Hashable, Encodable {
        public var id: String
        /// What the user asked for: the size of the persistent memory the guest can use.
        public var size: UInt64
        /// The label area (namespace labels) in bytes; 0 for an unlabelled NVDIMM.
        public var labelSize: UInt64
        public var numaNode: Int
        /// `access='shared'`: guest writes reach the backing file.
        public var shared: Bool

        /// The size libvirt is given: the usable size plus the label area rounded up to 2 MiB.
        /// libvirt rounds NVDIMM sizes, and QEMU takes the label area from the end of the
        /// device, so a device of exactly `size` would leave a region the kernel's 2 MiB
        /// alignment cannot use fully (1 GiB with 128 KiB labels becomes 1 GiB + 2 MiB).
        public var deviceSize: UInt64 {
            size + (labelSize == 0 ? 0 : (ByteSize.alignUp(labelSize, to: Topology.nvdimmAlignment) ?? labelSize))
        }

        public var isLabelled: Bool { labelSize > 0 }
    }

    /// The CXL part of the machine; empty for a machine without CXL.
    public struct CXL: Sendable, Hashable, Encodable {
        public var hostBridges: [HostBridge]
        public var rootPorts: [RootPort]
        /// In an order where a switch comes after the switch whose downstream port it plugs into.
        public var switches: [Switch]
        public var memoryDevices: [MemoryDevice]
        public var windows: [Window]

        public var isEmpty: Bool { hostBridges.isEmpty }

        public static let empty = CXL(hostBridges: [], rootPorts: [], switches: [], memoryDevices: [], windows: [])
    }

    /// A CXL host bridge: QEMU's `pxb-cxl`, an extra PCI Express root bus on `pcie.0`.
    public struct HostBridge: Sendable, Hashable, Encodable {
        public var id: String
        /// The first bus number (`bus_nr`), the host bridge's own root bus.
        public var busNumber: Int
        /// The last bus number the buses below it (root ports, switches) need.
        public var lastBusNumber: Int
        /// The PCI slot on `pcie.0` (`addr=0x10`...), fixed so it never meets the root ports
        /// libvirt adds for its own devices.
        public var pciSlot: Int
        public var numaNode: Int?

        public var busRange: ClosedRange<Int> { busNumber...lastBusNumber }
    }

    /// A CXL root port (`cxl-rp`) on a host bridge.
    public struct RootPort: Sendable, Hashable, Encodable {
        public var id: String
        public var hostBridge: String
        /// The port number, unique within the host bridge; HDM decoders name targets by it.
        public var number: Int
        public var chassis: Int
        public var slot: Int
    }

    /// A CXL switch: an upstream port (`cxl-upstream`) plugged into a root port or another
    /// switch's downstream port, its downstream ports (`cxl-downstream`), and optionally its
    /// mailbox (`cxl-switch-mailbox-cci`, function 1 beside the upstream port).
    public struct Switch: Sendable, Hashable, Encodable {
        public var id: String
        /// The root port or downstream port the switch plugs into.
        public var port: String
        public var hostBridge: String
        /// The upstream port's number.
        public var number: Int
        public var mailbox: Bool
        public var downstreamPorts: [DownstreamPort]
    }

    public struct DownstreamPort: Sendable, Hashable, Encodable {
        public var id: String
        public var number: Int
        public var chassis: Int
        public var slot: Int
    }

    /// A CXL type 3 memory device (`cxl-type3`): persistent memory with its label storage
    /// area, volatile memory, dynamic capacity, or a mix.
    public struct MemoryDevice: Sendable, Hashable, Encodable {
        public var id: String
        /// The root port or downstream port it plugs into.
        public var port: String
        public var hostBridge: String
        public var persistentSize: UInt64?
        /// The label storage area; present with persistent memory (QEMU requires it).
        public var lsaSize: UInt64?
        public var volatileSize: UInt64?
        public var dynamicCapacity: DynamicCapacity?
        /// The device serial number (`sn=`), when the file sets one.
        public var serial: UInt64?
    }

    public struct DynamicCapacity: Sendable, Hashable, Encodable {
        public var size: UInt64
        public var regions: Int
    }

    /// A CXL fixed memory window (`-M cxl-fmw.N...`): host physical address space the guest's
    /// CXL driver maps regions into, interleaved across its target host bridges.
    public struct Window: Sendable, Hashable, Encodable {
        public var index: Int
        public var targets: [String]
        public var size: UInt64
        /// Interleave granularity in bytes, or nil for QEMU's default (256 bytes).
        public var granularity: UInt64?

        public var ways: Int { targets.count }
    }
}

extension Topology {
    /// NVDIMM sizes are kept to multiples of this: libvirt rounds memory device sizes, and the
    /// kernel's device-dax default alignment is 2 MiB.
    public static let nvdimmAlignment: UInt64 = 2 * ByteSize.mib
    /// The smallest label area QEMU accepts for an NVDIMM, and the smallest useful CXL LSA.
    public static let minimumLabelSize: UInt64 = 128 * ByteSize.kib
    /// CXL capacity is counted in 256 MiB units (the spec's capacity multiplier).
    public static let cxlCapacityUnit: UInt64 = 256 * ByteSize.mib
    /// The interleave ways a CXL window may have (the number of its targets).
    public static let interleaveWays: [Int] = [1, 2, 4, 8, 16, 3, 6, 12]
    /// Interleave granularities from 256 bytes to 16 KiB.
    public static let interleaveGranularities: [UInt64] = [256, 512, 1024, 2048, 4096, 8192, 16384]
    /// Buses below this are left to the PCI Express root ports libvirt adds on pcie.0.
    public static let firstCXLBus = 12
    /// PCI slots on pcie.0 for host bridges, in file order: 0x10 to 0x1e (0x1f holds the
    /// ICH9 functions), then 0x0f, which libvirt, filling slots from 0x01 up, never reaches.
    public static let hostBridgePCISlots: [Int] = Array(0x10...0x1e) + [0x0f]
    /// The first slot number given to CXL root and downstream ports in chassis 0 (the
    /// reference machine's root port has slot 2).
    public static let firstPortSlot = 2

    /// `[0, 1, 2, 5]` -> "0-2,5".
    static func rangeList(_ numbers: [Int]) -> String {
        var parts: [String] = []
        var index = 0
        let sorted = numbers.sorted()
        while index < sorted.count {
            var end = index
            while end + 1 < sorted.count, sorted[end + 1] == sorted[end] + 1 { end += 1 }
            parts.append(end == index ? "\(sorted[index])" : "\(sorted[index])-\(sorted[end])")
            index = end + 1
        }
        return parts.joined(separator: ",")
    }
}

extension Topology.CXL {
    /// The root port or downstream port with this id, if any, and which it is.
    func port(_ id: String) -> (hostBridge: String, isRootPort: Bool)? {
        if let root = rootPorts.first(where: { $0.id == id }) { return (root.hostBridge, true) }
        for device in switches where device.downstreamPorts.contains(where: { $0.id == id }) {
            return (device.hostBridge, false)
        }
        return nil
    }
}

extension Topology {
    /// The same machine with at least `count` vCPUs (a race needs two running at once); the
    /// added vCPUs join the first NUMA node. Unchanged when it has enough.
    public func withVCPUs(atLeast count: Int) -> Topology {
        guard machine.vcpus < count, !machine.numaNodes.isEmpty else { return self }
        var copy = self
        copy.machine.numaNodes[0].cpus += Array(machine.vcpus..<count)
        copy.machine.vcpus = count
        return copy
    }
}
