import Foundation

public struct ModuleNotFound: Error, Sendable, CustomStringConvertible {
    public let modules: [String]
    public let release: String
    public var description: String {
        "kernel \(release) has no module \(modules.joined(separator: ", ")) (neither loadable nor built in); "
            + "check the kernel's config or drop it from the image recipe"
    }
}

/// A kernel's modules as modules.dep and modules.builtin describe them.
public struct ModuleIndex: Sendable {
    public let release: String
    /// Module name (with `_`) -> path relative to lib/modules/<release>.
    public let paths: [String: String]
    /// Relative path -> the relative paths it depends on.
    public let dependencies: [String: [String]]
    public let builtin: Set<String>

    public static func canonical(_ name: String) -> String { name.replacingOccurrences(of: "-", with: "_") }

    /// The module name a path stands for: kernel/drivers/dax/device_dax.ko.xz -> device_dax.
    public static func name(ofPath path: String) -> String {
        var base = (path as NSString).lastPathComponent
        for suffix in [".xz", ".zst", ".gz"] where base.hasSuffix(suffix) { base.removeLast(suffix.count) }
        if base.hasSuffix(".ko") { base.removeLast(3) }
        return canonical(base)
    }

    public init(modulesFolder: String, release: String) throws {
        self.release = release
        let dep = try String(contentsOfFile: modulesFolder + "/modules.dep", encoding: .utf8)
        var paths: [String: String] = [:]
        var dependencies: [String: [String]] = [:]
        for line in dep.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let path = String(line[..<colon])
            paths[Self.name(ofPath: path)] = path
            dependencies[path] = line[line.index(after: colon)...].split(separator: " ").map(String.init)
        }
        let builtinText = (try? String(contentsOfFile: modulesFolder + "/modules.builtin", encoding: .utf8)) ?? ""
        self.builtin = Set(builtinText.split(separator: "\n").map { Self.name(ofPath: String($0)) })
        self.paths = paths
        self.dependencies = dependencies
    }

    public func isBuiltin(_ name: String) -> Bool { builtin.contains(Self.canonical(name)) }
    public func has(_ name: String) -> Bool { paths[Self.canonical(name)] != nil || isBuiltin(name) }

    /// The relative paths of the named modules and everything they depend on; built-in ones
    /// need no file. Throws naming every module the kernel has in neither form.
    public func closure(of names: [String]) throws -> [String] {
        var missing: [String] = []
        var result: Set<String> = []
        var queue: [String] = []
        for name in names {
            if let path = paths[Self.canonical(name)] { queue.append(path) }
            else if !isBuiltin(name) { missing.append(name) }
        }
        guard missing.isEmpty else { throw ModuleNotFound(modules: missing, release: release) }
        while let path = queue.popLast() {
            guard result.insert(path).inserted else { continue }
            queue += dependencies[path] ?? []
        }
        return result.sorted()
    }
}
