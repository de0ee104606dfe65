import Foundation
import HostCheck
import Synchronization

/// Where labs live and what may be overridden, resolved once where cxllab starts (from its
/// environment) and read by the libraries from here, never from the environment.
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

    public static let defaultLabsRoot = "/var/lib/cxllab/labs"

    public init(labsRoot: String = LabSettings.defaultLabsRoot, accelerator: AcceleratorChoice.Accelerator? = nil,
                agentExecutable: String? = nil, resultStore: String? = nil) {
        self.labsRoot = labsRoot
        self.accelerator = accelerator
        self.agentExecutable = agentExecutable
        self.resultStore = resultStore
    }

    /// `CXLLAB_LABS_DIR`, `CXLLAB_ACCEL` (tcg or kvm), `CXLLAB_AGENT`, `CXLLAB_RESULTS`.
    public static func from(environment: [String: String]) -> LabSettings {
        func value(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        return LabSettings(labsRoot: value("CXLLAB_LABS_DIR") ?? defaultLabsRoot,
                           accelerator: value("CXLLAB_ACCEL").flatMap(AcceleratorChoice.Accelerator.init(rawValue:)),
                           agentExecutable: value("CXLLAB_AGENT"), resultStore: value("CXLLAB_RESULTS"))
    }

    private static let installed = Mutex<LabSettings?>(nil)

    /// The settings in force: those the command line installed, else the process's
    /// environment read once (library users and tests that never install any).
    public static var current: LabSettings {
        installed.withLock { settings in
            if let settings { return settings }
            let resolved = from(environment: ProcessInfo.processInfo.environment)
            settings = resolved
            return resolved
        }
    }

    /// Called once by the command line before any lab work.
    public static func install(_ settings: LabSettings) {
        installed.withLock { $0 = settings }
    }
}
