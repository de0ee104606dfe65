import Foundation

public struct ModuleNotFound: Error, Sendable, CustomStringConvertible {
    public let modules: [String]
    public let release: String
    public var description: String {
        "kernel \(release) has no module \(modules.joined(separator: ", ")) (neither loadable nor built in); "
            + "check the kernel's config or drop it from the image recipe"
    }
}

/// A kernel's modules as modules.dep, modules.softdep, modules.alias and modules.builtin
/// describe them.
public struct ModuleIndex: Sendable {
    public let release: String
    /// Module name (with `_`) -> path relative to lib/modules/<release>.
    public let paths: [String: String]
    /// Relative path -> the relative paths it depends on.
    public let dependencies: [String: [String]]
    /// Relative path -> the relative paths of its soft dependencies (MODULE_SOFTDEP, pre and
    /// post), names and exact aliases resolved: ext4 and libcrc32c load without error but work
    /// only with a crc32c module ("EXT4-fs: Cannot load crc32c driver"), found through an alias.
    public let softDependencies: [String: [String]]
    public let builtin: Set<String>

    /// Whether a word can be a module's name (what modprobe takes): never a path, never empty.
    public static func isModuleName(_ word: String) -> Bool {
        !word.isEmpty && word.count <= 64 && word.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }
    }

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
        self.softDependencies = Self.softDependencies(
            softdep: (try? String(contentsOfFile: modulesFolder + "/modules.softdep", encoding: .utf8)) ?? "",
            alias: (try? String(contentsOfFile: modulesFolder + "/modules.alias", encoding: .utf8)) ?? "",
            paths: paths)
    }

    /// Reads `softdep NAME pre: a b post: c` lines. A soft dependency is a module name or an
    /// alias without wildcards (`crypto-crc32c`), standing for every module that carries it;
    /// one the kernel has no module for (built in, or absent) needs no file.
    static func softDependencies(softdep: String, alias: String, paths: [String: String]) -> [String: [String]] {
        var aliases: [String: [String]] = [:]
        for line in alias.split(separator: "\n") where line.hasPrefix("alias ") {
            let fields = line.split(separator: " ")
            guard fields.count == 3, !fields[1].contains("*"), !fields[1].contains("?"), !fields[1].contains("[") else { continue }
            aliases[String(fields[1]), default: []].append(canonical(String(fields[2])))
        }
        var result: [String: [String]] = [:]
        for line in softdep.split(separator: "\n") where line.hasPrefix("softdep ") {
            let fields = line.split(separator: " ").dropFirst()
            guard let owner = fields.first.flatMap({ paths[canonical(String($0))] }) else { continue }
            let wanted = fields.dropFirst().filter { !$0.hasSuffix(":") }.map(String.init)
            let resolved = wanted.flatMap { name in paths[canonical(name)].map { [$0] } ?? (aliases[name] ?? []).compactMap { paths[$0] } }
            if !resolved.isEmpty { result[owner, default: []] += resolved }
        }
        return result
    }

    public func isBuiltin(_ name: String) -> Bool { builtin.contains(Self.canonical(name)) }
    public func has(_ name: String) -> Bool { paths[Self.canonical(name)] != nil || isBuiltin(name) }

    /// The relative paths of the named modules and everything they depend on, softly too;
    /// built-in ones need no file. Throws naming every module the kernel has in neither form.
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
            queue += (dependencies[path] ?? []) + (softDependencies[path] ?? [])
        }
        return result.sorted()
    }
}
