import Foundation
import GuestImage
import HostCheck
import HostSupport
import Topology
import Kernels
import TestBuilds

/// Everything a lab needs before it boots, resolved once: the kernel, the validated topology,
/// the image built for both (with the agent), and the accelerator.
public struct PreparedLab: Sendable {
    public let kernel: Kernel
    public let topology: Topology
    public let image: BuiltImage
    public let accelerator: AcceleratorChoice
    public let features: Set<String>

    /// libvirt's domain type for the chosen accelerator.
    public var domainType: LabFiles.DomainType { accelerator.accelerator == .kvm ? .kvm : .qemu }
}

public struct LabPreparation: Sendable {
    /// The cache it builds into, and the settings (agent, accelerator) it honours.
    public let context: LabContext

    public init(context: LabContext) {
        self.context = context
    }

    /// The image features a topology needs (module groups of the recipe).
    public static func features(of topology: Topology) -> Set<String> {
        var features: Set<String> = ["kmem"]
        if !topology.nvdimms.isEmpty { features.insert("nvdimm") }
        if !topology.cxl.memoryDevices.isEmpty { features.insert("cxl") }
        if !topology.cxl.memoryDevices.isEmpty, topology.machine.hypervisorBit { features.insert(KernelRequirements.hypervisorBit) }
        if topology.machine.kernelArguments.contains(where: { $0.hasPrefix("memmap=") }) { features.insert("legacy-pmem") }
        return features
    }

    /// Prepares a lab for a kernel already resolved (the caller pins its reference once and
    /// keeps to that kernel); `config` is the kernel's, read once by the caller when it has it.
    public func prepare(
        topologyFile: String, kernel resolved: Kernel, config: KernelConfig? = nil, recipe: ImageRecipe, extraFeatures: Set<String> = [],
        modules: [String] = [], payload: [ImagePayload] = [], minimumVCPUs: Int = 1, progress: @escaping @Sendable (String) -> Void = { _ in }
    ) async throws -> PreparedLab {
        let cache = context.cache
        progress("asking QEMU what it offers")
        let capabilities = try await QEMUProbe.probe(cache: cache, memo: context.qemuProbes).emulatorCapabilities
        let text: String
        do { text = try InputFile.text(topologyFile, role: "topology", fix: TopologyFileHint.fix) } catch {
            throw LabError(.input, "\(error)", cause: error)
        }
        // A scenario may need more vCPUs than the file gives (a race needs two at once).
        let topology = try Topology.load(yaml: text, file: topologyFile, capabilities: capabilities).withVCPUs(atLeast: minimumVCPUs)
        let recipe = recipe.forLab(needsCXLRAM: topology.cxl.memoryDevices.contains { ($0.volatileSize ?? 0) > 0 })
        let store = try KernelStore(cache: cache)
        var kernel = resolved
        let features = Self.features(of: topology).union(extraFeatures)
        if let config = config ?? KernelConfig(contentsOf: kernel.configPath) {
            let blocking = KernelRequirements.missing(in: config, features: features, release: kernel.release).filter { $0.effect == .blocks }
            if !blocking.isEmpty {
                throw LabError(.input, "kernel \(kernel.release) lacks what \(topology.name) needs: "
                    + blocking.map { "CONFIG_\($0.option) (\($0.why))" }.joined(separator: "; "))
            }
        }
        let agent = try await AgentBinary.strippedCopy(cache: cache, explicit: context.settings.agentExecutable)
        func buildImage(_ kernel: Kernel) async throws -> BuiltImage {
            let resolved = try await ModuleBuilder(cache: cache).resolve(modules, for: kernel, progress: progress)
            return try await ImageBuilder(cache: cache).build(
                ImageRequest(recipe: recipe, kernel: kernel, features: features, extraModules: resolved.inTree,
                             userModules: resolved.files, agent: agent, payload: payload),
                progress: progress
            )
        }
        let image: BuiltImage
        do {
            image = try await buildImage(kernel)
        } catch KernelStoreError.damaged(_, let file) {
            // A module file changed since extraction: the kernel is fetched again, never used.
            kernel = try await store.refetch(kernel, reference: try KernelReference(parsing: kernel.origin), damaged: file, progress: progress)
            image = try await buildImage(kernel)
        }
        let accelerator = await AcceleratorCache(cache: cache, forced: context.settings.accelerator).choice(probeKernel: kernel.imagePath)
        return PreparedLab(kernel: kernel, topology: topology, image: image, accelerator: accelerator, features: features)
    }
}

/// The guest agent executable, found beside the running cxllab (both are products of this
/// package) or where `LabSettings.agentExecutable` says (`explicit`), and stripped into the
/// cache: debug info is dead weight in an initramfs that TCG has to unpack.
public enum AgentBinary {
    public static func locate(explicit: String? = nil) throws -> String {
        if let explicit { return explicit }
        // Beside the running cxllab as the kernel names it, never as argv[0] or the working
        // folder would: the agent goes into every guest image.
        if let found = TrustedProject.sibling("cxllab-agent") { return found }
        throw LabError(.input, "the guest agent cxllab-agent was not found beside \(TrustedProject.runningExecutable ?? "cxllab"); "
            + "build it with `swift build`, or set CXLLAB_AGENT")
    }

    public static func strippedCopy(cache: CacheDirectory, explicit: String?) async throws -> String {
        let source = try locate(explicit: explicit)
        let digest = try FileDigest.sha256(ofFile: source)
        let target = try cache.folder("agents") + "/cxllab-agent-\(digest.prefix(16))"
        if FileManager.default.fileExists(atPath: target) { return target }
        try await strip(source, to: target)
        return target
    }

    /// Strips `source` into `target` within `deadline`: a strip that hangs (a wedged file
    /// system, a broken binutils) fails the lab with the reason instead of holding it forever.
    static func strip(_ source: String, to target: String, tool: String = "strip", deadline: Duration = .seconds(120)) async throws {
        // A private temporary name, then an atomic rename: concurrent labs may strip at once.
        let temporary = target + ".tmp-\(UUID().uuidString.prefix(8))"
        let result: ProcessResult
        do {
            result = try await ProcessRunner.run(tool, ["-o", temporary, source], timeout: deadline)
        } catch {
            throw LabError(.host, "cannot strip the guest agent \(source): \(error)", cause: error)
        }
        guard result.succeeded else {
            try? FileManager.default.removeItem(atPath: temporary)
            if result.timedOut {
                throw LabError(.host, "strip did not finish within \(Int(deadline.seconds)) s on the guest agent \(source); "
                    + "check that the disk holding it and the cache answer, then try again")
            }
            throw LabError(.host, CommandFailure(result, context: "strip failed on the guest agent \(source)").description)
        }
        guard rename(temporary, target) == 0 else {
            try? FileManager.default.removeItem(atPath: temporary)
            throw LabError(.host, "cannot place the stripped agent at \(target)")
        }
    }
}

/// The accelerator decision, probed once a day (a probe boots a kernel and waits up to 8 s
/// for KVM) and kept in the cache; `LabSettings.accelerator` ($CXLLAB_ACCEL), given as
/// `forced`, overrides it.
public struct AcceleratorCache: Sendable {
    let path: String
    let forced: AcceleratorChoice.Accelerator?

    public init(cache: CacheDirectory, forced: AcceleratorChoice.Accelerator?) {
        path = cache.path + "/accelerator.json"
        self.forced = forced
    }

    public func choice(probeKernel: String) async -> AcceleratorChoice {
        if let accelerator = forced {
            return AcceleratorChoice(accelerator: accelerator, reason: "set by CXLLAB_ACCEL")
        }
        if let attributes = try? FileManager.default.attributesOfItem(atPath: path),
           let date = attributes[.modificationDate] as? Date, -date.timeIntervalSinceNow < 24 * 3600,
           let data = FileManager.default.contents(atPath: path),
           let cached = try? JSONDecoder().decode(AcceleratorChoice.self, from: data) {
            return cached
        }
        let choice = await AcceleratorProbe.choose(kernelImage: probeKernel)
        try? JSONEncoder().encode(choice).write(to: URL(fileURLWithPath: path), options: .atomic)
        return choice
    }
}

/// How to fix a topology path that names no file, wherever one is read.
public enum TopologyFileHint {
    public static let fix = "give a topology file, such as topologies/nvdimm-single.yaml in cxllab's source folder"
}
