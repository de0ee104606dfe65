import Foundation
import Topology

/// The CXL regions a scenario makes from a topology, decided on the host from the topology
/// alone: for every fixed memory window, one RAM region across the devices below it with
/// volatile capacity and one pmem region across those with persistent capacity.
///
/// Devices are named by serial number (every memory device has one, see the topology's
/// rules), because the guest's memN names follow PCI enumeration, not the file: on
/// cxl-switch-4 the guest's mem0 is the file's mem1. The position order matters at the
/// window only: the kernel programs host bridge and switch decoders to suit the region, but
/// a window's targets are fixed by firmware, so position p must sit below host bridge
/// `targets[p % ways]` of the window (cxl create-region refuses otherwise: "failed to set
/// target0 to mem1").
public struct CXLRegionPlan: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable, Codable {
        case ram, pmem
    }

    public struct Region: Sendable, Hashable {
        public let kind: Kind
        /// The window's index in the topology (its root decoder is the guest's n-th one).
        public let window: Int
        /// The memory devices' serial numbers in interleave position order.
        public let serials: [UInt64]
        /// The topology's ids of the same devices, for reports.
        public let deviceIDs: [String]
        public var ways: Int { serials.count }
        /// One CXL capacity unit (256 MiB) from each device: what is left stays room to
        /// hot-add a region while every driver is loaded.
        public var size: UInt64 { UInt64(ways) * CXLRegionPlan.unit }
    }

    /// CXL's capacity unit, and the size each device gives a region.
    public static let unit: UInt64 = 256 << 20

    public let regions: [Region]
    /// Capacity no region uses, and why, for the report.
    public let unused: [String]
    /// 1-way regions that capacity no region uses could still make, in 1-target windows:
    /// devices left out, and devices with more than one unit of that kind. What the scenario
    /// hot-adds while every driver is loaded.
    public let spares: [Region]

    /// Interleave ways the CXL specification allows.
    public static let validWays: Set<Int> = [1, 2, 3, 4, 6, 8, 12, 16]

    public init(topology: Topology) {
        var regions: [Region] = []
        var unused: [String] = []
        var spares: [Region] = []
        // RAM regions first: a device with both kinds allocates its volatile partition (lower
        // device addresses) before its persistent one, and decoders must follow that order.
        for kind in [Kind.ram, .pmem] {
            var taken: Set<String> = []
            for window in topology.cxl.windows {
                let capable = topology.cxl.memoryDevices.filter { device in
                    !taken.contains(device.id) && window.targets.contains(device.hostBridge)
                        && (kind == .ram ? (device.volatileSize ?? 0) > 0 : (device.persistentSize ?? 0) > 0)
                }
                guard !capable.isEmpty else { continue }
                let below = window.targets.map { bridge in capable.filter { $0.hostBridge == bridge } }
                // Each host bridge of the window gives the same number of devices.
                var perBridge = below.map(\.count).min() ?? 0
                while perBridge > 0, !Self.validWays.contains(perBridge * window.targets.count) { perBridge -= 1 }
                guard perBridge > 0 else {
                    let missing = window.targets.filter { bridge in !capable.contains { $0.hostBridge == bridge } }
                    unused.append("window \(window.index): no \(kind.rawValue) device below host bridge \(missing.joined(separator: ", ")), "
                        + "so no \(window.targets.count)-way region can use it")
                    continue
                }
                var ordered: [Topology.MemoryDevice] = []
                for slot in 0..<perBridge {
                    for group in below { ordered.append(group[slot]) }
                }
                ordered.forEach { taken.insert($0.id) }
                regions.append(Region(kind: kind, window: window.index, serials: ordered.compactMap(\.serial), deviceIDs: ordered.map(\.id)))
                let leftOut = capable.filter { !taken.contains($0.id) }
                // A second region through a host bridge needs a second decoder there, and a host
                // bridge with one root port has only the kernel's pass-through decoder (measured:
                // "failed to set target0"); with two or more it has QEMU's HDM decoders.
                let bridge = window.targets[0]
                if window.targets.count == 1, topology.cxl.rootPorts.filter({ $0.hostBridge == bridge }).count >= 2 {
                    let roomy = ordered.filter { (kind == .ram ? $0.volatileSize ?? 0 : $0.persistentSize ?? 0) >= 2 * Self.unit }
                    spares += (leftOut + roomy).map { Region(kind: kind, window: window.index, serials: [$0.serial].compactMap { $0 }, deviceIDs: [$0.id]) }
                }
                let left = leftOut.map(\.id)
                if !left.isEmpty {
                    unused.append("window \(window.index): \(left.joined(separator: ", ")) left out of the \(ordered.count)-way \(kind.rawValue) region "
                        + "(interleave ways must be 1, 2, 3, 4, 6, 8, 12 or 16, the same number below each host bridge)")
                }
            }
        }
        self.regions = regions
        self.unused = unused
        self.spares = spares
    }
}
