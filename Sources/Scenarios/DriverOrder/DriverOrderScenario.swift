import AgentProtocol
import Foundation
import GuestImage
import HostSupport
import LabRuntime

/// The driver-order scenario: for each order of a dax driver set, unbind and unload the
/// drivers, load them in that order, make every dax device probe again in each way the
/// kernel offers, and check that fsdev_dax never binds on its own, devdax devices end on
/// device_dax, system-ram devices on kmem, and an explicit bind to fsdev_dax works and can
/// be undone. The host holds this policy; the agent only does the moves.
public struct DriverOrderScenario: Scenario {
    public static let fsdev = "fsdev_dax"
    public static let deviceDax = "device_dax"
    public static let kmem = "kmem"
    public static let defaultDrivers = [deviceDax, kmem, fsdev]
    static let namespaceSize = "256M"

    public var name: String { "driver-order" }
    /// The dax drivers to order; fsdev_dax is dropped where the kernel cannot have one.
    public var drivers: [String]
    /// `--module` arguments: modules in place of the drivers of their names.
    public var modules: [ModuleSpec]
    /// The stand-in fsdev_dax's source folder (images/modules/fsdev_dax).
    public var standInSource: String
    public var selection: OrderSelection
    public var seed: UInt64
    public var repeats: Int

    public init(drivers: [String]? = nil, modules: [ModuleSpec] = [], standInSource: String, selection: OrderSelection = .all,
                seed: UInt64 = 1, repeats: Int = 1) {
        self.drivers = drivers ?? Self.defaultDrivers
        self.modules = modules
        self.standInSource = standInSource
        self.selection = selection
        self.seed = seed
        self.repeats = max(1, repeats)
    }

    public func setup(for kernel: KernelUnderTest, cache: CacheDirectory, progress: @escaping @Sendable (String) -> Void) async throws -> Plan {
        try await DriverOrderSetup(cache: cache, standInSource: standInSource).plan(kernel: kernel, drivers: drivers, specs: modules, progress: progress)
    }

    // MARK: - Setup

    /// Makes dax devices from what the topology has; returns them and what the kernel refused.
    func makeDevices<G>(_ guest: GuestOperations<G>, drivers: [String], features: Set<String>) async throws -> (devices: [ScenarioDevice], notApplicable: [String]) {
        var devices: [ScenarioDevice] = []
        var notApplicable: [String] = []
        // daxctl refuses to make system-ram while the kernel would online new memory itself.
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
        if features.contains("cxl") {
            notApplicable += try await makeCXLDevices(guest, into: &devices)
        }
        // One devdax device becomes system-ram when no region had room for a second.
        if !devices.contains(where: { $0.role == .systemRAM }), drivers.contains(Self.kmem), devices.count >= 2,
           let last = devices.indices.last {
            devices[last] = ScenarioDevice(name: devices[last].name, role: .systemRAM, parent: devices[last].parent, source: devices[last].source)
        }
        return (devices, notApplicable)
    }

    /// CXL persistent regions through the cxl tool, then a devdax namespace on them. From 6.2 on
    /// a kernel in a VM refuses the commit without CXL_REGION_INVALIDATION_TEST: the kernel's
    /// own words are reported and the CXL part is not applicable rather than passed.
    func makeCXLDevices<G>(_ guest: GuestOperations<G>, into devices: inout [ScenarioDevice]) async throws -> [String] {
        let memdevs = try await guest.tool("cxl", ["list", "-M"])
        guard let memdev = memdevs.json?.asList.first(where: { ($0["pmem_size"]?.intValue ?? 0) > 0 })?["memdev"]?.stringValue else {
            let none = memdevs.json?.asList.isEmpty ?? true
            return [none ? "CXL: the kernel created no CXL memory device" : "CXL: no memory device with persistent capacity (volatile CXL regions are not exercised yet)"]
        }
        let decoders = try await guest.tool("cxl", ["list", "-D", "-d", "root"])
        guard let root = decoders.json?.asList.first(where: { $0["pmem_capable"]?.boolValue == true })?["decoder"]?.stringValue else {
            return ["CXL: no root decoder takes persistent memory"]
        }
        let mark = try await guest.mark()
        let region = try await guest.tool("cxl", ["create-region", "-m", "-t", "pmem", "-d", root, "-w", "1", memdev, "-s", Self.namespaceSize])
        guard region.status == 0, let name = region.json?["region"]?.stringValue else {
            // The kernel's own reason: its first complaint since the attempt (a warning's stack
            // trace follows it and says nothing).
            let kernel = try await guest.dmesg(since: mark)
            let complaint = kernel.first { $0.contains("Failed") || $0.contains("failed") || $0.contains("error") }
                ?? kernel.first { $0.lowercased().contains("cxl") && $0.contains("region") }
            let words = complaint ?? region.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
            return ["CXL: the kernel refused to commit a region on \(memdev): \(words)"]
        }
        let made = try await guest.tool("ndctl", ["create-namespace", "-m", "devdax", "-r", name])
        if made.status == 0, let namespace = made.json?["dev"]?.stringValue,
           let dax = made.json?["daxregion"]?["devices"]?.asList.first?["chardev"]?.stringValue {
            devices.append(ScenarioDevice(name: dax, role: .devdax, parent: namespace, source: "cxl-pmem"))
            return []
        }
        return ["CXL: region \(name) committed but no devdax namespace on it: \(made.stderr.trimmingCharacters(in: .whitespacesAndNewlines))"]
    }

    // MARK: - One order

    func runOrder<G>(_ order: [String], plan: Plan, devices: [ScenarioDevice], guest: GuestOperations<G>) async throws -> OrderResult {
        let clock = ContinuousClock()
        let start = clock.now
        var observations: [Observation] = []
        do {
            try await reset(drivers: plan.drivers, guest: guest)
            for module in order {
                try await guest.load(module, parameters: plan.parameters[module] ?? [])
            }
            // 1. What the bus attached while the drivers registered.
            var mark = try await guest.mark()
            let current = try await guest.daxDevices()
            for device in devices {
                observations.append(try await observe(device, step: .load, drivers: plan.drivers, actual: current.first { $0.name == device.name }?.driver,
                                                      mark: mark, guest: guest))
            }
            // 2. Unbound, then drivers_probe.
            for device in devices {
                mark = try await guest.mark()
                _ = try await guest.busOperation(.unbind, driver: nil, device: device.name)
                let refusal = try await guest.busOperation(.driversProbe, driver: nil, device: device.name)
                observations.append(try await observe(device, step: .driversProbe, drivers: plan.drivers, actual: try await guest.driver(of: device.name),
                                                      mark: mark, guest: guest, refusal: refusal))
            }
            // 3. Re-created: its namespace disabled and enabled.
            for device in devices {
                mark = try await guest.mark()
                _ = try await guest.busOperation(.unbind, driver: nil, device: device.name)
                try await guest.must("ndctl", ["disable-namespace", device.parent])
                try await guest.must("ndctl", ["enable-namespace", device.parent])
                observations.append(try await observe(device, step: .recreate, drivers: plan.drivers, actual: try await guest.driver(of: device.name), mark: mark, guest: guest))
            }
            // 4. system-ram devices, explicitly to kmem.
            if order.contains(Self.kmem) {
                for device in devices where device.role == .systemRAM {
                    mark = try await guest.mark()
                    let outcome = try await guest.tool("daxctl", ["reconfigure-device", "-m", "system-ram", device.name])
                    let refusal = outcome.status == 0 ? nil : outcome.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
                    observations.append(try await observe(device, step: .systemRAM, drivers: plan.drivers, actual: try await guest.driver(of: device.name),
                                                          mark: mark, guest: guest, refusal: refusal))
                }
            }
            // 5. fsdev_dax bound explicitly, then the device given back.
            if order.contains(Self.fsdev), let device = devices.first(where: { $0.role == .devdax }) {
                mark = try await guest.mark()
                _ = try await guest.busOperation(.unbind, driver: nil, device: device.name)
                var refusal = try await guest.busOperation(.newID, driver: Self.fsdev, device: device.name)
                if refusal == nil, try await guest.driver(of: device.name) == nil {
                    refusal = try await guest.busOperation(.bind, driver: Self.fsdev, device: device.name)
                }
                observations.append(try await observe(device, step: .explicitFsdev, drivers: plan.drivers, actual: try await guest.driver(of: device.name),
                                                      mark: mark, guest: guest, refusal: refusal))
                if order.contains(Self.deviceDax) {
                    mark = try await guest.mark()
                    _ = try await guest.busOperation(.unbind, driver: Self.fsdev, device: device.name)
                    _ = try await guest.busOperation(.removeID, driver: Self.fsdev, device: device.name)
                    let back = try await guest.busOperation(.bind, driver: Self.deviceDax, device: device.name)
                    observations.append(try await observe(device, step: .giveBack, drivers: plan.drivers, actual: try await guest.driver(of: device.name),
                                                          mark: mark, guest: guest, refusal: back))
                }
            }
            return OrderResult(order: order, observations: observations, seconds: (clock.now - start).seconds, error: nil)
        } catch let error as StepFailure {
            return OrderResult(order: order, observations: observations, seconds: (clock.now - start).seconds, error: error.message)
        }
    }

    /// What the driver must be after a step, or nil when any driver but fsdev_dax will do.
    static func expected(_ device: ScenarioDevice, step: ProbeStep, drivers: [String]) -> String? {
        switch step {
        case .load, .driversProbe, .recreate:
            return drivers.contains(Self.deviceDax) ? Self.deviceDax : nil
        case .systemRAM: return Self.kmem
        case .explicitFsdev: return Self.fsdev
        case .giveBack: return Self.deviceDax
        }
    }

    func observe<G>(_ device: ScenarioDevice, step: ProbeStep, drivers: [String], actual: String?, mark: Int64, guest: GuestOperations<G>,
                    refusal: String? = nil) async throws -> Observation {
        let expected = Self.expected(device, step: step, drivers: drivers)
        let (verdict, note) = Self.judge(step: step, expected: expected, actual: actual, refusal: refusal)
        let dmesg = verdict == .fail ? try await guest.dmesg(since: mark) : []
        return Observation(device: device.name, step: step, expected: expected, actual: actual, verdict: verdict, note: note, dmesg: dmesg)
    }

    /// The invariants, as a pure function of what was expected and what happened.
    static func judge(step: ProbeStep, expected: String?, actual: String?, refusal: String?) -> (Verdict, String?) {
        if step.isAutomatic, actual == fsdev {
            return (.fail, "fsdev_dax bound on its own (\(step.rawValue)); it must bind only when asked")
        }
        if let expected, actual != expected {
            let why = refusal.map { ": \($0)" } ?? ""
            return (.fail, "ended on \(actual ?? "no driver"), expected \(expected)\(why)")
        }
        return (.pass, nil)
    }

    /// Every device unbound (system-ram memory offlined first) and the drivers unloaded.
    func reset<G>(drivers: [String], guest: GuestOperations<G>) async throws {
        for device in try await guest.daxDevices() where device.driver != nil {
            if device.driver == Self.kmem {
                _ = try await guest.tool("daxctl", ["offline-memory", device.name])
            }
            if let refusal = try await guest.busOperation(.unbind, driver: nil, device: device.name) {
                throw StepFailure("could not unbind \(device.name) from \(device.driver ?? "?"): \(refusal)")
            }
        }
        let loaded = try await guest.loadedModules()
        // Unload in reverse of the set so dependents go first.
        for module in drivers.reversed() where loaded.contains(module) {
            try await guest.unload(module)
        }
    }

    // MARK: - The run

    public func run(_ plan: Plan, on guest: some GuestAgent, features: Set<String>,
                    progress: @escaping @Sendable (String) -> Void = { _ in }) async -> ScenarioOutcome {
        let operations = GuestOperations(guest: guest)
        let clock = ContinuousClock()
        let start = clock.now
        var devices: [ScenarioDevice] = []
        var notApplicable: [String] = []
        var rounds: [[OrderResult]] = []
        var error: String?
        do {
            progress("making dax devices")
            let made = try await makeDevices(operations, drivers: plan.drivers, features: features)
            devices = made.devices
            notApplicable = made.notApplicable
            if devices.isEmpty {
                if notApplicable.isEmpty { error = "no dax device could be made from this topology" }
            } else {
                for round in 0..<repeats {
                    let orders = DriverOrders.orders(plan.drivers, selection: selection, seed: seed, round: round)
                    var results: [OrderResult] = []
                    for (index, order) in orders.enumerated() {
                        progress("round \(round + 1)/\(repeats), order \(index + 1)/\(orders.count): \(order.joined(separator: " < "))")
                        results.append(try await runOrder(order, plan: plan, devices: devices, guest: operations))
                    }
                    rounds.append(results)
                }
            }
        } catch let caught {
            error = "\(caught)"
        }
        let report = DriverOrderReport(drivers: plan.drivers, fsdev: plan.fsdev, devices: devices, rounds: rounds, seed: seed)
        return ScenarioOutcome(scenario: name, cases: report.cases, rounds: rounds.count, subjects: devices.count, notApplicable: notApplicable,
                               error: error, guestSeconds: (clock.now - start).seconds, facts: plan.facts, detail: .driverOrder(report))
    }
}
