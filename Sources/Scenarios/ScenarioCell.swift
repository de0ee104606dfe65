import Foundation
import GuestImage
import HostSupport
import LabRuntime
import Libvirt
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

    public init(outcome: ScenarioOutcome, kernel: PinnedKernel?, topology: String, accelerator: String, imageKey: String?,
                console: [String], keptLab: String?) {
        self.outcome = outcome
        self.kernel = kernel
        self.topology = topology
        self.accelerator = accelerator
        self.imageKey = imageKey
        self.console = console
        self.keptLab = keptLab
    }

    /// A cell that never reached its lab.
    public static func couldNotRun(_ scenario: String, failure: OutcomeError, kernel: PinnedKernel?, topology: String,
                                   accelerator: String = "n/a", imageKey: String? = nil) -> CellOutcome {
        CellOutcome(outcome: .couldNotRun(scenario, failure: failure), kernel: kernel, topology: topology, accelerator: accelerator,
                    imageKey: imageKey, console: [], keptLab: nil)
    }

    public var verdict: Verdict { outcome.verdict }
}

/// One scenario run from its inputs to its outcome, in its own lab: what `cxllab run` does and
/// what each matrix cell does. The kernel reference is resolved once, here; the lab is gone
/// when `run` returns (unless kept), and nothing it does throws.
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
    /// What runs the lab: libvirt on this host, or QEMU directly (`cxllab bench`).
    public var backend: any LabBackend = LibvirtBackend()

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

    /// The kernel this cell boots: the reference resolved, and refused when it is not the
    /// image the run pinned.
    func resolveKernel(cache: CacheDirectory, progress: @escaping @Sendable (String) -> Void) async throws -> Kernel {
        let found: Kernel
        if let resolved {
            found = resolved
        } else {
            let resolver: any KernelResolving = try self.resolver ?? KernelStore(cache: cache)
            found = try await resolver.kernel(try KernelReference(parsing: kernel), progress: progress)
        }
        try pinned?.check(found)
        return found
    }

    /// The lab's name: unique per run and cell, and a valid lab name whatever the run id.
    var labName: String {
        let cleaned = String("\(runID)-\(cellID)".lowercased().map { $0.isASCII && ($0.isLetter || $0.isNumber) || $0 == "-" ? $0 : "-" })
        // The cell id last, whole, so two cells of one run never share a name.
        return String(cleaned.dropLast(cellID.count).prefix(max(1, 48 - cellID.count))) + cleaned.suffix(cellID.count)
    }

    public func run(context: LabContext, progress: @escaping @Sendable (String) -> Void = { _ in }) async -> CellOutcome {
        let cache = context.cache
        var pinned = self.pinned
        var topologyName = (topology as NSString).lastPathComponent
        var accelerator = "n/a"
        var imageKey: String?
        do {
            // The kernel's config is read once and let go before the lab boots (a Debian config
            // is a megabyte, and cells run side by side for long).
            func prepare() async throws -> (S.Setup, PreparedLab) {
                let found = try await resolveKernel(cache: cache, progress: progress)
                let underTest = KernelUnderTest(kernel: found, reference: kernel)
                pinned = underTest.pinned
                let setup = try await scenario.setup(for: underTest, cache: cache, progress: progress)
                let prepared = try await LabPreparation(context: context).prepare(
                    topologyFile: topology, kernel: found, config: underTest.config, recipe: recipe, extraFeatures: setup.imageFeatures,
                    modules: setup.imageModules, payload: setup.imagePayload, minimumVCPUs: setup.minimumVCPUs, progress: progress
                )
                return (setup, prepared)
            }
            let (setup, prepared) = try await prepare()
            topologyName = prepared.topology.name
            accelerator = prepared.accelerator.accelerator.rawValue.uppercased()
            imageKey = prepared.image.key
            var request = LabRequest(name: labName, topology: prepared.topology, kernel: prepared.kernel, image: prepared.image,
                                     domainType: prepared.domainType, shell: keep,
                                     runID: keep ? "up" : runID, cellID: cellID, persistent: keep)
            request.transcript = transcript
            let session = try await backend.start(request, context: context, progress: progress)
            // Alerts from here on are the scenario's: a crash during it is the kernel's failure;
            // one before it (the boot) made `start` throw, and the cell could not run.
            let alertsBefore = session.console.alertsSoFar.count
            var outcome = await scenario.run(setup, on: session, machine: GuestMachine(topology: prepared.topology, features: prepared.features), progress: progress)
            session.console.catchUp()
            // The console's last lines, read once: a crash's evidence, and a failed cell's.
            let consoleTail = session.console.tail(40).split(separator: "\n", omittingEmptySubsequences: false)
                .map { VisibleText.capped(String($0), limit: CaseResult.evidenceLineLength) }
            let alertsDuring = Array(session.console.alertsSoFar.dropFirst(alertsBefore))
            if alertsDuring.contains(where: { $0.kind != .warning }) {
                outcome = outcome.addingGuestCrashes(alertsDuring, console: consoleTail)
            }
            if outcome.error != nil, let free = context.paths.freeBytes(), free < 1 << 20 {
                outcome = outcome.addingToError(context.paths.diskFull().message)
            }
            if outcome.error != nil, let lost = session.connectionLost {
                outcome = outcome.addingToError(lost)
            }
            let console = outcome.verdict.isFailure ? consoleTail : []
            var keptLab: String?
            if keep {
                session.detach()
                keptLab = session.name
            } else {
                await session.teardown()
            }
            return CellOutcome(outcome: outcome, kernel: pinned, topology: topologyName, accelerator: accelerator, imageKey: imageKey,
                               console: console, keptLab: keptLab)
        } catch {
            return .couldNotRun(scenario.name, failure: OutcomeError(error), kernel: pinned, topology: topologyName, accelerator: accelerator, imageKey: imageKey)
        }
    }
}
