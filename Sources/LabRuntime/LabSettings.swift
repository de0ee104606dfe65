import Foundation
import HostCheck

/// Where labs live and what may be overridden, resolved once where cxllab starts (from its
/// environment) and handed to the libraries in a `LabContext`: they never read the environment.
public struct LabSettings: Sendable, Hashable {
    /// Lab folders must be reachable by the QEMU user, so they are not under root's home.
    public var labsRoot: String
    /// An accelerator forced by the user instead of the probed one.
    public var accelerator: AcceleratorChoice.Accelerator?
    /// The guest agent executable, when not beside cxllab.
    public var agentExecutable: String?
    /// Another result store than `<cache>/results.sqlite` (a benchmark or drill keeping its
    /// runs apart).
    public var resultStore: String?
    /// Guests at once, when not one per core.
    public var maxGuests: Int?
    /// cxllab's source tree, where the command line finds recipes, topologies and the
    /// stand-in module, when not the tree the executable was built in.
    public var projectHome: String?
    /// Labs restore from saved machines (`SavedMachineBackend`) instead of booting each time.
    public var savedMachines: Bool
    /// The saved machines' disk bound, when not `SavedMachines.defaultLimitBytes`.
    public var savedMachinesLimitBytes: UInt64?

    public static let defaultLabsRoot = "/var/lib/cxllab/labs"

    public init(labsRoot: String = LabSettings.defaultLabsRoot, accelerator: AcceleratorChoice.Accelerator? = nil,
                agentExecutable: String? = nil, resultStore: String? = nil, maxGuests: Int? = nil,
                projectHome: String? = nil, savedMachines: Bool = true, savedMachinesLimitBytes: UInt64? = nil) {
        self.savedMachines = savedMachines
        self.savedMachinesLimitBytes = savedMachinesLimitBytes
        self.labsRoot = labsRoot
        self.accelerator = accelerator
        self.agentExecutable = agentExecutable
        self.resultStore = resultStore
        self.maxGuests = maxGuests
        self.projectHome = projectHome
    }

    /// `CXLLAB_LABS_DIR`, `CXLLAB_ACCEL` (tcg or kvm), `CXLLAB_AGENT`, `CXLLAB_RESULTS`,
    /// `CXLLAB_MAX_GUESTS` (a positive number), `CXLLAB_HOME`, `CXLLAB_SAVED_MACHINES` (0: labs
    /// boot each time instead of restoring saved machines), `CXLLAB_SAVED_MACHINES_MIB` (their disk bound in MiB).
    public static func from(environment: [String: String]) -> LabSettings {
        func value(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        return LabSettings(labsRoot: value("CXLLAB_LABS_DIR") ?? defaultLabsRoot,
                           accelerator: value("CXLLAB_ACCEL").flatMap(AcceleratorChoice.Accelerator.init(rawValue:)),
                           agentExecutable: value("CXLLAB_AGENT"), resultStore: value("CXLLAB_RESULTS"),
                           maxGuests: value("CXLLAB_MAX_GUESTS").flatMap { Int($0) }.flatMap { $0 > 0 ? $0 : nil },
                           projectHome: value("CXLLAB_HOME"), savedMachines: value("CXLLAB_SAVED_MACHINES") != "0",
                           savedMachinesLimitBytes: value("CXLLAB_SAVED_MACHINES_MIB").flatMap { UInt64($0) }.flatMap { $0 > 0 ? $0 << 20 : nil })
    }
}
