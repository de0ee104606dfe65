import Foundation
import GuestImage
import HostSupport
import LabRuntime
import Kernels

/// What one cell found: the scenario's outcome and the lab it ran in.
public struct CellOutcome: Sendable, Codable {
    public let outcome: ScenarioOutcome
    /// The kernel the cell ran, pinned (nil when it could not even be resolved).
    public let kernel: PinnedKernel?
    /// The topology's name.
    public let topology: String
    public let accelerator: String
    public let imageKey: String?
    /// The last lines of the guest's serial console, kept as evidence when the cell failed.
    public let console: [String]
    /// The lab's name when it was kept running.
    public let keptLab: String?
    /// How its lab came up (`labStart` in JSON): booted, or restored from a saved machine,
    /// with its seconds; nil when it never came up, and in results stored before it was kept.
    public let labStart: LabStart?

    public init(outcome: ScenarioOutcome, kernel: PinnedKernel?, topology: String, accelerator: String, imageKey: String?,
                console: [String], keptLab: String?, labStart: LabStart? = nil) {
        self.outcome = outcome
        self.kernel = kernel
        self.topology = topology
        self.accelerator = accelerator
        self.imageKey = imageKey
        self.console = console
        self.keptLab = keptLab
        self.labStart = labStart
    }

    /// A cell that never reached its lab.
    public static func couldNotRun(_ scenario: String, failure: OutcomeError, kernel: PinnedKernel?, topology: String,
                                   accelerator: String = CellOutcome.unknownAccelerator, imageKey: String? = nil) -> CellOutcome {
        CellOutcome(outcome: .couldNotRun(scenario, failure: failure), kernel: kernel, topology: topology, accelerator: accelerator,
                    imageKey: imageKey, console: [], keptLab: nil)
    }

    public var verdict: Verdict { outcome.verdict }

    /// The accelerator of a cell that stopped before one was chosen. Not "n/a", which reads
    /// like the not-applicable verdict (results stored before say it still).
    public static let unknownAccelerator = "unknown"

    /// "TCG", "KVM", or that none was chosen: for a report's heading.
    public var acceleratorLabel: String {
        accelerator == Self.unknownAccelerator || accelerator == "n/a" ? "accelerator not chosen" : accelerator
    }
}

/// One scenario run from its inputs to its outcome, in its own lab, by the cell runner: what
/// `cxllab run`, `race` and `suite` do and what each matrix cell does. The kernel is resolved
/// once (or handed on by the run), the lab is gone when `run` returns (unless kept), and
/// nothing it does throws.
public struct ScenarioCell<S: Scenario>: Sendable {
    public var kernel: String
    public var topology: String
    public var recipe: ImageRecipe
    public var scenario: S
    public var runID: String
    public var cellID: String
    /// Leave the lab running afterwards (`cxllab repro --keep`), with the shell enabled.
    public var keep = false
    /// Records the lab's launch and agent requests and replies (`cxllab bench`, `--transcript`).
    public var transcript: SessionTranscript?
    /// The kernel as the run pinned it, when a run did: the cell boots that image or none. A
    /// `build:` or `files:` kernel is imported again when its files changed, so a tree rebuilt
    /// during a matrix would otherwise boot another kernel under this cell's id.
    public var pinned: PinnedKernel?
    /// Where the kernel reference is resolved: the store, or a stand-in in tests.
    public var resolver: (any KernelResolving)?
    /// The kernel as the run resolved it, handed on (a matrix resolves each kernel once, at
    /// its start): the cell boots it, checked against the pin, and resolves nothing again.
    public var resolved: Kernel?
    /// What runs the lab: nil for the context's default (`CellRunner.defaultBackend`: libvirt
    /// on this host, restoring saved machines when opted in), or QEMU directly (`cxllab bench`).
    public var backend: (any LabBackend)?

    public init(kernel: String, topology: String, recipe: ImageRecipe, scenario: S, runID: String, cellID: String,
                pinned: PinnedKernel? = nil) {
        self.kernel = kernel
        self.topology = topology
        self.recipe = recipe
        self.scenario = scenario
        self.runID = runID
        self.cellID = cellID
        self.pinned = pinned
    }

    /// The lab's name: unique per run and cell, and a valid lab name whatever the run id.
    var labName: String {
        let cleaned = String("\(runID)-\(cellID)".lowercased().map { $0.isASCII && ($0.isLetter || $0.isNumber) || $0 == "-" ? $0 : "-" })
        // The cell id last, whole, so two cells of one run never share a name.
        return String(cleaned.dropLast(cellID.count).prefix(max(1, 48 - cellID.count))) + cleaned.suffix(cellID.count)
    }

    public func run(context: LabContext, progress: @escaping @Sendable (String) -> Void = { _ in }) async -> CellOutcome {
        let runner = CellRunner(context: context, backend: backend, resolver: resolver)
        var pinned = self.pinned
        var topologyName = (topology as NSString).lastPathComponent
        var accelerator = CellOutcome.unknownAccelerator
        var imageKey: String?
        do {
            // The kernel under test (its config with it) is let go before the lab boots.
            func prepare() async throws -> (S.Setup, PreparedLab) {
                let underTest = try await runner.kernel(kernel, resolved: resolved, pinned: pinned, progress: progress)
                pinned = underTest.pinned
                let setup = try await scenario.setup(for: underTest, cache: context.cache, progress: progress)
                let needs = CellRunner.Needs(features: setup.imageFeatures, modules: setup.imageModules, payload: setup.imagePayload,
                                             minimumVCPUs: setup.minimumVCPUs)
                return (setup, try await runner.prepare(topologyFile: topology, kernel: underTest, recipe: recipe, needs: needs, progress: progress))
            }
            let (setup, prepared) = try await prepare()
            topologyName = prepared.topology.name
            accelerator = prepared.accelerator.accelerator.rawValue.uppercased()
            imageKey = prepared.image.key
            let identity = CellRunner.Identity(name: labName, runID: keep ? "up" : runID, cellID: cellID, keep: keep, transcript: transcript)
            let machine = GuestMachine(topology: prepared.topology, features: prepared.features)
            let finished = try await runner.run(prepared, as: identity, progress: progress) { lab in
                await scenario.run(setup, on: lab, machine: machine, progress: progress)
            }
            var outcome = finished.value
            if finished.alertsDuring.contains(where: { $0.kind != .warning }) {
                outcome = outcome.addingGuestCrashes(finished.alertsDuring, console: finished.consoleTail)
            }
            if outcome.error != nil, let diskFull = finished.diskFull { outcome = outcome.addingToError(diskFull) }
            if outcome.error != nil, let lost = finished.connectionLost { outcome = outcome.addingToError(lost) }
            return CellOutcome(outcome: outcome, kernel: pinned, topology: topologyName, accelerator: accelerator, imageKey: imageKey,
                               console: outcome.verdict.isFailure ? finished.consoleTail : [], keptLab: finished.keptLab, labStart: finished.start)
        } catch {
            return .couldNotRun(scenario.name, failure: OutcomeError(error), kernel: pinned, topology: topologyName, accelerator: accelerator, imageKey: imageKey)
        }
    }
}
