import Foundation
import GuestImage
import HostSupport
import Libvirt

/// One driver-order run from its inputs to its report, in its own lab: what `cxllab run`
/// does and what each matrix cell does. It never throws: whatever goes wrong is the report's
/// error, and the lab is gone when it returns.
public struct DriverOrderCell: Sendable {
    public var kernel: String
    public var topology: String
    public var recipe: ImageRecipe
    public var drivers: [String]?
    public var modules: [String]
    public var selection: OrderSelection
    public var seed: UInt64
    public var repeats: Int
    public var runID: String
    public var cellID: String
    /// Leave the lab running afterwards (`cxllab repro --keep`), with the shell enabled.
    public var keep = false
    /// Records the lab's launch and agent requests (`cxllab bench`).
    public var transcript: SessionTranscript?

    public init(kernel: String, topology: String, recipe: ImageRecipe, drivers: [String]?, modules: [String], selection: OrderSelection,
                seed: UInt64, repeats: Int, runID: String, cellID: String) {
        self.kernel = kernel
        self.topology = topology
        self.recipe = recipe
        self.drivers = drivers
        self.modules = modules
        self.selection = selection
        self.seed = seed
        self.repeats = repeats
        self.runID = runID
        self.cellID = cellID
    }

    public struct Outcome: Sendable, Codable {
        public var report: DriverOrderReport
        public var accelerator: String
        public var imageKey: String?
        /// The lab's name when it was kept running.
        public var keptLab: String?
    }

    public func run(cache: CacheDirectory, standInSource: String, progress: @escaping @Sendable (String) -> Void = { _ in }) async -> Outcome {
        var report = DriverOrderReport(kernel: kernel, topology: topology, drivers: drivers ?? [], fsdev: .absent("not determined"), seed: seed)
        var accelerator = "n/a"
        var imageKey: String?
        var keptLab: String?
        do {
            let reference = try KernelReference(parsing: kernel)
            let found = try await KernelStore(cache: cache).kernel(reference, progress: progress)
            report.kernel = found.release
            let plan = try await DriverOrderSetup(cache: cache, standInSource: standInSource)
                .plan(kernel: found, specs: modules.map(ModuleSpec.init(parsing:)), progress: progress)
            var set = drivers ?? ["device_dax", "kmem", "fsdev_dax"]
            if case .absent = plan.fsdev { set.removeAll { $0 == DriverOrderScenario.fsdev } }
            report.drivers = set
            report.fsdev = plan.fsdev
            let prepared = try await LabPreparation(cache: cache).prepare(
                topologyFile: topology, kernel: reference, recipe: recipe, extraFeatures: plan.features, modules: plan.modules, progress: progress
            )
            report.topology = prepared.topology.name
            accelerator = prepared.accelerator.accelerator.rawValue.uppercased()
            imageKey = prepared.image.key
            let name = "\(runID)-\(cellID)".lowercased()
            var request = LabRequest(name: String(name.prefix(48)), topology: prepared.topology, kernel: prepared.kernel, image: prepared.image,
                                     domainType: prepared.domainType, shell: keep,
                                     runID: keep ? "up" : runID, cellID: cellID, persistent: keep)
            request.transcript = transcript
            let session = try await LabSession.start(request, libvirt: try Connection(), progress: progress)
            let scenario = DriverOrderScenario(drivers: set, parameters: plan.parameters, selection: selection, seed: seed, repeats: repeats)
            await scenario.run(session: session, features: prepared.features, report: &report, progress: progress)
            if let error = report.error, let free = LabPaths.freeBytes(), free < 1 << 20 {
                report.error = error + "; " + LabPaths.diskFullAdvice(LabPaths.labsRoot)
            }
            if let error = report.error, !session.libvirt.isAlive {
                report.error = error + "; libvirtd closed cxllab's connection meanwhile (it was stopped or restarted), "
                    + "and libvirt destroys a lab's domain together with the connection that started it"
            }
            if report.verdict == "fail" || report.verdict == "error" {
                session.console.catchUp()
                report.console = session.console.tail(40).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            }
            if keep {
                session.detach()
                keptLab = session.name
            } else {
                await session.teardown()
            }
        } catch {
            report.error = "\(error)"
        }
        report.verdictText = report.verdict
        return Outcome(report: report, accelerator: accelerator, imageKey: imageKey, keptLab: keptLab)
    }
}
