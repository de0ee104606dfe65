import Foundation
import GuestImage
import HostCheck
import Kernels
import LabRuntime
import Scenarios
import TestBuilds
import Topology

/// What a scenario command was given, checked before anything is fetched or built: a typo in
/// a kernel, a topology or a module path costs nothing but the message. These are the user's
/// mistakes, the same at every commit, so they exit 2 even under `--bisect` (125 would make
/// `git bisect` skip every commit and name none).
struct ScenarioInputs {
    var kernel: String
    var topology: String
    var recipe: String
    /// `--module` arguments, `:param=value` parameters included.
    var modules: [String] = []
    /// Driver names and the option that gave them (`--drivers`, `--load-first`).
    var drivers: [String] = []
    var driverOption = "--drivers"
    /// Whether each driver must be a dax driver or a module given with --module (`run`,
    /// `race`), or may be any in-tree module (`suite --load-first`).
    var driversAreDaxDrivers = true

    /// The dax bus's drivers in Linux and cxllab's stand-in, the names a `--drivers` list
    /// may hold without a module of its own.
    static let daxDrivers = ["device_dax", "kmem", "fsdev_dax", "dax_pmem", "dax_cxl", "dax_hmem"]

    /// What the file system alone can tell: the kernel's form and paths, the module paths,
    /// the driver names, whether the topology can be read. Empty when all can be used.
    func problems(projectFiles: ProjectFiles) -> [String] {
        var problems: [String] = []
        if let problem = Self.kernelProblem(kernel) { problems.append(problem) }
        let paths = modules.map { ModuleSpec(parsing: $0).path }
        problems += paths.compactMap(ModuleArgument.problem)
        problems += driverProblems(given: paths.flatMap(ModuleArgument.moduleNames))
        if !FileManager.default.isReadableFile(atPath: topology) {
            problems.append("topology \(topology): no such file (or it cannot be read); give a topology file, e.g. topologies/nvdimm-single.yaml")
        }
        do { _ = try projectFiles.recipe(named: recipe) } catch { problems.append("--recipe \(recipe): \(error)") }
        return problems
    }

    /// The topology validated against what this host's QEMU offers, at its file:line:col; nil
    /// when it is valid, or when QEMU cannot be asked (the lab then says why).
    func topologyProblem(context: LabContext) async -> String? {
        guard let text = try? String(contentsOfFile: topology, encoding: .utf8),
              let capabilities = try? await QEMUProbe.probe(cache: context.cache, memo: context.qemuProbes).emulatorCapabilities else { return nil }
        do {
            _ = try Topology.load(yaml: text, file: topology, capabilities: capabilities)
            return nil
        } catch {
            return "\(error)"
        }
    }

    /// A kernel reference's form, and the paths a `build:`, `make:` or `files:` kernel names.
    static func kernelProblem(_ text: String) -> String? {
        let reference: KernelReference
        do { reference = try KernelReference(parsing: text) } catch { return "--kernel \(error)" }
        let fm = FileManager.default
        func isFolder(_ path: String) -> Bool {
            var folder: ObjCBool = false
            return fm.fileExists(atPath: path, isDirectory: &folder) && folder.boolValue
        }
        switch reference {
        case .debianRelease, .debianSuite:
            return nil
        case .buildTree(let tree):
            return isFolder(tree) ? nil : "--kernel \(text): \(tree) is not a folder; give a kernel build tree"
        case .madeTree(let tree):
            guard isFolder(tree) else { return "--kernel \(text): \(tree) is not a folder; give a kernel source tree to build" }
            return fm.fileExists(atPath: tree + "/Makefile") ? nil : "--kernel \(text): \(tree) has no Makefile; give the top of a kernel source tree"
        case .files(let image, let modules, let config):
            if !fm.fileExists(atPath: image) { return "--kernel \(text): no such bzImage \(image)" }
            if let modules, !isFolder(modules) { return "--kernel \(text): modules=\(modules) is not a folder" }
            if let config, !fm.fileExists(atPath: config) { return "--kernel \(text): no such config \(config)" }
            return nil
        }
    }

    /// Names that cannot be modules, and (for the dax scenarios) names that are neither a dax
    /// driver nor a module `--module` gives: a typo such as `kmme` is said here, not found
    /// missing in the guest.
    func driverProblems(given moduleNames: [String]) -> [String] {
        var problems: [String] = []
        let known = Set((Self.daxDrivers + moduleNames).map { ModuleIndex.name(ofPath: $0) })
        for name in drivers {
            if !ModuleIndex.isModuleName(name) {
                problems.append("\(driverOption): '\(name)' cannot be a module's name (letters, digits, '_' and '-')")
            } else if driversAreDaxDrivers, !known.contains(ModuleIndex.name(ofPath: name)) {
                problems.append("\(driverOption): '\(name)' is neither a dax driver (\(Self.daxDrivers.joined(separator: ", "))) "
                    + "nor a module given with --module; check its spelling, or give its module with --module")
            }
        }
        return problems
    }
}

/// Inputs a scenario command cannot use: every problem at once, exit 2, with or without
/// `--bisect`.
struct ScenarioInputError: Error, CustomStringConvertible {
    let problems: [String]

    var description: String {
        problems.count == 1 ? problems[0] + " (nothing was fetched or built)"
            : "\(problems.count) inputs cannot be used (nothing was fetched or built):\n  - " + problems.joined(separator: "\n  - ")
    }
}
