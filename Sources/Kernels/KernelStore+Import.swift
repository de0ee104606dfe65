import Foundation
import HostSupport

public enum KernelImportError: Error, Sendable, CustomStringConvertible {
    case noImage(tree: String)
    case notABzImage(String)
    case noModules(String)
    case unusableRelease(String, String)

    public var description: String {
        switch self {
        case .noImage(let tree):
            return "kernel tree \(tree) has no arch/x86/boot/bzImage; build it first (`make -j$(nproc) bzImage modules`), or name the image with files:<bzImage>"
        case .notABzImage(let path):
            return "\(path) is not an x86 bzImage (no 'HdrS' setup header); give the bzImage from arch/x86/boot"
        case .unusableRelease(let path, let release):
            return "\(path) names its release '\(release.prefix(80))', which cannot be a folder name; a kernel's release is letters, digits and + . ~ - _"
        case .noModules(let path):
            return "\(path) holds no kernel modules: give the folder INSTALL_MOD_PATH pointed at (with lib/modules/<release>) or a lib/modules/<release> folder"
        }
    }
}

extension KernelStore {
    /// The release a bzImage was built as, from its setup header's version string.
    public static func release(ofBzImage path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw KernelImportError.notABzImage(path) }
        defer { try? handle.close() }
        let head = (try? handle.read(upToCount: 0x10000)) ?? Data()
        let bytes = [UInt8](head)
        guard bytes.count > 0x210, bytes[0x202..<0x206].elementsEqual("HdrS".utf8) else { throw KernelImportError.notABzImage(path) }
        let offset = Int(bytes[0x20E]) | Int(bytes[0x20F]) << 8
        let start = offset + 0x200
        guard offset > 0, start < bytes.count else { throw KernelImportError.notABzImage(path) }
        let text = bytes[start...].prefix { $0 != 0 && $0 != 0x20 }
        guard !text.isEmpty else { throw KernelImportError.notABzImage(path) }
        // The release becomes a folder name (lib/modules/<release>): `uname -r`'s characters only.
        let release = String(decoding: text, as: UTF8.self)
        guard KernelReference.isReleaseName(release) else {
            throw KernelImportError.unusableRelease(path, release)
        }
        return release
    }

    /// Imports a `build:` tree or `files:` kernel into the store, again whenever its image
    /// changed (a rebuilt tree); a `make:` tree is built first, and what that build made is
    /// imported (`KernelTreeBuild`).
    public func importKernel(_ reference: KernelReference, progress: @escaping @Sendable (String) -> Void = { _ in }) async throws -> Kernel {
        let fm = FileManager.default
        let image: String
        let config: String?
        var tree: String?
        var treeBuild: TreeBuildRecord?
        switch reference {
        case .madeTree(let path):
            let build = KernelTreeBuild(tree: path)
            treeBuild = try await build.run(progress: progress)
            image = build.imagePath
            config = build.configPath
            tree = build.tree
        case .buildTree(let path):
            let root = URL(fileURLWithPath: path).standardizedFileURL.path
            image = root + "/arch/x86/boot/bzImage"
            guard fm.fileExists(atPath: image) else { throw KernelImportError.noImage(tree: root) }
            config = fm.fileExists(atPath: root + "/.config") ? root + "/.config" : nil
            tree = root
        case .files(let bzImage, _, let configPath):
            image = URL(fileURLWithPath: bzImage).standardizedFileURL.path
            guard fm.fileExists(atPath: image) else { throw KernelImportError.notABzImage(image) }
            config = configPath
        case .debianRelease, .debianSuite:
            return try await kernel(reference, progress: progress)
        }
        let release = try Self.release(ofBzImage: image)
        let digest = try FileDigest.sha256(ofFile: image)
        if let treeBuild, treeBuild.imageSHA256 != digest { throw KernelTreeBuildError.changedSinceBuild(path: image) }
        let origin = reference.description
        let folder = root + "/" + FileDigest.sha256(of: Data(origin.utf8)).prefix(16)
        if let existing = load(folder: folder), existing.imageSHA256 == digest, existing.treeBuild == treeBuild { return existing }
        let buildTree = tree
        let build = treeBuild
        return try await FileLock.withLock(folder + ".lock") {
            try await self.importLocked(reference, image: image, config: config, tree: buildTree, treeBuild: build, release: release,
                                        digest: digest, folder: folder, progress: progress)
        }
    }

    private func importLocked(_ reference: KernelReference, image: String, config: String?, tree: String?, treeBuild: TreeBuildRecord?,
                              release: String, digest: String, folder: String,
                              progress: @escaping @Sendable (String) -> Void) async throws -> Kernel {
        let fm = FileManager.default
        let origin = reference.description
        if let existing = load(folder: folder), existing.imageSHA256 == digest, existing.treeBuild == treeBuild { return existing }

        progress("importing \(origin) (\(release))")
        let staging = folder + ".staging-\(UUID().uuidString.prefix(8))"
        try? fm.removeItem(atPath: staging)
        defer { try? fm.removeItem(atPath: staging) }
        let modulesFolder = staging + "/modules/lib/modules/" + release
        try fm.createDirectory(atPath: modulesFolder, withIntermediateDirectories: true)
        try fm.copyItem(atPath: image, toPath: staging + "/vmlinuz")
        // The copy is what boots: it must be the image hashed (and, for make:, just built).
        guard try FileDigest.sha256(ofFile: staging + "/vmlinuz") == digest else { throw KernelTreeBuildError.changedSinceBuild(path: image) }
        if let config { try fm.copyItem(atPath: config, toPath: staging + "/config") }

        switch reference {
        case .buildTree(let path), .madeTree(let path):
            try collectModules(fromTree: tree ?? path, into: modulesFolder)
        case .files(_, let modules?, _):
            try copyInstalledModules(from: modules, release: release, into: modulesFolder)
        default:
            break
        }
        try await ProcessRunner.check("depmod", ["-b", staging + "/modules", release], timeout: .seconds(120),
                                      context: "depmod failed for \(origin)")
        try KernelIntegrity.writeManifest(modulesFolder: modulesFolder, into: staging)
        var kernel = Kernel(release: release, origin: origin, packageVersion: nil, suite: nil, imageSHA256: digest, folder: folder)
        kernel.buildTree = tree
        kernel.treeBuild = treeBuild
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(kernel).write(to: URL(fileURLWithPath: staging + "/kernel.json"))
        try? fm.removeItem(atPath: folder)
        try fm.moveItem(atPath: staging, toPath: folder)
        return kernel
    }

    /// What `make modules_install` would do: every built module under kernel/<its path in the
    /// tree>, with the tree's modules.order and modules.builtin files.
    func collectModules(fromTree tree: String, into modulesFolder: String) throws {
        let fm = FileManager.default
        guard let walker = fm.enumerator(atPath: tree) else { return }
        while let relative = walker.nextObject() as? String {
            let name = (relative as NSString).lastPathComponent
            if name.hasPrefix(".") || relative.hasPrefix("lib/modules") { walker.skipDescendants(); continue }
            guard name.hasSuffix(".ko") || name.hasSuffix(".ko.xz") || name.hasSuffix(".ko.zst") else { continue }
            let target = modulesFolder + "/kernel/" + relative
            try fm.createDirectory(atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            if link(tree + "/" + relative, target) != 0 { try fm.copyItem(atPath: tree + "/" + relative, toPath: target) }
        }
        for file in ["modules.order", "modules.builtin", "modules.builtin.modinfo"] where fm.fileExists(atPath: tree + "/" + file) {
            try fm.copyItem(atPath: tree + "/" + file, toPath: modulesFolder + "/" + file)
        }
    }

    /// Modules installed with INSTALL_MOD_PATH (a folder with lib/modules/<release>), or a
    /// lib/modules/<release> folder itself.
    func copyInstalledModules(from folder: String, release: String, into modulesFolder: String) throws {
        let fm = FileManager.default
        let candidates = [folder + "/lib/modules/" + release, folder + "/usr/lib/modules/" + release, folder]
        guard let source = candidates.first(where: { fm.fileExists(atPath: $0 + "/modules.order") || fm.fileExists(atPath: $0 + "/kernel") }) else {
            throw KernelImportError.noModules(folder)
        }
        try fm.removeItem(atPath: modulesFolder)
        try fm.copyItem(atPath: source, toPath: modulesFolder)
    }
}
