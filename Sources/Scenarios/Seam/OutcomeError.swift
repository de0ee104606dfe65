import Foundation
import GuestImage
import Kernels
import HostSupport
import LabRuntime
import Libvirt
import TestBuilds
import Topology

/// Why a run could not be done, kept typed to the store and every report: the layer that
/// failed, its code, the words and the evidence. Reports, `diff` and `--bisect` tell a guest
/// that crashed from a host that failed by these, never by the words.
public struct OutcomeError: Error, Sendable, Codable, Hashable, CustomStringConvertible {
    public enum Layer: String, Sendable, Codable, CaseIterable {
        /// What the user gave: a topology, a recipe, a name, a setting.
        case input
        /// Getting the kernel: the archive, the store, a pin.
        case kernel
        /// Building a module, a test build, a build root.
        case build
        /// This host: files, processes, the disk.
        case host
        /// libvirt: the daemon, a domain.
        case libvirt
        /// The guest: it did not boot, it panicked, its agent failed.
        case guest
        /// QEMU itself died.
        case emulator
        /// The scenario's own judgement that it cannot go on.
        case scenario
    }

    public let layer: Layer
    /// The failing layer's own code (LabError's, libvirt's, or the error's type).
    public let code: String
    public let message: String
    /// The guest console's last lines, when a guest was involved.
    public let evidence: [String]

    public init(layer: Layer, code: String, message: String, evidence: [String] = []) {
        self.layer = layer
        self.code = code
        self.message = message
        self.evidence = evidence
    }

    /// The scenario's own reason, in words.
    public static func scenario(_ message: String) -> OutcomeError {
        OutcomeError(layer: .scenario, code: "scenario", message: message)
    }

    /// An input the user gave that cannot be used, in words.
    public static func input(_ message: String) -> OutcomeError {
        OutcomeError(layer: .input, code: "input", message: message)
    }

    /// Whatever was caught, classified by its type and code.
    public init(_ error: any Error) {
        if let known = error as? OutcomeError {
            self = known
            return
        }
        let message = "\(error)"
        if let lab = error as? LabError {
            let evidence = lab.console.map { $0.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) } ?? []
            self.init(layer: Self.layer(of: lab.code), code: lab.code.rawValue, message: lab.message, evidence: evidence)
            return
        }
        let layer: Layer = switch error {
        case is LibvirtError: .libvirt
        case is AgentConnectionError: .guest
        case is KernelStoreError, is KernelImportError, is KernelReferenceError, is PinMismatch: .kernel
        case is ModuleBuildError, is TestModuleError, is BuildRootError, is NdctlTestError, is KernelTreeBuildError: .build
        case is TopologyError, is RecipeError, is SuiteSelectionError: .input
        default: .host
        }
        let code = (error as? LibvirtError).map { "libvirt-\($0.code.rawValue)" } ?? String(describing: type(of: error))
        self.init(layer: layer, code: code, message: message)
    }

    static func layer(of code: LabError.Code) -> Layer {
        switch code {
        case .bootFailed, .guestPanicked: .guest
        case .emulatorDied: .emulator
        case .labExists, .notFound, .invalidName, .input: .input
        default: .host
        }
    }

    public var description: String { message }

    /// "guest boot-failed", "kernel KernelStoreError": for a report's type column.
    public var kind: String { "\(layer.rawValue) \(code)" }

    /// The same error with more said (the disk filled, libvirtd went away meanwhile).
    public func adding(_ words: String) -> OutcomeError {
        OutcomeError(layer: layer, code: code, message: message + "; " + words, evidence: evidence)
    }
}
