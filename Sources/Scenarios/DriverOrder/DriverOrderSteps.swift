import AgentProtocol
import Foundation
import LabRuntime

/// One order of the driver set, step by step: every path on which a dax device can be probed,
/// each step adding its observations, or saying why it was skipped.
struct OrderRun<G: GuestAgent> {
    typealias Scenario = DriverOrderScenario
    let plan: Scenario.Plan
    let guest: GuestOperations<G>
    /// The devices as made; hot-added ones come and go within the step that makes them.
    let devices: [ScenarioDevice]
    /// The order the drivers are registered in now (reloads move a driver to the end).
    private(set) var registered: [String] = []
    /// The order the loading under test made (the sequence loaded, or what modprobe did).
    private(set) var loadedAs: [String] = []
    private(set) var observations: [Observation] = []
    private(set) var skipped: [SkippedStep] = []

    init(plan: Scenario.Plan, guest: GuestOperations<G>, devices: [ScenarioDevice]) {
        self.plan = plan
        self.guest = guest
        self.devices = devices
    }

    var drivers: [String] { plan.drivers }
    func has(_ driver: String) -> Bool { registered.contains(driver) }

    // MARK: - Recording

    /// Judges devices after a step, from one listing of the bus (under TCG every agent round
    /// trip counts); the kernel's messages since `mark` go with each failure.
    mutating func observe(_ targets: [ScenarioDevice], _ step: ProbeStep, mark: Int64, refusals: [String: String] = [:],
                          notes: [String: String] = [:]) async throws {
        let now = try await guest.daxDrivers()
        var messages: [String]?
        for device in targets {
            let actual = now[device.name]
            let expected = Scenario.expected(device, step: step, drivers: drivers)
            var (verdict, problem) = Scenario.judge(step: step, expected: expected, actual: actual, refusal: refusals[device.name])
            if verdict == .pass, let note = notes[device.name] { problem = note }
            if verdict == .fail, messages == nil { messages = try await guest.dmesg(since: mark) }
            observations.append(Observation(device: device.name, step: step, expected: expected, actual: actual, verdict: verdict,
                                            note: problem, dmesg: verdict == .fail ? messages ?? [] : [], registered: registered))
        }
    }

    mutating func skip(_ step: ProbeStep, _ why: String) {
        if !skipped.contains(where: { $0.step == step && $0.reason == why }) { skipped.append(SkippedStep(step: step, reason: why)) }
    }

    /// The drivers of the set now loaded, in the order they registered: /proc/modules lists
    /// the newest module first.
    mutating func readRegistration() async throws {
        let loaded = try await guest.guest.send(AgentCalls.Info()).modules.map(\.name)
        registered = loaded.reversed().filter { drivers.contains($0) }
    }

    // MARK: - Loading

    /// The drivers loaded one by one, in this order.
    mutating func load(_ order: [String]) async throws {
        for module in order { try await guest.load(module, parameters: plan.parameters[module] ?? []) }
        try await readRegistration()
        loadedAs = registered
    }

    /// The drivers loaded as udev loads them at boot: `add` replayed to every dax device and
    /// `modprobe -b $MODALIAS` run for each, `workers` at once. Returns the modprobes' record.
    mutating func autoload(workers: Int) async throws -> ColdplugReport {
        // The scenario's module parameters, where modprobe finds them on a real system.
        let report = try await guest.guest.send(AgentCalls.Coldplug(bus: "dax", workers: workers, options: plan.modprobeOptions), timeout: .seconds(120))
        try await readRegistration()
        loadedAs = registered
        return report
    }

    /// Devices that a devdax driver serves at this point (devdax namespaces, and kmem-type
    /// devices while reconfigured to devdax are not among them).
    var devdaxDevices: [ScenarioDevice] { devices.filter { $0.role != .kmemType } }

    // MARK: - The steps

    /// 1. What the bus attached while the drivers registered (`load`) or were autoloaded.
    mutating func attached(step: ProbeStep) async throws {
        try await observe(devices, step, mark: try await guest.mark())
    }

    /// Unbinds devices (offlining kmem's memory first), from one listing of the bus.
    func unbind(_ targets: [ScenarioDevice]) async throws {
        let now = try await guest.daxDrivers()
        for device in targets where now[device.name] != nil {
            if now[device.name] == Scenario.kmem { _ = try await guest.tool("daxctl", ["offline-memory", device.name]) }
            _ = try await guest.busOperation(.unbind, driver: nil, device: device.name)
        }
    }

    /// `daxctl reconfigure-device -m MODE` on each device; returns daxctl's refusals by device.
    func reconfigure(_ targets: [ScenarioDevice], to mode: String) async throws -> [String: String] {
        var refusals: [String: String] = [:]
        for device in targets {
            let outcome = try await guest.tool("daxctl", ["reconfigure-device", "-m", mode, device.name])
            if outcome.status != 0 { refusals[device.name] = outcome.stderr.trimmingCharacters(in: .whitespacesAndNewlines) }
        }
        return refusals
    }

    /// Writes each device to drivers_probe; returns the kernel's refusals by device.
    func probe(_ targets: [ScenarioDevice]) async throws -> [String: String] {
        var refusals: [String: String] = [:]
        for device in targets {
            if let refusal = try await guest.busOperation(.driversProbe, driver: nil, device: device.name) { refusals[device.name] = refusal }
        }
        return refusals
    }

    /// 2. Unbound, then drivers_probe.
    mutating func driversProbe() async throws {
        let mark = try await guest.mark()
        try await unbind(devices)
        try await observe(devices, .driversProbe, mark: mark, refusals: try await probe(devices))
    }

    /// 3. Re-created: its namespace (or CXL RAM region) disabled and enabled.
    mutating func recreate() async throws {
        let mark = try await guest.mark()
        try await unbind(devices)
        for device in devices {
            let tool = device.role == .kmemType ? "cxl" : "ndctl"
            let noun = device.role == .kmemType ? "region" : "namespace"
            try await guest.must(tool, ["disable-\(noun)", device.parent])
            try await guest.must(tool, ["enable-\(noun)", device.parent])
        }
        try await observe(devices, .recreate, mark: mark)
    }

    /// Hot-add with every driver loaded: a new devdax namespace on an NVDIMM or legacy-pmem
    /// region with room, and a new CXL region where the topology leaves room (its devdax
    /// namespace, or a RAM region's kmem-type device); each judged, then destroyed so the
    /// next order starts as this one did. What cannot be hot-added says why.
    mutating func hotAdd(in room: HotAddRoom) async throws {
        for why in room.skipped { skip(.hotAdd, why) }
        if let (region, source) = room.nvdimm {
            let mark = try await guest.mark()
            let made = try await guest.must("ndctl", ["create-namespace", "-m", "devdax", "-s", Scenario.namespaceSize, "-r", region])
            guard let namespace = made.json?["dev"]?.stringValue,
                  let dax = made.json?["daxregion"]?["devices"]?.asList.first?["chardev"]?.stringValue else {
                throw StepFailure("ndctl create-namespace on \(region) gave no dax device: \(made.stdout)")
            }
            try await observe([ScenarioDevice(name: dax, role: .devdax, parent: namespace, source: source)], .hotAdd, mark: mark)
            try await guest.must("ndctl", ["destroy-namespace", "-f", namespace])
        }
        if let (spare, cxl) = room.cxl {
            let mark = try await guest.mark()
            switch try await cxl.create(spare, guest: guest) {
            case .refused(let words):
                throw StepFailure("hot-adding a CXL \(spare.kind.rawValue) region on \(spare.deviceIDs.joined(separator: ", ")): \(words)")
            case .made(let region, let made):
                try await observe(made, .hotAdd, mark: mark)
                try await unbind(made)
                for device in made where device.role == .devdax { try await guest.must("ndctl", ["destroy-namespace", "-f", device.parent]) }
                try await guest.must("cxl", ["destroy-region", "-f", region])
            }
        }
    }

    /// kmem-type devices handed to device_dax with daxctl; returns those now on device_dax.
    mutating func devdaxMode() async throws -> [ScenarioDevice] {
        let targets = devices.filter { $0.role == .kmemType }
        guard !targets.isEmpty else { return [] }
        guard has(Scenario.deviceDax), has(Scenario.kmem) else {
            skip(.devdaxMode, "device_dax and kmem are not both in this order")
            return []
        }
        let mark = try await guest.mark()
        try await observe(targets, .devdaxMode, mark: mark, refusals: try await reconfigure(targets, to: "devdax"))
        let now = try await guest.daxDrivers()
        return targets.filter { now[$0.name] == Scenario.deviceDax }
    }

    /// fsdev_dax bound explicitly to every devdax device, then given back (remove_id), then
    /// re-probed: the id must be gone. Then the same without remove_id, as information: who
    /// wins the re-probe when fsdev_dax's id entry stays.
    mutating func explicitRoundTrips(candidates: [ScenarioDevice]) async throws {
        guard !candidates.isEmpty else { return }
        guard has(Scenario.fsdev) else { return skip(.explicitFsdev, "fsdev_dax is not in this order") }
        var mark = try await guest.mark()
        try await unbind(candidates)
        var refusals: [String: String] = [:]
        for device in candidates {
            var refusal = try await guest.busOperation(.newID, driver: Scenario.fsdev, device: device.name)
            // new_id binds an unbound device at once; bind only if it did not.
            if refusal == nil, try await guest.daxDrivers()[device.name] == nil {
                refusal = try await guest.busOperation(.bind, driver: Scenario.fsdev, device: device.name)
            }
            if let refusal { refusals[device.name] = refusal }
        }
        try await observe(candidates, .explicitFsdev, mark: mark, refusals: refusals)
        guard has(Scenario.deviceDax) else { return skip(.giveBack, "device_dax is not in this order") }
        mark = try await guest.mark()
        refusals = [:]
        for device in candidates {
            _ = try await guest.busOperation(.unbind, driver: Scenario.fsdev, device: device.name)
            _ = try await guest.busOperation(.removeID, driver: Scenario.fsdev, device: device.name)
            if let refusal = try await guest.busOperation(.bind, driver: Scenario.deviceDax, device: device.name) { refusals[device.name] = refusal }
        }
        try await observe(candidates, .giveBack, mark: mark, refusals: refusals)
        // The id must be gone: an automatic re-probe lands on device_dax.
        mark = try await guest.mark()
        try await unbind(candidates)
        try await observe(candidates, .staleID, mark: mark, refusals: try await probe(candidates))
        // Without remove_id the id match competes with type matching in list order.
        mark = try await guest.mark()
        try await unbind(candidates)
        for device in candidates {
            _ = try await guest.busOperation(.newID, driver: Scenario.fsdev, device: device.name)
            _ = try await guest.busOperation(.unbind, driver: Scenario.fsdev, device: device.name)
        }
        _ = try await probe(candidates)
        let now = try await guest.daxDrivers()
        var notes: [String: String] = [:]
        for device in candidates {
            notes[device.name] = "with fsdev_dax's id left in place, \(now[device.name] ?? "no driver") won the re-probe (registered \(registered.joined(separator: " < ")))"
        }
        try await observe(candidates, .keptID, mark: mark, notes: notes)
        // The id out again and every device back on device_dax, for the steps after.
        try await unbind(candidates.filter { now[$0.name] != Scenario.deviceDax })
        for device in candidates {
            _ = try await guest.busOperation(.removeID, driver: Scenario.fsdev, device: device.name)
            if now[device.name] != Scenario.deviceDax { _ = try await guest.busOperation(.bind, driver: Scenario.deviceDax, device: device.name) }
        }
    }

    /// system-ram devices, and kmem-type ones back from devdax, explicitly to kmem.
    mutating func systemRAM(reconfigured: [ScenarioDevice]) async throws {
        let targets = devices.filter { $0.role == .systemRAM } + reconfigured
        guard !targets.isEmpty else { return }
        guard has(Scenario.kmem) else { return skip(.systemRAM, "kmem is not in this order") }
        let mark = try await guest.mark()
        try await observe(targets, .systemRAM, mark: mark, refusals: try await reconfigure(targets, to: "system-ram"))
        // daxctl binds by new_id and never removes the id it wrote (kmem's for system-ram,
        // device_dax's for devdax): left in place, those ids decide later re-probes by list
        // order. The kept-id step shows that competition; the steps after start clean.
        let now = try await guest.daxDrivers()
        try await unbind(targets)
        for device in targets {
            _ = try await guest.busOperation(.removeID, driver: Scenario.kmem, device: device.name)
            if device.role == .kmemType { _ = try await guest.busOperation(.removeID, driver: Scenario.deviceDax, device: device.name) }
            if let driver = now[device.name] { _ = try await guest.busOperation(.bind, driver: driver, device: device.name) }
        }
    }

    /// Late load (after the steps that keep the order under test, since it changes the
    /// driver list): the others loaded, every device unbound, fsdev_dax loaded last; whatever
    /// it did not take on registering is then re-probed.
    mutating func lateLoad() async throws {
        guard has(Scenario.fsdev) else { return skip(.lateLoad, "fsdev_dax is not in this order") }
        try await unbind(devices)
        try await guest.unload(Scenario.fsdev)
        let mark = try await guest.mark()
        try await guest.load(Scenario.fsdev, parameters: plan.parameters[Scenario.fsdev] ?? [])
        try await readRegistration()
        let now = try await guest.daxDrivers()
        let refusals = try await probe(devices.filter { now[$0.name] == nil })
        try await observe(devices, .lateLoad, mark: mark, refusals: refusals)
    }

    /// Every device back on the driver it belongs to (device_dax, kmem for kmem-type ones),
    /// bound explicitly, so a step starts from the state the thread describes and not from
    /// what an earlier step (a V9 grab, say) left.
    func restore() async throws {
        let now = try await guest.daxDrivers()
        for device in devices {
            let own = device.role == .kmemType ? Scenario.kmem : Scenario.deviceDax
            guard has(own), now[device.name] != own else { continue }
            try await unbind([device])
            _ = try await guest.busOperation(.bind, driver: own, device: device.name)
        }
    }

    /// The thread's procedure: the devices bound, fsdev_dax alone unloaded and loaded again,
    /// then every device re-probed; and device_dax alone reloaded with fsdev_dax loaded.
    mutating func reloads() async throws {
        if has(Scenario.fsdev) {
            try await restore()
            let mark = try await guest.mark()
            try await guest.unload(Scenario.fsdev)
            try await guest.load(Scenario.fsdev, parameters: plan.parameters[Scenario.fsdev] ?? [])
            try await readRegistration()
            try await unbind(devices)
            try await observe(devices, .reloadFsdev, mark: mark, refusals: try await probe(devices))
        } else {
            skip(.reloadFsdev, "fsdev_dax is not in this order")
        }
        if has(Scenario.deviceDax) {
            try await restore()
            let mark = try await guest.mark()
            let now = try await guest.daxDrivers()
            try await unbind(devices.filter { now[$0.name] == Scenario.deviceDax })
            try await guest.unload(Scenario.deviceDax)
            try await guest.load(Scenario.deviceDax, parameters: plan.parameters[Scenario.deviceDax] ?? [])
            try await readRegistration()
            try await observe(devices, .reloadDeviceDax, mark: mark)
        } else {
            skip(.reloadDeviceDax, "device_dax is not in this order")
        }
    }
}

/// A step an order did not take, and why (the kernel lacks it, the region had no room, the
/// driver is not in the order).
public struct SkippedStep: Sendable, Codable, Hashable {
    public let step: ProbeStep
    public let reason: String
}

/// Where a run can hot-add, found once before the orders (each order destroys what it
/// added, so the room stays the same), and what it cannot hot-add and why.
struct HotAddRoom: Sendable {
    /// An NVDIMM or legacy-pmem region with 256 MiB free, and its source.
    var nvdimm: (String, String)?
    /// A 1-way CXL region the topology leaves room for, and the guest's CXL devices.
    var cxl: (CXLRegionPlan.Region, CXLGuest)?
    var skipped: [String] = []

    static func find<G>(_ guest: GuestOperations<G>, machine: GuestMachine) async throws -> HotAddRoom {
        var room = HotAddRoom()
        let regions = try await guest.regionsByProvider().filter { $0.provider != "CXL" }
        if let found = regions.first(where: { ($0.region["available_size"]?.intValue ?? 0) >= Int(256 << 20) }), let name = found.region["dev"]?.stringValue {
            room.nvdimm = (name, found.provider == "e820" ? "legacy-pmem" : "nvdimm")
        } else {
            room.skipped.append(regions.isEmpty ? "a namespace: the topology has no NVDIMM or legacy-pmem region" : "a namespace: no NVDIMM region has 256 MiB free")
        }
        if machine.features.contains("cxl") {
            let plan = CXLRegionPlan(topology: machine.topology)
            if let spare = plan.spares.first, let cxl = try await CXLGuest.look(guest) {
                room.cxl = (spare, cxl)
            } else {
                room.skipped.append("a CXL region: no room (a device with more than 256 MiB of a kind, or one left out of an "
                    + "interleave, in a 1-target window whose host bridge has two root ports, leaves room)")
            }
        }
        // New dax devices carved from a dax region need free space in it; every device made
        // here spans its region, so say so when that holds.
        let daxRegions = try await guest.tool("daxctl", ["list", "-R"]).json?.asList ?? []
        if !daxRegions.contains(where: { ($0["available_size"]?.intValue ?? 0) >= Int(2 << 20) }) {
            room.skipped.append("a dax device (daxctl create-device): no dax region has free space, each device spans its region")
        }
        return room
    }
}
