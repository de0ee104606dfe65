import AgentProtocol
import Foundation
import LabRuntime

/// Making the dax devices a driver-order run judges, from whatever the topology has: devdax
/// namespaces on NVDIMM and legacy-pmem regions, devdax namespaces on CXL pmem regions, and
/// the kmem-type devices of CXL RAM regions.
extension DriverOrderScenario {
    /// Makes dax devices from what the topology has; returns them and what the kernel refused.
    static func makeDevices<G>(_ guest: GuestOperations<G>, drivers: [String], machine: GuestMachine) async throws
        -> (devices: [ScenarioDevice], notApplicable: [String]) {
        var devices: [ScenarioDevice] = []
        var notApplicable: [String] = []
        // daxctl refuses to make system-ram while the kernel would online new memory itself,
        // and a CXL RAM region's memory onlined at once could not be reconfigured (busy).
        _ = try await guest.write("/sys/devices/system/memory/auto_online_blocks", "offline")

        let dimms = try await guest.tool("ndctl", ["list", "-D"])
        if dimms.status == 0, !(dimms.json?.asList.isEmpty ?? true) {
            // Labelled NVDIMMs need their label area initialized before namespaces can be made.
            try await guest.must("ndctl", ["disable-region", "all"])
            let labels = try await guest.tool("ndctl", ["init-labels", "all"])
            try await guest.must("ndctl", ["enable-region", "all"])
            if labels.status != 0 { notApplicable.append("ndctl init-labels: \(labels.stderr.trimmingCharacters(in: .whitespacesAndNewlines))") }
        }
        for (provider, region) in try await guest.regionsByProvider() where provider != "CXL" {
            guard let name = region["dev"]?.stringValue else { continue }
            let available = region["available_size"]?.intValue ?? 0
            let namespaces = region["namespaces"]?.asList ?? []
            let source = provider == "e820" ? "legacy-pmem" : "nvdimm"
            if available >= 300 << 20 {
                // Room for namespaces: one devdax, and a second to become system-ram.
                let wanted = available >= 600 << 20 && !devices.contains { $0.role == .systemRAM } ? 2 : 1
                for index in 0..<wanted {
                    let made = try await guest.must("ndctl", ["create-namespace", "-m", "devdax", "-s", Self.namespaceSize, "-r", name])
                    guard let namespace = made.json?["dev"]?.stringValue,
                          let dax = made.json?["daxregion"]?["devices"]?.asList.first?["chardev"]?.stringValue else { continue }
                    devices.append(ScenarioDevice(name: dax, role: index == 1 ? .systemRAM : .devdax, parent: namespace, source: source))
                }
            } else if let existing = namespaces.first(where: { $0["mode"]?.stringValue != "devdax" && ($0["size"]?.intValue ?? 0) > 0 }),
                      let namespace = existing["dev"]?.stringValue {
                // A label-less region (memmap= pmem, an unlabelled NVDIMM) has one namespace
                // spanning it (raw, or fsdax for memmap=): reconfigure it to devdax.
                let made = try await guest.tool("ndctl", ["create-namespace", "-f", "-e", namespace, "-m", "devdax"])
                if made.status == 0, let dax = made.json?["daxregion"]?["devices"]?.asList.first?["chardev"]?.stringValue {
                    devices.append(ScenarioDevice(name: dax, role: .devdax, parent: made.json?["dev"]?.stringValue ?? namespace, source: source))
                } else {
                    notApplicable.append("\(namespace): devdax mode refused: \(made.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
                }
            }
        }
        if machine.features.contains("cxl") {
            notApplicable += try await makeCXLDevices(guest, plan: CXLRegionPlan(topology: machine.topology), into: &devices)
        }
        // One devdax device becomes system-ram when no region had room for a second.
        if !devices.contains(where: { $0.role == .systemRAM }), drivers.contains(Self.kmem),
           devices.filter({ $0.role == .devdax }).count >= 2,
           let last = devices.lastIndex(where: { $0.role == .devdax }) {
            devices[last] = ScenarioDevice(name: devices[last].name, role: .systemRAM, parent: devices[last].parent, source: devices[last].source)
        }
        return (devices, notApplicable)
    }

    /// The regions of the plan through the cxl tool: a RAM region's dax device is kmem-type
    /// (it starts on kmem, in system-ram mode); a pmem region gets a devdax namespace. What
    /// the kernel refuses is reported in its own words as not applicable.
    static func makeCXLDevices<G>(_ guest: GuestOperations<G>, plan: CXLRegionPlan, into devices: inout [ScenarioDevice]) async throws -> [String] {
        var notApplicable = plan.unused.map { "CXL: \($0)" }
        guard let cxl = try await CXLGuest.look(guest) else { return notApplicable + ["CXL: the kernel created no CXL memory device"] }
        for region in plan.regions {
            switch try await cxl.create(region, guest: guest) {
            case .made(_, let made): devices += made
            case .refused(let words): notApplicable.append("CXL: \(words)")
            }
        }
        return notApplicable
    }
}

/// The guest's CXL memory devices by serial and its root decoders in window order, looked up
/// once; regions of a `CXLRegionPlan` are made through it.
struct CXLGuest: Sendable {
    let bySerial: [UInt64: String]
    let roots: [JSONValue]

    enum Creation {
        /// The region's name and the dax devices it gave.
        case made(region: String, [ScenarioDevice])
        /// What the kernel (or the tool) said instead.
        case refused(String)
    }

    static func look<G>(_ guest: GuestOperations<G>) async throws -> CXLGuest? {
        var bySerial: [UInt64: String] = [:]
        for memdev in try await guest.tool("cxl", ["list", "-M"]).json?.asList ?? [] {
            if let name = memdev["memdev"]?.stringValue, let serial = memdev["serial"]?.intValue { bySerial[UInt64(truncatingIfNeeded: serial)] = name }
        }
        guard !bySerial.isEmpty else { return nil }
        let roots = (try await guest.tool("cxl", ["list", "-D", "-d", "root"]).json?.asList ?? [])
            .sorted { decoderNumber($0["decoder"]?.stringValue).lexicographicallyPrecedes(decoderNumber($1["decoder"]?.stringValue)) }
        return CXLGuest(bySerial: bySerial, roots: roots)
    }

    /// `decoder0.1` as (0, 1), for sorting root decoders into window order.
    static func decoderNumber(_ name: String?) -> [Int] {
        (name ?? "").dropFirst("decoder".count).split(separator: ".").map { Int($0) ?? Int.max }
    }

    /// Creates a region of the plan; a pmem region gets a devdax namespace, a RAM region's dax
    /// devices are kmem-type.
    func create<G>(_ region: CXLRegionPlan.Region, guest: GuestOperations<G>) async throws -> Creation {
        let names = region.serials.compactMap { bySerial[$0] }
        let what = "\(region.kind.rawValue) region on \(region.deviceIDs.joined(separator: ", "))"
        guard names.count == region.serials.count else {
            return .refused("the guest has no memory device with serial \(region.serials.filter { bySerial[$0] == nil }.map(String.init).joined(separator: ", ")) for a \(what)")
        }
        guard region.window < roots.count, let root = roots[region.window]["decoder"]?.stringValue else {
            return .refused("the kernel made no root decoder for window \(region.window)")
        }
        let capability = region.kind == .ram ? "volatile_capable" : "pmem_capable"
        guard roots[region.window][capability]?.boolValue == true else {
            return .refused("root decoder \(root) (window \(region.window)) does not take \(region.kind.rawValue) regions")
        }
        let before = Set(try await guest.daxDevices().map(\.name))
        let mark = try await guest.mark()
        let created = try await guest.tool("cxl", ["create-region", "-m", "-t", region.kind.rawValue, "-d", root, "-w", String(region.ways),
                                                    "-s", String(region.size)] + names)
        guard created.status == 0, let name = created.json?["region"]?.stringValue else {
            return .refused("the kernel refused a \(what) (\(names.joined(separator: ", "))): " + (try await Self.complaint(since: mark, or: created, guest: guest)))
        }
        switch region.kind {
        case .ram:
            let appeared = try await guest.daxDevices().filter { !before.contains($0.name) }
            if appeared.isEmpty { return .refused("RAM region \(name) committed but no dax device appeared for it") }
            return .made(region: name, appeared.map { ScenarioDevice(name: $0.name, role: .kmemType, parent: name, source: "cxl-ram") })
        case .pmem:
            // The region's nvdimm region (cxl_pmem's bus, provider "CXL") with room left.
            let ndRegion = try await guest.regionsByProvider().first { $0.provider == "CXL" && ($0.region["available_size"]?.intValue ?? 0) > 0 }
            guard let ndName = ndRegion?.region["dev"]?.stringValue else {
                return .refused("region \(name) committed but no nvdimm region came of it: " + (try await Self.complaint(since: mark, or: created, guest: guest)))
            }
            let made = try await guest.tool("ndctl", ["create-namespace", "-m", "devdax", "-r", ndName])
            guard made.status == 0, let namespace = made.json?["dev"]?.stringValue,
                  let dax = made.json?["daxregion"]?["devices"]?.asList.first?["chardev"]?.stringValue else {
                return .refused("region \(name) committed but no devdax namespace on it: \(made.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
            }
            return .made(region: name, [ScenarioDevice(name: dax, role: .devdax, parent: namespace, source: "cxl-pmem")])
        }
    }

    /// The kernel's own reason for a refusal: its first complaint since the attempt (a
    /// warning's stack trace follows it and says nothing), else the tool's words.
    static func complaint<G>(since mark: Int64, or outcome: ToolOutcome, guest: GuestOperations<G>) async throws -> String {
        let kernel = try await guest.dmesg(since: mark)
        let words = kernel.first { $0.contains("Failed") || $0.contains("failed") || $0.contains("invalid") || $0.contains("error") }
            ?? kernel.first { $0.lowercased().contains("cxl") && $0.contains("region") }
        return words ?? (outcome.stderr + outcome.stdout).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
