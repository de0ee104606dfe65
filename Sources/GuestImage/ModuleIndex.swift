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
    /// Relative path -> its soft dependencies (MODULE_SOFTDEP, pre and post) as modules.softdep
    /// names them: module names, or exact aliases. ext4 and libcrc32c load without error but
    /// work only with a crc32c module ("EXT4-fs: Cannot load crc32c driver"), found through an
    /// alias. Resolved by `closure(of:)` for the modules an image takes.
    let softDependencyNames: [String: [String]]
    /// modules.alias as read, searched only when a module an image takes has a soft dependency
    /// that is an alias: most images take none, and parsing its tens of thousands of lines
    /// made every image build five times slower.
    let aliasText: Data
    public let builtin: Set<String>

    /// Whether a word can be a module's name (what modprobe takes): never a path, never empty.
    public static func isModuleName(_ word: String) -> Bool {
        !word.isEmpty && word.count <= 64 && word.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }
    }

    // Plain Swift, not Foundation's string search: an image build reads a kernel's whole
    // modules.dep, and these ran once per line of it.
    public static func canonical(_ name: String) -> String {
        name.utf8.contains(UInt8(ascii: "-")) ? String(name.map { $0 == "-" ? "_" : $0 }) : name
    }

    /// The module name a path stands for: kernel/drivers/dax/device_dax.ko.xz -> device_dax.
    public static func name(ofPath path: String) -> String {
        var base = path.lastIndex(of: "/").map { path[path.index(after: $0)...] } ?? path[...]
        for suffix in [".xz", ".zst", ".gz"] where base.hasSuffix(suffix) { base.removeLast(suffix.count) }
        if base.hasSuffix(".ko") { base.removeLast(3) }
        return canonical(String(base))
    }

    /// The module name a path given as bytes stands for (modules.dep's lines).
    static func name(ofPath bytes: UnsafeBufferPointer<UInt8>) -> String {
        guard let base = bytes.baseAddress else { return "" }
        var start = bytes.count
        while start > 0 && base[start - 1] != UInt8(ascii: "/") { start -= 1 }
        var end = bytes.count
        for suffix in [".xz", ".zst", ".gz", ".ko"] {
            let tail = Array(suffix.utf8)
            if end - start > tail.count, memcmp(base + end - tail.count, tail, tail.count) == 0 { end -= tail.count }
        }
        return String(unsafeUninitializedCapacity: end - start) { buffer in
            for index in 0..<(end - start) {
                let byte = base[start + index]
                buffer[index] = byte == UInt8(ascii: "-") ? UInt8(ascii: "_") : byte
            }
            return end - start
        }
    }

    public init(modulesFolder: String, release: String) throws {
        self.release = release
        guard let dep = FileManager.default.contents(atPath: modulesFolder + "/modules.dep") else {
            throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: modulesFolder + "/modules.dep"])
        }
        var paths: [String: String] = [:]
        var dependencies: [String: [String]] = [:]
        ByteLines.forEach(in: dep) { line in
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { return }
            let pathBytes = UnsafeBufferPointer(rebasing: line[..<colon])
            let path = String(decoding: pathBytes, as: UTF8.self)
            paths[Self.name(ofPath: pathBytes)] = path
            dependencies[path] = ByteLines.fields(UnsafeBufferPointer(rebasing: line[(colon + 1)...])).map { String(decoding: $0, as: UTF8.self) }
        }
        var builtin: Set<String> = []
        ByteLines.forEach(in: FileManager.default.contents(atPath: modulesFolder + "/modules.builtin") ?? Data()) { builtin.insert(Self.name(ofPath: $0)) }
        self.builtin = builtin
        self.paths = paths
        self.dependencies = dependencies
        var softDependencyNames: [String: [String]] = [:]
        let softdep = (try? String(contentsOfFile: modulesFolder + "/modules.softdep", encoding: .utf8)) ?? ""
        for line in softdep.split(separator: "\n") where line.hasPrefix("softdep ") {
            let fields = line.split(separator: " ").dropFirst()
            guard let owner = fields.first.flatMap({ paths[Self.canonical(String($0))] }) else { continue }
            softDependencyNames[owner, default: []] += fields.dropFirst().filter { !$0.hasSuffix(":") }.map(String.init)
        }
        self.softDependencyNames = softDependencyNames
        self.aliasText = FileManager.default.contents(atPath: modulesFolder + "/modules.alias") ?? Data()
    }

    /// The relative paths of a module's soft dependencies: module names, and exact aliases
    /// (no wildcards) standing for every module that carries them; one the kernel has no
    /// module for (built in, or absent) needs no file. `aliases` is read from modules.alias on
    /// the first alias, once per closure.
    func softDependencies(of path: String, aliases: inout [String: [String]]?) -> [String] {
        (softDependencyNames[path] ?? []).flatMap { name -> [String] in
            if let direct = paths[Self.canonical(name)] { return [direct] }
            guard !name.contains(where: { "*?[".contains($0) }) else { return [] }
            if aliases == nil {
                let names = Set(softDependencyNames.values.joined().filter { paths[Self.canonical($0)] == nil })
                aliases = Self.modules(carrying: names, in: aliasText)
            }
            return (aliases?[name] ?? []).compactMap { paths[$0] }
        }
    }

    /// The modules each of `names` is an alias of, from modules.alias's `alias NAME MODULE`
    /// lines, found with memmem and memchr: fast in a debug build too.
    static func modules(carrying names: Set<String>, in text: Data) -> [String: [String]] {
        var result: [String: [String]] = [:]
        text.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            guard let base = raw.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
            for name in names {
                // Each "alias NAME " at the start of a line, found by memmem.
                let head = Array("alias \(name) ".utf8)
                var offset = 0
                while offset < raw.count, let found = glibcMemmem(base + offset, raw.count - offset, head, head.count) {
                    let at = UnsafeRawPointer(found) - UnsafeRawPointer(base)
                    offset = at + head.count
                    guard at == 0 || base[at - 1] == 0x0A else { continue }
                    let end = memchr(base + offset, 0x0A, raw.count - offset).map { UnsafeRawPointer($0) - UnsafeRawPointer(base) } ?? raw.count
                    let module = UnsafeBufferPointer(start: base + offset, count: end - offset)
                    if !module.isEmpty, !module.contains(0x20) {
                        result[name, default: []].append(canonical(String(decoding: module, as: UTF8.self)))
                    }
                    offset = end
                }
            }
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
        var aliases: [String: [String]]?
        while let path = queue.popLast() {
            guard result.insert(path).inserted else { continue }
            queue += (dependencies[path] ?? []) + softDependencies(of: path, aliases: &aliases)
        }
        return result.sorted()
    }
}

/// glibc's memmem(3), a GNU extension Swift's Glibc module does not export.
@_silgen_name("memmem")
private func glibcMemmem(_ haystack: UnsafeRawPointer, _ haystackLength: Int, _ needle: UnsafeRawPointer, _ needleLength: Int) -> UnsafeMutableRawPointer?

/// The lines of a text file as bytes, found with memchr: a kernel's modules files run to
/// thousands of lines, and Swift's generic split is slow in a debug build (`make demo` runs one).
enum ByteLines {
    static func forEach(in data: Data, _ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            guard let base = raw.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
            var start = 0
            while start < raw.count {
                let end = memchr(base + start, 0x0A, raw.count - start).map { UnsafeRawPointer($0) - UnsafeRawPointer(base) } ?? raw.count
                if end > start { body(UnsafeBufferPointer(start: base + start, count: end - start)) }
                start = end + 1
            }
        }
    }

    /// A line's fields between spaces.
    static func fields(_ line: UnsafeBufferPointer<UInt8>) -> [UnsafeBufferPointer<UInt8>] {
        guard let base = line.baseAddress else { return [] }
        var result: [UnsafeBufferPointer<UInt8>] = []
        var start = 0
        while start < line.count {
            let end = memchr(base + start, 0x20, line.count - start).map { UnsafeRawPointer($0) - UnsafeRawPointer(base) } ?? line.count
            if end > start { result.append(UnsafeBufferPointer(start: base + start, count: end - start)) }
            start = end + 1
        }
        return result
    }
}
