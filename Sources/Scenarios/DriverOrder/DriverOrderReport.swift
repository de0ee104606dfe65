import AgentProtocol
import Foundation

/// How a dax device was brought to probe, and what the scenario expected of it.
public enum ProbeStep: String, Sendable, Codable, CaseIterable {
    /// Right after the drivers loaded in the order under test (the bus attaches on register).
    case load
    /// Right after udev-style autoload: `add` replayed, `modprobe $MODALIAS` per device.
    case autoload
    /// A devdax namespace created while every driver is loaded.
    case hotAdd = "hot-add"
    /// Unbound, then written to the bus's drivers_probe.
    case driversProbe = "drivers-probe"
    /// Its namespace or region disabled and enabled again, which re-creates the device.
    case recreate
    /// A kmem-type device reconfigured to devdax with daxctl (an explicit bind to device_dax).
    case devdaxMode = "devdax-mode"
    /// Bound to fsdev_dax explicitly, the way daxctl does it (new_id, then bind).
    case explicitFsdev = "explicit-fsdev"
    /// Given back to device_dax (unbind, remove_id, bind).
    case giveBack = "give-back"
    /// Re-probed after the give-back: fsdev_dax's id must be gone.
    case staleID = "stale-id"
    /// Given back without remove_id and re-probed: who wins is information, not a verdict.
    case keptID = "kept-id"
    /// Reconfigured to system-ram with daxctl (an explicit bind to kmem).
    case systemRAM = "system-ram"
    /// The others loaded, the devices unbound, fsdev_dax loaded last, then re-probed.
    case lateLoad = "late-load"
    /// The thread's procedure: fsdev_dax alone unloaded and loaded again, then re-probed.
    case reloadFsdev = "reload-fsdev"
    /// device_dax alone unloaded and loaded again, fsdev_dax loaded.
    case reloadDeviceDax = "reload-device-dax"

    /// Steps in which nothing asked for fsdev_dax: binding there is the V9 bug.
    public var isAutomatic: Bool {
        switch self {
        case .load, .autoload, .hotAdd, .driversProbe, .recreate, .lateLoad, .reloadFsdev, .reloadDeviceDax, .staleID: true
        case .devdaxMode, .explicitFsdev, .giveBack, .keptID, .systemRAM: false
        }
    }

    /// What a pass of this step proves, for the report.
    public var proves: String {
        switch self {
        case .load: "no driver takes a device it does not match while the drivers register in this order"
        case .autoload: "the same when udev's parallel `modprobe $MODALIAS` loads the drivers (dax:t0 names device_dax, kmem and fsdev_dax)"
        case .hotAdd: "a device created while every driver is loaded (a namespace, a CXL region) lands on its own driver"
        case .driversProbe: "an unbound device re-probed through drivers_probe lands on its own driver"
        case .recreate: "a device re-created (namespace or region disabled and enabled) lands on its own driver"
        case .lateLoad: "fsdev_dax loaded last, with devices unbound, takes none of them"
        case .reloadFsdev: "after the thread's reload of fsdev_dax alone, re-probed devices land on device_dax"
        case .reloadDeviceDax: "device_dax reloaded alone gets its devices back, not fsdev_dax"
        case .devdaxMode: "daxctl hands a kmem-type device to device_dax"
        case .explicitFsdev: "fsdev_dax binds when asked, the way daxctl asks (new_id, bind)"
        case .giveBack: "the device goes back to device_dax (unbind, remove_id, bind)"
        case .staleID: "remove_id took effect: an automatic re-probe lands on device_dax"
        case .keptID: "information: which driver wins a re-probe when fsdev_dax's id is left in place"
        case .systemRAM: "daxctl hands the device to kmem as system RAM"
        }
    }
}

/// One device after one step of one order.
public struct Observation: Sendable, Codable, Hashable {
    public let device: String
    public let step: ProbeStep
    public let expected: String?
    public let actual: String?
    public let verdict: Verdict
    /// Why it failed, in words.
    public let note: String?
    /// The kernel's messages during that step, for failures.
    public let dmesg: [String]
    /// The drivers of the set in the order they had registered at that step.
    public var registered: [String]? = nil
}

/// One order of the driver set.
public struct OrderResult: Sendable, Codable, Hashable {
    /// The order's name: the drivers as loaded (`a < b < c`), or the udev autoload order's.
    public let label: String
    /// The drivers in the order they registered (for autoload: what modprobe did).
    public let registered: [String]
    public let observations: [Observation]
    /// Steps this order did not take, and why.
    public let skipped: [SkippedStep]
    /// For the autoload order: each modprobe with its start and end.
    public let coldplug: [ColdplugWorker]?
    public let seconds: Double
    /// Set when the order could not be run at all (a module that would not unload, ...).
    public let error: String?

    public init(order: String, registered: [String], observations: [Observation], skipped: [SkippedStep] = [], coldplug: [ColdplugWorker]? = nil,
                seconds: Double, error: String?) {
        self.label = order
        self.registered = registered
        self.observations = observations
        self.skipped = skipped
        self.coldplug = coldplug
        self.seconds = seconds
        self.error = error
    }

    /// A sequential order, named by its drivers.
    public init(order: [String], observations: [Observation], seconds: Double, error: String?) {
        self.init(order: order.joined(separator: " < "), registered: order, observations: observations, seconds: seconds, error: error)
    }

    enum CodingKeys: String, CodingKey {
        case label, order, registered, observations, skipped, coldplug, seconds, error
    }

    /// Results stored before orders had labels (`order` only) still read.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let drivers = try container.decodeIfPresent([String].self, forKey: .order) ?? []
        label = try container.decodeIfPresent(String.self, forKey: .label) ?? drivers.joined(separator: " < ")
        registered = try container.decodeIfPresent([String].self, forKey: .registered) ?? drivers
        observations = try container.decode([Observation].self, forKey: .observations)
        skipped = try container.decodeIfPresent([SkippedStep].self, forKey: .skipped) ?? []
        coldplug = try container.decodeIfPresent([ColdplugWorker].self, forKey: .coldplug)
        seconds = try container.decode(Double.self, forKey: .seconds)
        error = try container.decodeIfPresent(String.self, forKey: .error)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(label, forKey: .label)
        try container.encode(order, forKey: .order)
        try container.encode(registered, forKey: .registered)
        try container.encode(observations, forKey: .observations)
        try container.encode(skipped, forKey: .skipped)
        try container.encodeIfPresent(coldplug, forKey: .coldplug)
        try container.encode(seconds, forKey: .seconds)
        try container.encodeIfPresent(error, forKey: .error)
    }

    public var failed: Bool { error != nil || observations.contains { $0.verdict == .fail } }
    /// The drivers of a sequential order, from its name.
    public var order: [String] { label.contains(" < ") || !label.contains(" ") ? label.components(separatedBy: " < ") : registered }
}

/// What fsdev_dax is in this run.
public enum FsdevDriver: Sendable, Codable, Hashable, CustomStringConvertible {
    case real
    case standIn(automatch: Bool)
    case user(String)
    case absent(String)

    public var description: String {
        switch self {
        case .real: "the kernel's own fsdev_dax"
        case .standIn(let automatch): "cxllab's stand-in (automatch=\(automatch ? 1 : 0))"
        case .user(let path): "the module given with --module (\(path))"
        case .absent(let reason): "absent: \(reason)"
        }
    }
}

/// A dax device the scenario made, and how it is re-created.
public struct ScenarioDevice: Sendable, Codable, Hashable {
    public enum Role: String, Sendable, Codable {
        /// A devdax namespace's device, for device_dax.
        case devdax
        /// A devdax namespace's device that the scenario reconfigures to system-ram (kmem).
        case systemRAM = "system-ram"
        /// A CXL RAM region's device: the dax bus gives it the kmem type (IORESOURCE_DAX_KMEM),
        /// so it matches kmem alone and starts in system-ram mode.
        case kmemType = "kmem-type"
    }
    public let name: String
    public let role: Role
    /// `namespace0.0` (ndctl) or, for kmem-type devices, the CXL region (`region3`).
    public let parent: String
    /// nvdimm, legacy-pmem, cxl-pmem or cxl-ram.
    public let source: String
}

/// Everything a driver-order run found: its own record, beside the outcome's cases.
public struct DriverOrderReport: Sendable, Codable {
    public let drivers: [String]
    public let fsdev: FsdevDriver
    public let devices: [ScenarioDevice]
    public let rounds: [[OrderResult]]
    public let seed: UInt64

    public init(drivers: [String], fsdev: FsdevDriver, devices: [ScenarioDevice], rounds: [[OrderResult]], seed: UInt64) {
        self.drivers = drivers
        self.fsdev = fsdev
        self.devices = devices
        self.rounds = rounds
        self.seed = seed
    }

    public var orderRuns: [OrderResult] { rounds.flatMap { $0 } }
    public var failedOrders: [OrderResult] { orderRuns.filter(\.failed) }

    /// Each order run as a case of the outcome: its verdict, its first problem and every
    /// violation with the kernel's words.
    public var cases: [CaseResult] {
        rounds.enumerated().flatMap { round, results in
            results.map { result in
                let violations = result.observations.filter { $0.verdict == .fail }
                let message = result.error ?? violations.first.map { "\($0.device) \($0.step.rawValue): \($0.note ?? "")" }
                let evidence = violations.map { observation in
                    "\(observation.device) \(observation.step.rawValue): expected \(observation.expected ?? "any driver but fsdev_dax"), "
                        + "got \(observation.actual ?? "no driver")" + (observation.dmesg.isEmpty ? "" : "\n  " + observation.dmesg.joined(separator: "\n  "))
                }
                let verdict: Verdict = result.error != nil ? .error : violations.isEmpty ? .pass : .fail
                return CaseResult(name: result.label, round: round, verdict: verdict, seconds: result.seconds, message: message, evidence: evidence)
            }
        }
    }
}

extension DriverOrderReport {
    /// Every step: how many observations it made and what its pass proves, or why it was
    /// skipped; then what the kept-id re-probes found and how udev's modprobes ran. A reader
    /// tells a path exercised from one that was not.
    func stepSummary() -> [String] {
        let runs = orderRuns
        guard !runs.isEmpty else { return [] }
        var lines = ["", "Steps (observations, failures: what a pass proves):"]
        let width = (ProbeStep.allCases.map(\.rawValue.count).max() ?? 10) + 2
        for step in ProbeStep.allCases {
            let seen = runs.flatMap(\.observations).filter { $0.step == step }
            let name = "  " + step.rawValue.padding(toLength: width, withPad: " ", startingAt: 0)
            if seen.isEmpty {
                let reasons = Array(Set(runs.flatMap(\.skipped).filter { $0.step == step }.map(\.reason))).sorted()
                lines.append(name + "skipped: " + (reasons.isEmpty ? "no device of this run takes this step" : reasons.joined(separator: "; ")))
            } else {
                let failed = seen.filter { $0.verdict == .fail }.count
                let counts = "\(seen.count), \(failed)".padding(toLength: 9, withPad: " ", startingAt: 0)
                lines.append(name + counts + step.proves)
                let skippedIn = runs.filter { run in run.skipped.contains { $0.step == step } }.count
                if skippedIn > 0 {
                    let reasons = Set(runs.flatMap(\.skipped).filter { $0.step == step }.map(\.reason)).sorted().joined(separator: "; ")
                    lines.append(String(repeating: " ", count: width + 2) + "skipped in \(skippedIn) order(s): \(reasons)")
                }
            }
        }
        let kept = runs.flatMap { run in run.observations.filter { $0.step == .keptID }.map { (run.label, $0) } }
        let winners = Dictionary(grouping: kept, by: { $0.1.actual ?? "no driver" }).mapValues(\.count)
        if !winners.isEmpty {
            lines.append("")
            lines.append("kept-id re-probes won by: " + winners.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)×" }.joined(separator: ", ")
                         + " (fsdev_dax's id left in place competes with type matching in driver-list order)")
        }
        for run in runs where run.coldplug != nil {
            let workers = run.coldplug ?? []
            lines.append("\(run.label): \(workers.count) modprobe(s), drivers registered \(run.registered.joined(separator: " < "))")
        }
        return lines
    }
}
