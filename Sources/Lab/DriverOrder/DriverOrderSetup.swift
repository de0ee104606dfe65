import Foundation
import GuestImage
import HostSupport

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

/// Decides what fsdev_dax is for a kernel and which modules the image needs.
public struct DriverOrderSetup: Sendable {
    public let cache: CacheDirectory
    /// The stand-in's source folder (images/modules/fsdev_dax).
    public let standInSource: String

    public init(cache: CacheDirectory, standInSource: String) {
        self.cache = cache
        self.standInSource = URL(fileURLWithPath: standInSource).standardizedFileURL.path
    }

    public struct Plan: Sendable {
        public var fsdev: FsdevDriver
        /// Module arguments for the image (paths and in-tree names).
        public var modules: [String]
        public var parameters: [String: [String]]
        public var features: Set<String>
    }

    public func plan(kernel: Kernel, specs: [ModuleSpec], progress: @escaping @Sendable (String) -> Void = { _ in }) async throws -> Plan {
        var parameters: [String: [String]] = [:]
        var modules: [String] = []
        var fsdev: FsdevDriver?
        let builder = ModuleBuilder(cache: cache)
        for spec in specs {
            // Build or check now, to learn the module's name (its .ko) for the parameters.
            let resolved = try await builder.resolve([spec.path], for: kernel, progress: progress)
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
            let config = KernelConfig(contentsOf: kernel.configPath)
            if config?.isEnabled("DEV_DAX_FSDEV") == true {
                fsdev = .real
                features.insert("fsdev")
            } else if KernelRequirements.releaseBefore(kernel.release, 6, 3) {
                fsdev = .absent("\(kernel.release) has no dax driver-type enum and lets only one driver match every device, so no stand-in can model fsdev V9 there")
            } else {
                do {
                    let built = try await builder.build(source: standInSource, for: kernel, progress: progress)
                    modules += built
                    fsdev = .standIn(automatch: false)
                } catch {
                    fsdev = .absent("\(kernel.release) lacks fsdev_dax and the stand-in cannot be built here: \(error)")
                }
            }
        }
        return Plan(fsdev: fsdev!, modules: modules, parameters: parameters, features: features)
    }
}
