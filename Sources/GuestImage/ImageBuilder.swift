import Foundation
import HostSupport
import Kernels

/// What an image is built from.
public struct ImageRequest: Sendable {
    public var recipe: ImageRecipe
    public var kernel: Kernel
    /// Module groups of the recipe to include besides `boot` (nvdimm, cxl, ...).
    public var features: Set<String>
    /// In-tree modules to include besides the recipe's.
    public var extraModules: [String]
    /// Out-of-tree modules (.ko files built for this kernel); each replaces an in-tree module
    /// of the same name.
    public var userModules: [String]
    /// The guest agent executable, when the image should run one.
    public var agent: String?
    /// A scenario's own files (a test suite), with their libraries.
    public var payload: [ImagePayload]

    public init(recipe: ImageRecipe, kernel: Kernel, features: Set<String> = [], extraModules: [String] = [],
                userModules: [String] = [], agent: String? = nil, payload: [ImagePayload] = []) {
        self.payload = payload
        self.recipe = recipe
        self.kernel = kernel
        self.features = features
        self.extraModules = extraModules
        self.userModules = userModules
        self.agent = agent
    }
}

/// A built initramfs in the cache.
public struct BuiltImage: Sendable, Codable {
    public let key: String
    public let path: String
    public let sha256: String
    public let size: Int
    public let kernelRelease: String
    public let recipe: String
    /// Guest paths of the programs and libraries that went in.
    public let programs: [String]
    /// Names of the module files that went in.
    public let modules: [String]
    /// Optional modules the kernel has in neither form.
    public let absentModules: [String]
    /// Optional programs of the recipe this host (or its suite) does not have.
    public var absentPrograms: [String]? = nil
    /// True when the image came from the cache.
    public var cacheHit: Bool
}

/// Builds guest initramfs images in seconds and caches them by a content hash of everything
/// that went in: the same inputs give byte-identical output and a cache hit; a cached image
/// whose bytes no longer match its recorded hash is rebuilt, never used.
public struct ImageBuilder: Sendable {
    /// Bumped whenever the layout of what the builder writes changes.
    static let formatVersion = "cxllab-initramfs-1"

    public let cache: CacheDirectory
    let root: String

    public init(cache: CacheDirectory) throws {
        self.cache = cache
        self.root = try cache.folder("images")
    }

    /// Inputs resolved to host files, before anything is written.
    struct Plan {
        var files: [GuestFile] = []
        var links: [String: String] = [:]
        /// The recipe's `files:` by guest path: their content and mode (nil: the archive's default).
        var texts: [String: (content: String, mode: UInt32?)] = [:]
        var moduleFiles: [(relative: String, host: String)] = []
        var bootModules: [String] = []
        var absentModules: [String] = []
        var absentPrograms: [String] = []
    }

    public func build(_ request: ImageRequest, progress: @Sendable (String) -> Void = { _ in }) async throws -> BuiltImage {
        var memo = DigestMemo(path: root + "/digests.json")
        defer { memo.save() }
        let plan = try await makePlan(request)
        let key = try key(for: plan, request: request, memo: &memo)
        let folder = root + "/" + key
        if let hit = verifiedHit(folder: folder) { return hit }
        // Concurrent builders of one image (a matrix's cells) take turns: the second finds the
        // first one's image instead of replacing it under a lab that is copying it.
        let kernel = request.kernel.release
        return try await FileLock.withLock(folder + ".lock") {
            if let hit = self.verifiedHit(folder: folder) { return hit }
            if FileManager.default.fileExists(atPath: folder) {
                progress("cached image \(key.prefix(12)) is corrupted; rebuilding it")
                try? FileManager.default.removeItem(atPath: folder)
            }
            progress("building image \(key.prefix(12)) for \(kernel)")
            return try await self.write(plan, request: request, key: key, folder: folder)
        }
    }

    /// The cached image, when its bytes still match the hash recorded when it was built.
    func verifiedHit(folder: String) -> BuiltImage? {
        guard let cached = loadManifest(folder: folder), (try? ContentDigests.sha256(ofFile: cached.path)) == cached.sha256 else { return nil }
        var hit = cached
        hit.cacheHit = true
        return hit
    }

    func makePlan(_ request: ImageRequest) async throws -> Plan {
        var plan = Plan()
        if let agent = request.agent {
            plan.files.append(GuestFile(guestPath: InitScript.agentPath, hostPath: agent))
        }
        var closure = LibraryClosure()
        if let suite = request.recipe.suite {
            let sysroot = try SuiteSysroot(cache: cache, suite: suite, packages: request.recipe.packages ?? [])
            try await sysroot.prepare()
            closure = LibraryClosure(sysroot: sysroot.path)
        }
        // A program ending in `?` is optional: a host without it gives an image without it
        // (ndctl's tests name what they miss and skip).
        var programs: [String] = []
        for binary in request.recipe.binaries where binary != InitScript.agentPath {
            guard binary.hasSuffix("?") else {
                guard FileManager.default.fileExists(atPath: closure.host(binary)) else {
                    throw RecipeProgramMissing(recipe: request.recipe.name, program: binary, sysroot: request.recipe.suite)
                }
                programs.append(binary)
                continue
            }
            let bare = String(binary.dropLast())
            if FileManager.default.fileExists(atPath: closure.host(bare)) { programs.append(bare) } else { plan.absentPrograms.append(bare) }
        }
        var resolved = try closure.files(for: programs)
        if let agent = request.agent {
            // The agent's libraries are looked up by its host path, then placed like the rest.
            let agentLibraries = try LibraryClosure().files(for: [agent]).filter { $0.hostPath != URL(fileURLWithPath: agent).resolvingSymlinksInPath().path }
            resolved += agentLibraries
        }
        var seen = Set(plan.files.map(\.guestPath))
        plan.files += resolved.filter { seen.insert($0.guestPath).inserted }
        plan.links = request.recipe.links ?? [:]
        for payload in request.payload {
            plan.files += try payload.guestFiles().filter { seen.insert($0.guestPath).inserted }
            plan.links.merge(payload.links) { _, payload in payload }
        }
        plan.files.sort()
        for file in request.recipe.files ?? [] { plan.texts[file.path] = (file.content, file.mode) }

        let index = try ModuleIndex(modulesFolder: request.kernel.modulesFolder, release: request.kernel.release)
        let userNames = Set(request.userModules.map { ModuleIndex.name(ofPath: $0) })
        var wanted: [String] = []
        for name in request.recipe.moduleNames(for: request.features) + request.extraModules {
            let optional = name.hasSuffix("?")
            let bare = optional ? String(name.dropLast()) : name
            if userNames.contains(ModuleIndex.canonical(bare)) { wanted.append(bare); continue }
            if optional && !index.has(bare) { plan.absentModules.append(bare); continue }
            wanted.append(bare)
        }
        plan.bootModules = wanted
        let relatives = try index.closure(of: wanted.filter { !userNames.contains(ModuleIndex.canonical($0)) })
            .filter { !userNames.contains(ModuleIndex.name(ofPath: $0)) }
        let plain = try await ModuleFiles(kernel: request.kernel).plainFiles(for: relatives)
        plan.moduleFiles = relatives.map { (ModuleFiles.plainName($0), plain[$0]!) }
        for module in request.userModules {
            plan.moduleFiles.append(("extra/" + (module as NSString).lastPathComponent, module))
        }
        plan.moduleFiles.sort { $0.relative < $1.relative }
        return plan
    }

    func key(for plan: Plan, request: ImageRequest, memo: inout DigestMemo) throws -> String {
        var description = ""
        func line(_ text: String) { description += text + "\n" }
        line(Self.formatVersion)
        line("kernel \(request.kernel.release) \(request.kernel.imageSHA256)")
        line("init " + FileDigest.sha256(of: Data(InitScript.text().utf8)))
        line("boot-modules " + plan.bootModules.joined(separator: " "))
        for file in plan.files { line("file \(file.guestPath) \(file.mode) \(try memo.sha256(of: file.hostPath))") }
        for (path, target) in plan.links.sorted(by: { $0.key < $1.key }) { line("link \(path) \(target)") }
        for (path, text) in plan.texts.sorted(by: { $0.key < $1.key }) {
            line("text \(path) " + (text.mode.map { "mode \(String($0, radix: 8)) " } ?? "") + FileDigest.sha256(of: Data(text.content.utf8)))
        }
        for module in plan.moduleFiles { line("module \(module.relative) \(try memo.sha256(of: module.host))") }
        for name in ["modules.builtin", "modules.builtin.modinfo", "modules.order"] {
            let path = request.kernel.modulesFolder + "/" + name
            if FileManager.default.fileExists(atPath: path) { line("\(name) \(try memo.sha256(of: path))") }
        }
        return FileDigest.sha256(of: Data(description.utf8))
    }

    func loadManifest(folder: String) -> BuiltImage? {
        guard let data = FileManager.default.contents(atPath: folder + "/manifest.json") else { return nil }
        return try? JSONDecoder().decode(BuiltImage.self, from: data)
    }

    func write(_ plan: Plan, request: ImageRequest, key: String, folder: String) async throws -> BuiltImage {
        let fm = FileManager.default
        let release = request.kernel.release
        let staging = root + "/.staging-\(key.prefix(16))-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString.prefix(8))"
        try fm.createDirectory(atPath: staging, withIntermediateDirectories: true)
        defer { try? fm.removeItem(atPath: staging) }

        // depmod over exactly the modules that go in, so the guest's modules.dep is their own.
        let moduleRoot = staging + "/depmod/lib/modules/" + release
        try fm.createDirectory(atPath: moduleRoot, withIntermediateDirectories: true)
        for name in ["modules.builtin", "modules.builtin.modinfo", "modules.order"] {
            let path = request.kernel.modulesFolder + "/" + name
            if fm.fileExists(atPath: path) { try fm.copyItem(atPath: path, toPath: moduleRoot + "/" + name) }
        }
        for module in plan.moduleFiles {
            let target = moduleRoot + "/" + module.relative
            try fm.createDirectory(atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            if link(module.host, target) != 0 { try fm.copyItem(atPath: module.host, toPath: target) }
        }
        try await ProcessRunner.check("depmod", ["-b", staging + "/depmod", release], timeout: .seconds(120),
                                      context: "depmod failed for the image's modules")

        var archive = CPIOArchive()
        for folder in ["dev", "proc", "sys", "tmp", "run", "root", "etc/cxllab", "usr/bin", "usr/sbin", "bin", "sbin"] {
            archive.add(folder, .directory)
        }
        archive.add("dev/console", .characterDevice(major: 5, minor: 1))
        archive.add("dev/null", .characterDevice(major: 1, minor: 3), mode: 0o666)
        archive.add("init", .bytes(Data(InitScript.text().utf8)), mode: 0o755)
        archive.add("etc/cxllab/modules", .bytes(Data((plan.bootModules.joined(separator: "\n") + "\n").utf8)))
        for file in plan.files { archive.add(file.guestPath, .file(file.hostPath), mode: file.mode) }
        for (path, target) in plan.links { archive.add(path, .symlink(target)) }
        for (path, text) in plan.texts { archive.add(path, .bytes(Data(text.content.utf8)), mode: text.mode) }
        let guestModules = "lib/modules/" + release
        let produced = try fm.subpathsOfDirectory(atPath: moduleRoot).sorted()
        for relative in produced {
            var isFolder: ObjCBool = false
            if fm.fileExists(atPath: moduleRoot + "/" + relative, isDirectory: &isFolder), isFolder.boolValue { continue }
            if let module = plan.moduleFiles.first(where: { $0.relative == relative }) {
                archive.add(guestModules + "/" + relative, .file(module.host))
            } else {
                archive.add(guestModules + "/" + relative, .file(moduleRoot + "/" + relative))
            }
        }
        let output = staging + "/out"
        try fm.createDirectory(atPath: output, withIntermediateDirectories: true)
        let size = try archive.write(to: output + "/initramfs.cpio")
        let digest = try FileDigest.sha256(ofFile: output + "/initramfs.cpio")
        let image = BuiltImage(
            key: key, path: folder + "/initramfs.cpio", sha256: digest, size: size, kernelRelease: release,
            recipe: request.recipe.name, programs: plan.files.map(\.guestPath),
            modules: plan.moduleFiles.map { ModuleIndex.name(ofPath: $0.relative) }, absentModules: plan.absentModules,
            absentPrograms: plan.absentPrograms.isEmpty ? nil : plan.absentPrograms, cacheHit: false
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(image).write(to: URL(fileURLWithPath: output + "/manifest.json"))
        // Another builder may have finished the same key meanwhile; either copy is the same bytes.
        if fm.fileExists(atPath: folder) { try? fm.removeItem(atPath: folder) }
        try fm.moveItem(atPath: output, toPath: folder)
        return image
    }
}

/// A program a recipe needs that is not where the recipe takes it from.
public struct RecipeProgramMissing: Error, Sendable, CustomStringConvertible {
    public let recipe: String
    public let program: String
    /// The Debian suite the recipe's programs come from, when not this host.
    public let sysroot: String?

    public var description: String {
        if let sysroot {
            return "image recipe '\(recipe)' needs \(program), which its \(sysroot) packages do not hold: add the package that has it to the recipe's `packages`"
        }
        return "image recipe '\(recipe)' needs \(program), which this host lacks: install the Debian package that has it "
            + "(`dpkg -S \(program)` on a host that has it names it; `make setup` installs what the default recipes need, "
            + "`make setup-suite` what the ndctl-suite recipe needs)"
    }
}
