import Foundation
import HostSupport
import Synchronization

/// The hashes a cached kernel's files had when they were extracted, checked before the files
/// are used: a damaged kernel is fetched again, never booted. vmlinuz's hash is in
/// kernel.json; every module file's is in modules.sha256 beside it; the decompressed copies
/// under plain/ have theirs in plain/digests.json. A file is hashed once per process while
/// it stays the same file (path, size, change time, inode).
public enum KernelIntegrity {
    static let manifestName = "modules.sha256"

    /// Records every module file of a kernel folder being made (`<hex>  <relative path>` lines).
    static func writeManifest(modulesFolder: String, into kernelFolder: String) throws {
        let fm = FileManager.default
        var lines: [String] = []
        if let walker = fm.enumerator(atPath: modulesFolder) {
            while let relative = walker.nextObject() as? String {
                guard isModule(relative) else { continue }
                lines.append("\(try FileDigest.sha256(ofFile: modulesFolder + "/" + relative))  \(relative)")
            }
        }
        try (lines.sorted { $0.dropFirst(66) < $1.dropFirst(66) }.joined(separator: "\n") + "\n")
            .write(toFile: kernelFolder + "/" + manifestName, atomically: true, encoding: .utf8)
    }

    static func isModule(_ path: String) -> Bool {
        path.hasSuffix(".ko") || path.hasSuffix(".ko.xz") || path.hasSuffix(".ko.zst")
    }

    /// Throws `KernelStoreError.damaged` unless vmlinuz still has its recorded hash.
    public static func checkImage(_ kernel: Kernel) throws {
        guard try ContentDigests.sha256(ofFile: kernel.imagePath) == kernel.imageSHA256 else {
            throw KernelStoreError.damaged(release: kernel.release, file: "vmlinuz")
        }
    }

    /// Throws `KernelStoreError.damaged` unless the module file (relative to lib/modules/<release>)
    /// has the hash recorded at extraction. Kernels cached before manifests existed get one now.
    public static func checkModule(_ kernel: Kernel, relative: String) throws {
        let manifest = try self.manifest(of: kernel)
        guard let expected = manifest[relative], try ContentDigests.sha256(ofFile: kernel.modulesFolder + "/" + relative) == expected else {
            throw KernelStoreError.damaged(release: kernel.release, file: relative)
        }
    }

    private static let manifests = Mutex<[String: [String: String]]>([:])

    static func manifest(of kernel: Kernel) throws -> [String: String] {
        if let known = manifests.withLock({ $0[kernel.folder] }) { return known }
        let path = kernel.folder + "/" + manifestName
        if !FileManager.default.fileExists(atPath: path) {
            try writeManifest(modulesFolder: kernel.modulesFolder, into: kernel.folder)
        }
        var entries: [String: String] = [:]
        for line in try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n") where line.count > 66 {
            entries[String(line.dropFirst(66))] = String(line.prefix(64))
        }
        manifests.withLock { $0[kernel.folder] = entries }
        return entries
    }

    /// Forgets what this process knew of a kernel folder (it is being fetched again).
    static func forget(_ kernel: Kernel) {
        manifests.withLock { _ = $0.removeValue(forKey: kernel.folder) }
        ContentDigests.forget(under: kernel.folder)
    }
}
