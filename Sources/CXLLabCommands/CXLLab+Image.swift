import ArgumentParser
import Bench
import Foundation
import GuestImage
import HostSupport
import LabRuntime
import Kernels
import TestBuilds

extension CXLLab {
    struct Image: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Build guest images (initramfs) for a kernel.",
            discussion: CommandHelp.discussion(exit: ExitStatus(success: "done", failure: nil)),
            subcommands: [Build.self, Bench.self]
        )
    }
}

/// Where the project's recipes live: $CXLLAB_HOME (`home`, from the context's settings), or the
/// package the executable was built in.
struct ProjectFiles {
    let home: String?

    func recipe(named name: String) throws -> ImageRecipe {
        if name.hasSuffix(".yaml") || name.contains("/") { return try ImageRecipe.load(path: name) }
        for folder in searchFolders() {
            let path = folder + "/images/\(name).yaml"
            if FileManager.default.fileExists(atPath: path) { return try ImageRecipe.load(path: path) }
        }
        throw ValidationError("no image recipe '\(name)': looked for images/\(name).yaml in \(describeSearch())")
    }

    /// The project folder that holds images/ and topologies/ (where relative cell paths start).
    func root() throws -> String {
        let marker = "images/modules/fsdev_dax"
        let folder = try self.folder(marker)
        return String(folder.dropLast(marker.count + 1))
    }

    /// A folder of the project (images/modules/..., topologies/...).
    func folder(_ relative: String) throws -> String {
        for root in searchFolders() where FileManager.default.fileExists(atPath: root + "/" + relative) {
            return root + "/" + relative
        }
        throw ValidationError("cannot find \(relative) in \(describeSearch()); set CXLLAB_HOME to cxllab's source tree")
    }

    /// A file the user named: as given (from the working folder), else under cxllab's own
    /// folder (`topologies/nvdimm-single.yaml` from anywhere); an error naming it otherwise.
    func inputFile(_ path: String, role: String, fix: String) throws -> String {
        if path.hasPrefix("/") || FileManager.default.fileExists(atPath: path) {
            if let problem = InputFile.problem(path, role: role, fix: fix) { throw problem }
            return path
        }
        if let found = try? folder(path) { return found }
        throw InputFileError(path: path, role: role,
                             reason: "no such file in \(FileManager.default.currentDirectoryPath) nor in cxllab's folder (\(describeSearch()))",
                             fix: fix)
    }

    /// $CXLLAB_HOME, then the source tree the running executable was built in (found from
    /// /proc/self/exe, so cxllab finds its recipes and topologies when run from elsewhere);
    /// each only when this user owns it and its images/ and nobody else can write them:
    /// cxllab builds the stand-in module's Makefile from there, as root. Never the working
    /// folder or its ancestors.
    func searchFolders() -> [String] {
        Self.searchFolders(home: home, executable: TrustedProject.runningExecutable)
    }

    static func searchFolders(home: String?, executable: String?) -> [String] {
        TrustedProject.roots(home: home, executable: executable).roots
    }

    /// The folders searched and the ones refused, for error messages.
    func describeSearch() -> String {
        let found = TrustedProject.roots(home: home, executable: TrustedProject.runningExecutable)
        var words = found.roots.isEmpty ? "no project folder" : found.roots.joined(separator: ", ")
        if !found.refused.isEmpty { words += "; refused: " + found.refused.joined(separator: "; ") }
        return words
    }
}

extension LabContext {
    /// The project's recipes, topologies and modules, as this context's settings find them.
    var projectFiles: ProjectFiles { ProjectFiles(home: settings.projectHome) }
}

extension CXLLab.Image {
    struct Build: ContextCommand, CacheDirOption {
        static let configuration = CommandConfiguration(
            abstract: "Build (or find in the cache) an image and say what went in.",
            discussion: CommandHelp.discussion(
                examples: ["cxllab image build --feature nvdimm --feature cxl --extra-module nfit"],
                exit: ExitStatus(success: "the image is built or found", failure: nil))
        )
        @OptionGroup var cacheOptions: CacheOptions
        @OptionGroup var guestKernel: KernelOption<BookwormBackports>
        @OptionGroup var guestRecipe: RecipeOption<DefaultRecipe>
        @Option(help: "Module groups of the recipe to add (nvdimm, cxl, legacy-pmem, fsdev).") var feature: [String] = []
        @OptionGroup var guestModules: ExtraModuleOptions
        @OptionGroup var output: JSONOption

        func run(in context: LabContext) async throws {
            let terminal = Terminal.standardError
            let reference = try KernelReference(parsing: guestKernel.kernel)
            let store = try KernelStore(cache: context.cache)
            let found = try await store.kernel(reference) { terminal.status($0) }
            let features = Set(feature)
            try ConfigCheck.require(found, features: features, terminal: terminal)
            let modules = try await ModuleBuilder(cache: context.cache).resolve(guestModules.modules, for: found) { terminal.status($0) }
            let request = ImageRequest(
                recipe: try context.projectFiles.recipe(named: guestRecipe.recipe), kernel: found, features: features,
                extraModules: modules.inTree, userModules: modules.files
            )
            let clock = ContinuousClock()
            let start = clock.now
            let image = try await ImageBuilder(cache: context.cache).build(request) { terminal.status($0) }
            let seconds = (clock.now - start).seconds
            terminal.clearStatus()
            if output.json { print(try JSONOutput.encode(image)); return }
            print("""
                image     \(image.path)
                kernel    \(image.kernelRelease)
                recipe    \(image.recipe)
                size      \(String(format: "%.1f MiB", Double(image.size) / 1_048_576))
                built     \(image.cacheHit ? "no, found in the cache" : "yes") in \(String(format: "%.3f s", seconds))
                programs  \(image.programs.joined(separator: " "))
                modules   \(image.modules.joined(separator: " "))
                """)
            if !image.absentModules.isEmpty { print("absent    \(image.absentModules.joined(separator: " ")) (optional, not in this kernel)") }
            if let programs = image.absentPrograms { print("absent    \(programs.joined(separator: " ")) (optional, not on this host)") }
        }
    }
}

extension CXLLab.Image {
    struct Bench: ContextCommand, CacheDirOption {
        static let configuration = CommandConfiguration(
            abstract: "Measure cold and warm builds of an image and its size.",
            discussion: CommandHelp.discussion(
                """
                Cold: the image, the kernel's decompressed modules and the digest memo removed first. Warm: the median of \
                repeated builds that hit the cache.
                """, exit: ExitStatus(success: "measured", failure: nil))
        )
        @OptionGroup var cacheOptions: CacheOptions
        @OptionGroup var guestKernel: KernelOption<BookwormBackports>
        @OptionGroup var guestRecipe: RecipeOption<DefaultRecipe>
        @Option(help: "Module groups.") var feature: [String] = ["nvdimm", "cxl"]
        @Option(help: "Warm builds to take the median of.") var repeats = 21
        @OptionGroup var output: JSONOption

        func run(in context: LabContext) async throws {
            let found = try await KernelStore(cache: context.cache).kernel(try KernelReference(parsing: guestKernel.kernel))
            let figures = try await ImageBenchmark.measure(cache: context.cache, kernel: found, recipe: try context.projectFiles.recipe(named: guestRecipe.recipe),
                                                           features: Set(feature), repeats: repeats)
            if output.json { print(try JSONOutput.encode(figures)); return }
            print("""
                image build, \(figures.kernel), recipe \(figures.recipe), features \(feature.joined(separator: ","))
                  cold         \(String(format: "%8.3f s", figures.coldSeconds))
                  warm median  \(String(format: "%8.3f s", figures.warmMedianSeconds))  (\(figures.warmRuns) runs, min \(String(format: "%.3f s", figures.warmMinimumSeconds)))
                  size         \(String(format: "%8.1f MiB", Double(figures.sizeBytes) / 1_048_576))  (\(figures.files) programs, libraries and modules)
                """)
        }
    }
}

/// The kernel config check that runs before any image is built or guest booted.
enum ConfigCheck {
    struct Blocked: Error, CustomStringConvertible {
        let kernel: String
        let missing: [ConfigRequirement]
        var description: String {
            "kernel \(kernel) lacks what this lab needs:\n" + missing.map { "  CONFIG_\($0.option) (\($0.feature)): \($0.why)" }.joined(separator: "\n")
        }
    }

    /// Throws for missing options that block the lab; prints those that only limit it.
    static func require(_ kernel: Kernels.Kernel, features: Set<String>, terminal: Terminal) throws {
        guard let config = KernelConfig(contentsOf: kernel.configPath) else {
            terminal.line("note: \(kernel.origin) has no config; its options cannot be checked before boot")
            return
        }
        let missing = KernelRequirements.missing(in: config, features: features, release: kernel.release)
        for limit in missing where limit.effect == .limits {
            terminal.line("note: \(kernel.release) lacks CONFIG_\(limit.option): \(limit.why)")
        }
        let blocking = missing.filter { $0.effect == .blocks }
        if !blocking.isEmpty { throw Blocked(kernel: kernel.release, missing: blocking) }
    }
}
