import Foundation
import GuestImage
import HostSupport
import Kernels

/// One lab from its inputs to its end, for everything that boots one (`run`, `race`, `suite`,
/// a matrix's cells, `repro`, `up`, the bench): the kernel resolved once (or the run's own
/// handed on and checked against its pin), the lab prepared, started through a backend,
/// worked in, and torn down, or kept running.
public struct CellRunner: Sendable {
    public var context: LabContext
    /// What runs the lab: libvirt on this host (restoring saved machines when the context's
    /// settings say so), or QEMU directly (the bench).
    public var backend: any LabBackend
    /// Where a kernel reference is resolved: the store, or a stand-in in tests.
    public var resolver: (any KernelResolving)?

    public init(context: LabContext, backend: (any LabBackend)? = nil, resolver: (any KernelResolving)? = nil) {
        self.context = context
        self.backend = backend ?? Self.defaultBackend(context.settings)
        self.resolver = resolver
    }

    /// What runs labs unless a caller chooses: `SavedMachineBackend`, or `LibvirtBackend` (a
    /// boot each time) when the settings turn saved machines off (`CXLLAB_SAVED_MACHINES=0`).
    public static func defaultBackend(_ settings: LabSettings) -> any LabBackend {
        settings.savedMachines ? SavedMachineBackend() : LibvirtBackend()
    }

    /// What a lab must carry besides its topology's needs: module groups of the recipe, module
    /// arguments, files with their libraries, and the vCPUs its work needs at least.
    public struct Needs: Sendable {
        public var features: Set<String>
        public var modules: [String]
        public var payload: [ImagePayload]
        public var minimumVCPUs: Int

        public init(features: Set<String> = [], modules: [String] = [], payload: [ImagePayload] = [], minimumVCPUs: Int = 1) {
            self.features = features
            self.modules = modules
            self.payload = payload
            self.minimumVCPUs = minimumVCPUs
        }
    }

    /// Who the lab is: its name, the run and cell its domain's metadata names, and whether it
    /// outlives this process (`up`, `repro --keep`: persistent, its shell enabled).
    public struct Identity: Sendable {
        public var name: String
        public var runID: String
        public var cellID: String
        public var keep: Bool
        public var shell: Bool
        /// Records the launch and every agent request and reply (`--transcript`, the bench).
        public var transcript: SessionTranscript?

        public init(name: String, runID: String, cellID: String, keep: Bool = false, shell: Bool? = nil, transcript: SessionTranscript? = nil) {
            self.name = name
            self.runID = runID
            self.cellID = cellID
            self.keep = keep
            self.shell = shell ?? keep
            self.transcript = transcript
        }
    }

    /// What a lab showed besides its work's result, read before it was torn down.
    public struct Finished<Value: Sendable>: Sendable {
        public let value: Value
        /// Console alerts while the work ran (a crash during it is the kernel's failure).
        public let alertsDuring: [ConsoleAlert]
        /// The console's last lines, as evidence.
        public let consoleTail: [String]
        /// Why the machine's keeper was out of reach at the end, when it was.
        public let connectionLost: String?
        /// Why the labs folder's disk was full at the end, when it was.
        public let diskFull: String?
        /// The lab's name when it was kept running.
        public let keptLab: String?
        /// How the lab came up: booted, or restored from a saved machine, and in how long.
        public let start: LabStart
    }

    /// The console's last lines as evidence, led by the alert lines (a panic, an oops) that a
    /// long trace after them pushed out of the tail: the evidence always holds what judged the cell.
    static func evidence(tail: String, alerts: [ConsoleAlert]) -> [String] {
        let lines = tail.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var missing: [String] = []
        for alert in alerts.map(\.line) where !missing.contains(alert) && !lines.contains(where: { $0.contains(alert) }) { missing.append(alert) }
        guard !missing.isEmpty else { return lines }
        return missing + ["[... console lines between the alerts above and the tail below left out ...]"] + lines
    }

    /// The kernel a lab boots: `resolved` when the run handed one on, else `reference` resolved
    /// here, once; either way refused (`PinMismatch`) when it is not the image `pinned` names.
    public func kernel(_ reference: String, resolved: Kernel? = nil, pinned: PinnedKernel? = nil,
                       progress: @escaping @Sendable (String) -> Void = { _ in }) async throws -> KernelUnderTest {
        let found: Kernel
        if let resolved {
            found = resolved
        } else {
            let resolver: any KernelResolving = try self.resolver ?? KernelStore(cache: context.cache)
            found = try await resolver.kernel(try KernelReference(parsing: reference), progress: progress)
        }
        try pinned?.check(found)
        // The config is read here, once, and let go when the cell lets the kernel go (a Debian
        // config is a megabyte, and cells run side by side for long).
        return KernelUnderTest(kernel: found, config: KernelConfig(contentsOf: found.configPath),
                               pinned: pinned ?? PinnedKernel(reference: reference, kernel: found))
    }

    /// The topology validated, the image built and the accelerator chosen, for this kernel.
    public func prepare(topologyFile: String, kernel: KernelUnderTest, recipe: ImageRecipe, needs: Needs = Needs(),
                        progress: @escaping @Sendable (String) -> Void = { _ in }) async throws -> PreparedLab {
        try await LabPreparation(context: context).prepare(
            topologyFile: topologyFile, kernel: kernel.kernel, config: kernel.config, recipe: recipe, extraFeatures: needs.features,
            modules: needs.modules, payload: needs.payload, minimumVCPUs: needs.minimumVCPUs, progress: progress
        )
    }

    /// Starts the prepared lab, runs `work` in it, reads what the lab showed, and tears it down
    /// (or leaves it running, when kept). A lab that does not come up throws, with nothing left.
    public func run<Value: Sendable>(_ prepared: PreparedLab, as identity: Identity, progress: @escaping @Sendable (String) -> Void = { _ in },
                                     work: (any RunningLab) async -> Value) async throws -> Finished<Value> {
        var request = LabRequest(name: identity.name, topology: prepared.topology, kernel: prepared.kernel, image: prepared.image,
                                 domainType: prepared.domainType, shell: identity.shell, runID: identity.runID, cellID: identity.cellID,
                                 persistent: identity.keep)
        request.transcript = identity.transcript
        let lab = try await backend.start(request, context: context, progress: progress)
        // Alerts from here on are the work's; one before it (the boot) made `start` throw.
        let alertsBefore = lab.console.alertsSoFar.count
        let value = await work(lab)
        lab.console.catchUp()
        let alertsDuring = Array(lab.console.alertsSoFar.dropFirst(alertsBefore))
        let consoleTail = Self.evidence(tail: lab.console.tail(40), alerts: alertsDuring)
            .map { VisibleText.capped($0, limit: 1000) }   // as long as a case's evidence lines may be
        let diskFull = context.paths.freeBytes().flatMap { $0 < 1 << 20 ? context.paths.diskFull().message : nil }
        let connectionLost = lab.connectionLost
        let start = lab.start
        var keptLab: String?
        if identity.keep {
            lab.detach()
            keptLab = lab.name
        } else {
            await lab.teardown()
        }
        return Finished(value: value, alertsDuring: alertsDuring, consoleTail: consoleTail, connectionLost: connectionLost, diskFull: diskFull,
                        keptLab: keptLab, start: start)
    }
}
