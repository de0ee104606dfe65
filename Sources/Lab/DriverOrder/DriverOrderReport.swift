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
    /// Bound to fsdev_dax explicitly, the way daxctl does it (new_id, then bind).
    case explicitFsdev = "explicit-fsdev"
    /// Given back to device_dax (unbind, remove_id, bind).
    case giveBack = "give-back"

    /// Steps in which nothing asked for fsdev_dax: binding there is the V9 bug.
    public var isAutomatic: Bool { self == .load || self == .driversProbe || self == .recreate }
}

public enum Verdict: String, Sendable, Codable {
    case pass, fail
    case notApplicable = "n/a"
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
    public enum Role: String, Sendable, Codable { case devdax, systemRAM = "system-ram" }
    public let name: String
    public let role: Role
    /// `namespace0.0` (ndctl) or `region3` (cxl).
    public let parent: String
    /// nvdimm, legacy-pmem or cxl-pmem.
    public let source: String
}

/// Everything a driver-order run found.
public struct DriverOrderReport: Sendable, Codable {
    public var kernel: String
    public var topology: String
    public var drivers: [String]
    public var fsdev: FsdevDriver
    public var devices: [ScenarioDevice] = []
    /// Parts of the topology the kernel could not turn into dax devices, with its own words.
    public var notApplicable: [String] = []
    public var rounds: [[OrderResult]] = []
    /// Repeated in JSON for machines: pass, fail, n/a or error.
    public var verdictText: String = ""
    /// The last lines of the guest's serial console, kept as evidence when the run failed.
    public var console: [String] = []
    public var seed: UInt64
    public var seconds: Double = 0
    /// Why the run could not be done, when it could not.
    public var error: String?

    public init(kernel: String, topology: String, drivers: [String], fsdev: FsdevDriver, seed: UInt64) {
        self.kernel = kernel
        self.topology = topology
        self.drivers = drivers
        self.fsdev = fsdev
        self.seed = seed
    }

    public var orderRuns: [OrderResult] { rounds.flatMap { $0 } }
    public var failedOrders: [OrderResult] { orderRuns.filter(\.failed) }
    public var failureRate: FailureRate { FailureRate(failures: failedOrders.count, trials: orderRuns.count) }

    /// pass, fail, n/a (the kernel could not make the devices this topology is about, as with
    /// CXL regions refused in a VM), or error (the run could not be done).
    public var verdict: String {
        if devices.isEmpty && !notApplicable.isEmpty { return "n/a" }
        if error != nil || devices.isEmpty { return "error" }
        return failedOrders.isEmpty ? "pass" : "fail"
    }

    /// 0 when every invariant held, 1 when one was violated, 2 when the run could not be done
    /// (not applicable included: no invariant was checked).
    public var exitStatus: Int32 {
        switch verdict {
        case "pass": 0
        case "fail": 1
        default: 2
        }
    }
}
