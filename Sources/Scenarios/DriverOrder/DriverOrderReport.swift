import Foundation

/// How a dax device was brought to probe, and what the scenario expected of it.
public enum ProbeStep: String, Sendable, Codable, CaseIterable {
    /// Right after the drivers loaded in the order under test (the bus attaches on register).
    case load
    /// Unbound, then written to the bus's drivers_probe.
    case driversProbe = "drivers-probe"
    /// Its namespace or region disabled and enabled again, which re-creates the device.
    case recreate
    /// Reconfigured to system-ram with daxctl (an explicit bind to kmem).
    case systemRAM = "system-ram"
    /// A kmem-type device reconfigured to devdax with daxctl (an explicit bind to device_dax).
    case devdaxMode = "devdax-mode"
    /// Bound to fsdev_dax explicitly, the way daxctl does it (new_id, then bind).
    case explicitFsdev = "explicit-fsdev"
    /// Given back to device_dax (unbind, remove_id, bind).
    case giveBack = "give-back"

    /// Steps in which nothing asked for fsdev_dax: binding there is the V9 bug.
    public var isAutomatic: Bool { self == .load || self == .driversProbe || self == .recreate }
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
}

/// One order of the driver set.
public struct OrderResult: Sendable, Codable, Hashable {
    public let order: [String]
    public let observations: [Observation]
    public let seconds: Double
    /// Set when the order could not be run at all (a module that would not unload, ...).
    public let error: String?

    public var failed: Bool { error != nil || observations.contains { $0.verdict == .fail } }
    public var label: String { order.joined(separator: " < ") }
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
