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
            // 3. Re-created: its namespace (or CXL RAM region) disabled and enabled.
            for device in devices {
                mark = try await guest.mark()
                _ = try await guest.busOperation(.unbind, driver: nil, device: device.name)
                let tool = device.role == .kmemType ? "cxl" : "ndctl"
                let noun = device.role == .kmemType ? "region" : "namespace"
                try await guest.must(tool, ["disable-\(noun)", device.parent])
                try await guest.must(tool, ["enable-\(noun)", device.parent])
                observations.append(try await observe(device, step: .recreate, drivers: plan.drivers, actual: try await guest.driver(of: device.name), mark: mark, guest: guest))
            }
            // 4. kmem-type devices handed to device_dax with daxctl, then back to kmem below.
            if order.contains(Self.deviceDax), order.contains(Self.kmem) {
                for device in devices where device.role == .kmemType {
                    mark = try await guest.mark()
                    let outcome = try await guest.tool("daxctl", ["reconfigure-device", "-m", "devdax", device.name])
                    let refusal = outcome.status == 0 ? nil : outcome.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
                    observations.append(try await observe(device, step: .devdaxMode, drivers: plan.drivers, actual: try await guest.driver(of: device.name),
                                                          mark: mark, guest: guest, refusal: refusal))
                }
            }
            // 5. system-ram devices (and kmem-type ones back from devdax), explicitly to kmem.
            if order.contains(Self.kmem) {
                let reconfigured = order.contains(Self.deviceDax)
                for device in devices where device.role == .systemRAM || (device.role == .kmemType && reconfigured) {
                    mark = try await guest.mark()
                    let outcome = try await guest.tool("daxctl", ["reconfigure-device", "-m", "system-ram", device.name])
                    let refusal = outcome.status == 0 ? nil : outcome.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
                    observations.append(try await observe(device, step: .systemRAM, drivers: plan.drivers, actual: try await guest.driver(of: device.name),
                                                          mark: mark, guest: guest, refusal: refusal))
                }
            }
            // 6. fsdev_dax bound explicitly, then the device given back.
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
            // A kmem-type device (a CXL RAM region's) matches kmem alone by type.
            if device.role == .kmemType { return drivers.contains(Self.kmem) ? Self.kmem : nil }
            return drivers.contains(Self.deviceDax) ? Self.deviceDax : nil
        case .devdaxMode: return Self.deviceDax
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

    public func run(_ plan: Plan, on guest: some GuestAgent, machine: GuestMachine,
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
            let made = try await makeDevices(operations, drivers: plan.drivers, machine: machine)
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
