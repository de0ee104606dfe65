import Foundation
import HostSupport
import Kernels

/// Plain (decompressed) copies of a kernel's modules, kept beside the kernel so the guest's
/// modprobe needs no xz or zstd support and later images reuse them.
struct ModuleFiles {
    let kernel: Kernel

    var plainRoot: String { kernel.folder + "/plain" }

    /// Path relative to lib/modules/<release>, without a compression suffix.
    static func plainName(_ relative: String) -> String {
        for suffix in [".xz", ".zst"] where relative.hasSuffix(suffix) { return String(relative.dropLast(suffix.count)) }
        return relative
    }

    /// Host paths of the plain modules for `relativePaths`, decompressing what is missing in
    /// one xz and one zstd run.
    func plainFiles(for relativePaths: [String]) async throws -> [String: String] {
        // Images for one kernel are built concurrently by a matrix: one writer at a time.
        try await FileLock.withLock(kernel.folder + "/plain.lock") {
            try await self.plainFilesLocked(for: relativePaths)
        }
    }

    /// The hash of each plain file as it was made, so a damaged one is made again.
    var digestsPath: String { plainRoot + "/digests.json" }

    private func plainFilesLocked(for relativePaths: [String]) async throws -> [String: String] {
        let fm = FileManager.default
        var result: [String: String] = [:]
        var toXZ: [String] = []
        var toZstd: [String] = []
        var digests = (fm.contents(atPath: digestsPath).flatMap { try? JSONDecoder().decode([String: String].self, from: $0) }) ?? [:]
        var made: [String] = []
        for relative in relativePaths {
            let name = Self.plainName(relative)
            let plain = plainRoot + "/" + name
            result[relative] = plain
            if fm.fileExists(atPath: plain) {
                if let recorded = digests[name], (try? ContentDigests.sha256(ofFile: plain)) == recorded { continue }
                try fm.removeItem(atPath: plain)
            }
            // Made only from a module file that still has its extraction-time hash.
            try KernelIntegrity.checkModule(kernel, relative: relative)
            made.append(name)
            try fm.createDirectory(atPath: (plain as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            let source = kernel.modulesFolder + "/" + relative
            if relative.hasSuffix(".xz") {
                try? fm.removeItem(atPath: plain + ".xz")
                try fm.copyItem(atPath: source, toPath: plain + ".xz")
                toXZ.append(plain + ".xz")
            } else if relative.hasSuffix(".zst") {
                try? fm.removeItem(atPath: plain + ".zst")
                try fm.copyItem(atPath: source, toPath: plain + ".zst")
                toZstd.append(plain + ".zst")
            } else {
                try fm.copyItem(atPath: source, toPath: plain)
            }
        }
        if !toXZ.isEmpty {
            try await ProcessRunner.check("xz", ["-d", "-f", "-q"] + toXZ, timeout: .seconds(300), context: "could not decompress modules of \(kernel.release)")
        }
        if !toZstd.isEmpty {
            try await ProcessRunner.check("zstd", ["-d", "-f", "-q", "--rm"] + toZstd, timeout: .seconds(300), context: "could not decompress modules of \(kernel.release)")
        }
        if !made.isEmpty {
            for name in made { digests[name] = try ContentDigests.sha256(ofFile: plainRoot + "/" + name) }
            try JSONEncoder().encode(digests).write(to: URL(fileURLWithPath: digestsPath), options: .atomic)
        }
        return result
    }
}
