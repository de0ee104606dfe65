import AgentProtocol
import Foundation
import Kernels
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
    /// udev workers for the modalias order: systemd-udevd runs up to 8 + CPUs; two are enough
    /// to let two modprobes of one alias race.
    static let coldplugWorkers = 4

    /// The dax drivers to order; fsdev_dax is dropped where the kernel cannot have one.
    public var drivers: [String]
    /// `--module` arguments: modules in place of the drivers of their names.
    public var modules: [ModuleSpec]
    /// The stand-in fsdev_dax's source folder (images/modules/fsdev_dax).
    public var standInSource: String
    public var selection: OrderSelection
    public var seed: UInt64
    public var repeats: Int

    /// How many rounds `--repeat` (or a matrix file's `repeat`) may ask for: each round runs
    /// every order again in the guest, so a thousand is hours already.
    public static let repeatRange = 1...1000

    /// What is wrong with a repeat count, spelled as the input named it (`--repeat`, `repeat`),
    /// with the fix; nil when it can run. The command line and matrix files both check here.
    public static func repeatProblem(_ repeats: Int, spelled name: String) -> String? {
        guard !repeatRange.contains(repeats) else { return nil }
        return "\(name) \(repeats) is out of range: give \(repeatRange.lowerBound) to \(repeatRange.upperBound) rounds"
    }

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

    /// How an order's drivers come to be loaded.
    enum Loading {
        /// One by one, in this order.
        case sequence([String])
        /// As udev loads them at boot: modprobe of each dax device's MODALIAS, in parallel.
        case modalias(workers: Int)

        /// The order's case name: `a < b < c`, or udev's.
        var label: String {
            switch self {
            case .sequence(let order): order.joined(separator: " < ")
            case .modalias(let workers): "as udev loads them (modprobe $MODALIAS, \(workers) workers)"
            }
        }
    }

    func runOrder<G>(_ loading: Loading, plan: Plan, devices: [ScenarioDevice], room: HotAddRoom, guest: GuestOperations<G>) async throws -> OrderResult {
        let clock = ContinuousClock()
        let start = clock.now
        var run = OrderRun(plan: plan, guest: guest, devices: devices)
        var coldplug: ColdplugReport?
        do {
            try await Self.reset(drivers: plan.drivers, guest: guest)
            switch loading {
            case .sequence(let order):
                try await run.load(order)
                try await run.attached(step: .load)
            case .modalias(let workers):
                coldplug = try await run.autoload(workers: workers)
                try await run.attached(step: .autoload)
            }
            // First the steps that keep the driver list as the order made it, then the ones that
            // reload a driver (and so move it to the end of the list).
            try await run.hotAdd(in: room)
            try await run.driversProbe()
            try await run.recreate()
            let moved = try await run.devdaxMode()
            try await run.explicitRoundTrips(candidates: devices.filter { $0.role != .kmemType } + moved)
            try await run.systemRAM(reconfigured: moved)
            try await run.lateLoad()
            try await run.reloads()
            return OrderResult(order: loading.label, registered: run.loadedAs, observations: run.observations, skipped: run.skipped,
                               coldplug: coldplug?.workers, seconds: (clock.now - start).seconds, error: nil)
        } catch let error as StepFailure {
            return OrderResult(order: loading.label, registered: run.loadedAs, observations: run.observations, skipped: run.skipped,
                               coldplug: coldplug?.workers, seconds: (clock.now - start).seconds, error: error.message)
        } catch {
            // The guest died or stopped answering: what this order saw so far is kept, and the
            // run stops.
            let partial = OrderResult(order: loading.label, registered: run.loadedAs, observations: run.observations, skipped: run.skipped,
                                      coldplug: coldplug?.workers, seconds: (clock.now - start).seconds, error: "\(error)")
            throw OrderInterrupted(partial: partial, cause: error)
        }
    }

    /// An order cut short by something other than a step's failure, with what it observed.
    struct OrderInterrupted: Error {
        let partial: OrderResult
        let cause: any Error
    }

    /// What the driver must be after a step, or nil when any driver but fsdev_dax will do.
    static func expected(_ device: ScenarioDevice, step: ProbeStep, drivers: [String]) -> String? {
        switch step {
        case .staleID where device.role == .kmemType:
            // Reconfigured by daxctl, it carries device_dax's id: kmem (by type) and device_dax
            // (by id) both match; only fsdev_dax must not win.
            return nil
        case .load, .autoload, .driversProbe, .recreate, .lateLoad, .reloadFsdev, .reloadDeviceDax, .hotAdd, .staleID:
            // A kmem-type device (a CXL RAM region's) matches kmem alone by type.
            if device.role == .kmemType { return drivers.contains(Self.kmem) ? Self.kmem : nil }
            return drivers.contains(Self.deviceDax) ? Self.deviceDax : nil
        case .keptID: return nil
        case .devdaxMode: return Self.deviceDax
        case .systemRAM: return Self.kmem
        case .explicitFsdev: return Self.fsdev
        case .giveBack: return Self.deviceDax
        }
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
    static func reset<G>(drivers: [String], guest: GuestOperations<G>) async throws {
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
        var rounds: [[OrderResult]] = []
        // The round under way, kept whatever ends it.
        var current: [OrderResult] = []
        let run = await DaxDeviceRun.run(on: guest, drivers: plan.drivers, machine: machine, progress: progress) { operations, devices in
            let room = try await HotAddRoom.find(operations, machine: machine)
            for round in 0..<repeats {
                // Every order of the set (or a sample), then the order udev makes.
                let orders = DriverOrders.orders(plan.drivers, selection: selection, seed: seed, round: round).map(Loading.sequence)
                    + [.modalias(workers: Self.coldplugWorkers)]
                for (index, loading) in orders.enumerated() {
                    progress("round \(round + 1)/\(repeats), order \(index + 1)/\(orders.count): \(loading.label)")
                    do {
                        current.append(try await runOrder(loading, plan: plan, devices: devices, room: room, guest: operations))
                    } catch let interrupted as OrderInterrupted {
                        current.append(interrupted.partial)
                        throw interrupted.cause
                    }
                }
                rounds.append(current)
                current = []
            }
            return nil
        }
        if !current.isEmpty { rounds.append(current) }
        let report = DriverOrderReport(drivers: plan.drivers, fsdev: plan.fsdev, devices: run.devices, rounds: rounds, seed: seed)
        return ScenarioOutcome(scenario: name, cases: report.cases, rounds: rounds.count, subjects: run.devices.count, notApplicable: run.notApplicable,
                               failure: run.failure, guestSeconds: run.seconds, facts: plan.facts, detail: ScenarioDetail(report))
    }
}
