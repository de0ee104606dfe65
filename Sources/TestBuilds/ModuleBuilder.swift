import Foundation
import GuestImage
import HostSupport
import Kernels

public enum ModuleBuildError: Error, Sendable, CustomStringConvertible {
    case wrongKernel(module: String, vermagic: String, kernel: String, expected: String)
    case notAModule(String)
    /// A path (it has a slash) that names nothing.
    case noSuchPath(String)
    /// A bare word that cannot be a module's name.
    case notAModuleName(String)
    case noKbuildFile(String)
    case compileFailed(source: String, release: String, log: String)
    case kbuildIncompatible(release: String, reason: String)
    case noHeaders(String)

    public var description: String {
        switch self {
        case .wrongKernel(let module, let vermagic, let kernel, let expected):
            return "\(module) was built for another kernel (vermagic '\(vermagic)'), but the lab boots \(kernel) "
                + "(vermagic '\(expected)'); rebuild it against that kernel, or pass its source folder with --module and cxllab builds it"
        case .notAModule(let path):
            return "\(path) is not a kernel module (modinfo cannot read it)"
        case .noSuchPath(let path):
            return "--module \(path): no such file or folder; give the path of a module source folder or a .ko file"
        case .notAModuleName(let word):
            return "--module \(word): a bare word names an in-tree module (letters, digits, '_' and '-'); "
                + "a module file or source folder is given by a path with a slash, e.g. ./\(word)"
        case .noKbuildFile(let path):
            return "\(path) has no Kbuild or Makefile; a module source folder needs one (e.g. `obj-m := mymod.o`)"
        case .compileFailed(let source, let release, let log):
            return "the module in \(source) does not compile against \(release):\n\(log)"
        case .kbuildIncompatible(let release, let reason):
            return "cannot build modules for \(release) on this host: \(reason). Build the module on a host of that "
                + "kernel's Debian release and pass the .ko with --module"
        case .noHeaders(let origin):
            return "\(origin) has no build tree or headers to build modules against; build the module yourself and pass the .ko with --module"
        }
    }
}

/// Out-of-tree modules: checks prebuilt ones against the kernel, and builds module source
/// folders against the kernel's headers (Debian's linux-headers and linux-kbuild, extracted
/// into the cache on demand; nothing is installed on the host).
public struct ModuleBuilder: Sendable {
    public let cache: CacheDirectory

    public init(cache: CacheDirectory) {
        self.cache = cache
    }

    /// The `vermagic` a module carries.
    public static func vermagic(of module: String) async throws -> String {
        let result = try await ProcessRunner.run("modinfo", ["-F", "vermagic", module], timeout: .seconds(30))
        let value = result.output.trimmingCharacters(in: .whitespacesAndNewlines)
        guard result.succeeded, !value.isEmpty else { throw ModuleBuildError.notAModule(module) }
        return value
    }

    /// The kernel's own vermagic, read from one of its modules.
    public static func vermagic(of kernel: Kernel) async throws -> String {
        let index = try ModuleIndex(modulesFolder: kernel.modulesFolder, release: kernel.release)
        guard let any = index.paths.values.sorted().first else { throw ModuleBuildError.noHeaders(kernel.origin) }
        return try await vermagic(of: kernel.modulesFolder + "/" + any)
    }

    /// Throws unless `module` was built for `kernel`.
    public static func check(_ module: String, against kernel: Kernel) async throws {
        async let moduleMagic = vermagic(of: module)
        async let kernelMagic = vermagic(of: kernel)
        let (found, expected) = try await (moduleMagic, kernelMagic)
        guard found == expected else {
            throw ModuleBuildError.wrongKernel(module: module, vermagic: found, kernel: kernel.release, expected: expected)
        }
    }

    /// Builds every module of a source folder (with a Kbuild or Makefile) for `kernel`; the
    /// result is cached by the sources' content and the kernel.
    public func build(source: String, for kernel: Kernel, progress: @Sendable (String) -> Void = { _ in }) async throws -> [String] {
        let fm = FileManager.default
        let source = URL(fileURLWithPath: source).standardizedFileURL.path
        guard fm.fileExists(atPath: source + "/Kbuild") || fm.fileExists(atPath: source + "/Makefile") else {
            throw ModuleBuildError.noKbuildFile(source)
        }
        let key = try sourceKey(source, release: kernel.release)
        let output = try cache.folder("modules", key)
        return try await FileLock.withLock(output + ".lock") {
            try await self.buildLocked(source: source, kernel: kernel, output: output, progress: progress)
        }
    }

    private func buildLocked(source: String, kernel: Kernel, output: String, progress: @Sendable (String) -> Void) async throws -> [String] {
        let fm = FileManager.default
        let built = try fm.contentsOfDirectory(atPath: output).filter { $0.hasSuffix(".ko") }.sorted()
        if !built.isEmpty { return built.map { output + "/" + $0 } }

        let tree = try await buildTree(for: kernel, progress: progress)
        let work = output + ".work"
        try? fm.removeItem(atPath: work)
        defer { try? fm.removeItem(atPath: work) }
        try fm.copyItem(atPath: source, toPath: work)
        progress("building \((source as NSString).lastPathComponent) against \(kernel.release)")
        // BTF for modules needs pahole and a matching vmlinux; a lab does not need BTF.
        let result = try await ProcessRunner.run(
            "make", ["-C", tree, "M=\(work)", "modules", "CONFIG_DEBUG_INFO_BTF_MODULES="], timeout: .seconds(600)
        )
        guard result.succeeded else {
            let log = (result.output + result.errorOutput).split(separator: "\n")
                .filter { !$0.hasPrefix("make") }.suffix(15).joined(separator: "\n")
            throw ModuleBuildError.compileFailed(source: source, release: kernel.release, log: log)
        }
        let modules = try fm.subpathsOfDirectory(atPath: work).filter { $0.hasSuffix(".ko") }.sorted()
        for module in modules {
            try fm.copyItem(atPath: work + "/" + module, toPath: output + "/" + (module as NSString).lastPathComponent)
        }
        return modules.map { output + "/" + ($0 as NSString).lastPathComponent }
    }

    func sourceKey(_ source: String, release: String) throws -> String {
        let fm = FileManager.default
        var description = "release \(release)\n"
        let outputs = [".o", ".ko", ".mod", ".mod.c", ".cmd", ".symvers", ".order"]
        for relative in try fm.subpathsOfDirectory(atPath: source).sorted() {
            let path = source + "/" + relative
            var isFolder: ObjCBool = false
            guard fm.fileExists(atPath: path, isDirectory: &isFolder), !isFolder.boolValue,
                  !outputs.contains(where: relative.hasSuffix) else { continue }
            description += "\(relative) \(try FileDigest.sha256(ofFile: path))\n"
        }
        return FileDigest.sha256(of: Data(description.utf8))
    }

    /// The folder `make -C` takes: the kernel's own build tree, or Debian's headers for it.
    func buildTree(for kernel: Kernel, progress: @Sendable (String) -> Void) async throws -> String {
        if let tree = kernel.buildTree { return tree }
        guard kernel.origin.hasPrefix("debian:") else { throw ModuleBuildError.noHeaders(kernel.origin) }
        let root = try cache.folder("headers", kernel.release)
        let headers = root + "/usr/src/linux-headers-\(kernel.release)"
        try await FileLock.withLock(root + ".lock") {
            try await self.fetchHeaders(kernel: kernel, root: root, headers: headers, progress: progress)
        }
        try await checkHostCanRun(headersRoot: root, headers: headers, release: kernel.release)
        return headers
    }

    private func fetchHeaders(kernel: Kernel, root: String, headers: String, progress: @Sendable (String) -> Void) async throws {
        let fm = FileManager.default
        if !fm.fileExists(atPath: root + "/.complete") {
            progress("fetching headers for \(kernel.release)")
            let archive = try DebianArchive(cache: cache)
            try await archive.refresh()
            guard let record = try await archive.record(of: "linux-headers-\(kernel.release)") else {
                throw ModuleBuildError.noHeaders(kernel.origin)
            }
            let version = record["Version"] ?? ""
            let depends = dependencyNames(record["Depends"] ?? "")
            let packages = ["linux-headers-\(kernel.release)"]
                + depends.filter { $0.hasPrefix("linux-headers-") || $0.hasPrefix("linux-kbuild-") }
            let debs = try await archive.download(packages.map { $0.hasPrefix("linux-kbuild-") ? $0 : "\($0)=\(version)" }, into: root + "/.debs")
            for deb in debs {
                try await ProcessRunner.check("dpkg-deb", ["-x", deb, root], timeout: .seconds(300), context: "could not extract \(deb)")
            }
            try? fm.removeItem(atPath: root + "/.debs")
            // The headers' Makefile includes the common headers by their installed path; point
            // it at this private copy instead.
            let makefile = headers + "/Makefile"
            let text = try String(contentsOfFile: makefile, encoding: .utf8)
            try text.replacingOccurrences(of: "include /usr/src/", with: "include \(root)/usr/src/")
                .write(toFile: makefile, atomically: true, encoding: .utf8)
            _ = fm.createFile(atPath: root + "/.complete", contents: Data())
        }
    }

    /// A newer Debian's kbuild has helpers linked against a newer glibc, and names a compiler
    /// this host may lack; say so instead of failing deep inside make.
    func checkHostCanRun(headersRoot: String, headers: String, release: String) async throws {
        let fm = FileManager.default
        var problems: [String] = []
        let kbuild = (try? fm.contentsOfDirectory(atPath: headersRoot + "/usr/lib"))?.first { $0.hasPrefix("linux-kbuild-") }
        if let kbuild {
            let scripts = headersRoot + "/usr/lib/" + kbuild + "/scripts/mod"
            let modpost = [scripts + "/modpost.real-lsb-64", scripts + "/modpost"].first(where: fm.fileExists)
            if let modpost {
                let result = try await ProcessRunner.run(modpost, [], timeout: .seconds(10))
                if let range = result.errorOutput.range(of: #"GLIBC_[0-9.]+"#, options: .regularExpression) {
                    var buffer = [CChar](repeating: 0, count: 64)
                    _ = confstr(Int32(_CS_GNU_LIBC_VERSION), &buffer, buffer.count)
                    let host = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                    problems.append("\(kbuild)'s modpost needs \(result.errorOutput[range]) but this host has \(host)")
                }
            }
        }
        if let variables = try? String(contentsOfFile: headers + "/.kernelvariables", encoding: .utf8),
           let range = variables.range(of: #"gcc-[0-9]+"#, options: .regularExpression) {
            let compiler = String(variables[range])
            if ExecutableLocator.find("x86_64-linux-gnu-" + compiler) == nil && ExecutableLocator.find(compiler) == nil {
                problems.append("its headers name the compiler \(compiler), which this host lacks")
            }
        }
        if !problems.isEmpty {
            throw ModuleBuildError.kbuildIncompatible(release: release, reason: problems.joined(separator: "; "))
        }
    }
}

extension ModuleBuilder {
    /// Sorts `--module` arguments: a path (it has a slash: `./fsdev_dax`, `images/modules/x`; or `.`)
    /// is a folder of module source to build or a prebuilt .ko to check against the kernel;
    /// a bare word names an in-tree module. A bare word is never looked up in the working
    /// folder: cxllab runs as root, and a `fsdev_dax` folder that happens to be where it was
    /// started must not be built.
    public func resolve(_ arguments: [String], for kernel: Kernel, progress: @Sendable (String) -> Void = { _ in }) async throws
        -> (inTree: [String], files: [String]) {
        var inTree: [String] = []
        var files: [String] = []
        for argument in arguments {
            guard ModuleArgument.isPath(argument) else {
                guard ModuleIndex.isModuleName(argument) else { throw ModuleBuildError.notAModuleName(argument) }
                inTree.append(argument)
                continue
            }
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: argument, isDirectory: &isFolder) else { throw ModuleBuildError.noSuchPath(argument) }
            if isFolder.boolValue {
                files += try await build(source: argument, for: kernel, progress: progress)
            } else {
                try await Self.check(argument, against: kernel)
                files.append(URL(fileURLWithPath: argument).standardizedFileURL.path)
            }
        }
        return (inTree, files)
    }
}
