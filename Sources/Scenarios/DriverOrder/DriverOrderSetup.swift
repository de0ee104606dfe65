import Foundation
import GuestImage
import HostSupport
import Kernels
import TestBuilds

/// A `--module PATH[:param=value,...]` argument.
public struct ModuleSpec: Sendable, Hashable {
    public let path: String
    public let parameters: [String]

    public init(parsing text: String) {
        // A path may itself hold ':' only in odd cases; the parameters follow the last one.
        if let colon = text.lastIndex(of: ":"), text[text.index(after: colon)...].contains("=") {
            path = String(text[..<colon])
            parameters = text[text.index(after: colon)...].split(separator: ",").map(String.init)
        } else {
            path = text
            parameters = []
        }
    }
}

/// What fsdev_dax can be on a kernel, from its config and release alone: the one rule the
/// scenario's setup and the matrix's cell expansion both follow.
public enum FsdevAvailability: Sendable, Hashable {
    /// The kernel has its own (Debian's 7.3).
    case real
    /// cxllab's stand-in can be built for it (6.3 and later: the dax bus has driver types).
    case standInPossible
    /// Neither, and why.
    case none(String)

    public init(release: String, config: KernelConfig?) {
        if config?.isEnabled("DEV_DAX_FSDEV") == true {
            self = .real
        } else if KernelRequirements.releaseBefore(release, 6, 3) {
            self = .none("\(release) has no dax driver-type enum and lets only one driver match every device, so no stand-in can model fsdev V9 there")
        } else {
            self = .standInPossible
        }
    }

    public init(_ kernel: KernelUnderTest) {
        self.init(release: kernel.kernel.release, config: kernel.config)
    }
}

/// Decides what fsdev_dax is for a kernel and which modules the image needs.
public struct DriverOrderSetup: Sendable {
    public let cache: CacheDirectory
    /// The stand-in's source folder (images/modules/fsdev_dax).
    public let standInSource: String

    public init(cache: CacheDirectory, standInSource: String) {
        self.cache = cache
        self.standInSource = URL(fileURLWithPath: standInSource).standardizedFileURL.path
    }

    public func plan(kernel: KernelUnderTest, drivers: [String], specs: [ModuleSpec],
                     progress: @escaping @Sendable (String) -> Void = { _ in }) async throws -> DriverOrderScenario.Plan {
        var parameters: [String: [String]] = [:]
        var modules: [String] = []
        var fsdev: FsdevDriver?
        let builder = ModuleBuilder(cache: cache)
        for spec in specs {
            // Build or check now, to learn the module's name (its .ko) for the parameters.
            let resolved = try await builder.resolve([spec.path], for: kernel.kernel, progress: progress)
            modules += resolved.files + resolved.inTree
            for file in resolved.files {
                let name = ModuleIndex.name(ofPath: file)
                parameters[name] = spec.parameters
                if name == DriverOrderScenario.fsdev {
                    let isStandIn = URL(fileURLWithPath: spec.path).standardizedFileURL.path == standInSource
                    let automatch = spec.parameters.contains { $0 == "automatch=1" || $0 == "automatch=Y" || $0 == "automatch=y" }
                    fsdev = isStandIn ? .standIn(automatch: automatch) : .user(spec.path)
                }
            }
            for name in resolved.inTree { parameters[name] = spec.parameters }
        }
        var features: Set<String> = []
        if fsdev == nil {
            switch FsdevAvailability(kernel) {
            case .real:
                fsdev = .real
                features.insert("fsdev")
            case .none(let reason):
                fsdev = .absent(reason)
            case .standInPossible:
                do {
                    modules += try await builder.build(source: standInSource, for: kernel.kernel, progress: progress)
                    fsdev = .standIn(automatch: false)
                } catch {
                    fsdev = .absent("\(kernel.kernel.release) lacks fsdev_dax and the stand-in cannot be built here: \(error)")
                }
            }
        }
        let chosen = fsdev ?? .absent("not determined")
        var set = drivers
        if case .absent = chosen { set.removeAll { $0 == DriverOrderScenario.fsdev } }
        return DriverOrderScenario.Plan(fsdev: chosen, drivers: set, modules: modules, parameters: parameters, features: features)
    }
}

extension DriverOrderScenario {
    /// What the scenario decided for a kernel before the lab boots.
    public struct Plan: ScenarioSetup {
        public var fsdev: FsdevDriver
        /// The driver set to order, less fsdev_dax where the kernel cannot have one.
        public var drivers: [String]
        /// Module arguments for the image (paths and in-tree names).
        public var modules: [String]
        /// Module parameters by module name, used each time the module loads.
        public var parameters: [String: [String]]
        public var features: Set<String>

        public init(fsdev: FsdevDriver, drivers: [String], modules: [String] = [], parameters: [String: [String]] = [:], features: Set<String> = []) {
            self.fsdev = fsdev
            self.drivers = drivers
            self.modules = modules
            self.parameters = parameters
            self.features = features
        }

        /// The set's module parameters as /etc/modprobe.d keeps them, for modprobe by alias.
        public var modprobeOptions: [String: [String]] { parameters.filter { drivers.contains($0.key) && !$0.value.isEmpty } }

        public var imageModules: [String] { modules }
        public var imageFeatures: Set<String> { features }
        public var facts: [Fact] { [Fact("fsdev_dax", fsdev.description), Fact("drivers", drivers.joined(separator: ", "))] }
    }
}
