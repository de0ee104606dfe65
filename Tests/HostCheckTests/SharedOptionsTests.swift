import ArgumentParser
@testable import CXLLabCommands
import Foundation
import Matrix
import Testing

/// `--kernel`, `--recipe`, `--module` and `--extra-module` are declared once, in groups every
/// command pulls in: each command keeps its defaults, and describes each option in the same words.
@Suite struct SharedOptionsTests {
    static let backports = "debian:bookworm-backports"

    @Test func scenarioCommandsKeepTheirDefaults() throws {
        let run = try CXLLab.Run.parse(["t.yaml"])
        #expect(run.guestKernel.kernel == Self.backports && run.guestRecipe.recipe == "default" && run.guestModules.module.isEmpty)
        #expect(run.orders == "all" && run.seed == 1 && run.repeat == 1)
        let race = try CXLLab.Race.parse(["t.yaml"])
        #expect(race.guestKernel.kernel == Self.backports && race.guestRecipe.recipe == "default" && race.guestModules.module.isEmpty)
        #expect(race.kinds == "load,coldplug,create" && race.rounds == 40 && race.workers == nil)
        let suite = try CXLLab.Suite.parse(["ndctl"])
        #expect(suite.guestKernel.kernel == Self.backports && suite.guestRecipe.recipe == "ndctl-suite" && suite.guestModules.module.isEmpty)
        #expect(suite.suites == "ndctl,dax,cxl" && suite.timeoutMultiplier == 1 && suite.loadFirst == nil)
    }

    @Test func scenarioCommandsTakeTheGroupsFlags() throws {
        let flags = ["--kernel", "build:/src/linux", "--recipe", "images/mine.yaml",
                     "--module", "images/modules/fsdev_dax:automatch=1", "--module", "/tmp/kmem.ko"]
        let modules = ["images/modules/fsdev_dax:automatch=1", "/tmp/kmem.ko"]
        let run = try CXLLab.Run.parse(["t.yaml"] + flags)
        #expect(run.guestKernel.kernel == "build:/src/linux" && run.guestRecipe.recipe == "images/mine.yaml" && run.guestModules.module == modules)
        let race = try CXLLab.Race.parse(["t.yaml"] + flags + ["--rounds", "10000", "--workers", "64", "--kinds", "coldplug"])
        #expect(race.guestKernel.kernel == "build:/src/linux" && race.guestRecipe.recipe == "images/mine.yaml" && race.guestModules.module == modules)
        #expect(race.rounds == 10_000 && race.workers == 64 && race.kinds == "coldplug")
        let suite = try CXLLab.Suite.parse(["ndctl"] + flags + ["--load-first", "fsdev_dax", "--timeout-multiplier", "2"])
        #expect(suite.guestKernel.kernel == "build:/src/linux" && suite.guestRecipe.recipe == "images/mine.yaml" && suite.guestModules.module == modules)
        #expect(suite.loadFirst == "fsdev_dax" && suite.timeoutMultiplier == 2)
    }

    @Test func labAndImageCommandsKeepTheirDefaults() throws {
        let up = try CXLLab.Up.parse(["t.yaml"])
        #expect(up.guestKernel.kernel == Self.backports && up.guestRecipe.recipe == "default" && up.guestModules.modules.isEmpty && up.shell)
        let upWith = try CXLLab.Up.parse(["t.yaml", "--kernel", "files:/boot/vmlinuz", "--recipe", "ndctl-suite", "--extra-module", "nfit",
                                          "--extra-module", "./mod"])
        #expect(upWith.guestKernel.kernel == "files:/boot/vmlinuz" && upWith.guestRecipe.recipe == "ndctl-suite" && upWith.guestModules.modules == ["nfit", "./mod"])
        // image build has the same default kernel as every other command.
        let defaulted = try CXLLab.Image.Build.parse([])
        #expect(defaulted.guestKernel.kernel == Self.backports && defaulted.guestModules.modules.isEmpty)
        let build = try CXLLab.Image.Build.parse(["--kernel", "debian:6.1.0-57-amd64", "--extra-module", "nfit"])
        #expect(build.guestKernel.kernel == "debian:6.1.0-57-amd64" && build.guestRecipe.recipe == "default" && build.guestModules.modules == ["nfit"])
        let imageBench = try CXLLab.Image.Bench.parse([])
        #expect(imageBench.guestKernel.kernel == Self.backports && imageBench.guestRecipe.recipe == "default" && imageBench.repeats == 21)
        let bench = try CXLLab.Bench.parse([])
        #expect(bench.guestKernel.kernel == Self.backports && bench.runs == 3)
        #expect(try CXLLab.Kernel.Fetch.parse(["debian:bookworm"]).requested.kernel == "debian:bookworm")
        #expect(try CXLLab.Kernel.Remove.parse(["build:/src/linux"]).requested.kernel == "build:/src/linux")
    }

    /// Every command under `cxllab`, subcommands' own included.
    static func commands(under command: ParsableCommand.Type = CXLLab.self) -> [ParsableCommand.Type] {
        command.configuration.subcommands.flatMap { [$0] + commands(under: $0) }
    }

    /// The help line of `option` in each command that has it, its default left out.
    static func helpLines(of option: String) -> [String: String] {
        var lines: [String: String] = [:]
        for command in commands() {
            let help = CXLLab.helpMessage(for: command, columns: 10_000)
            guard let line = help.split(separator: "\n").first(where: { $0.trimmingCharacters(in: .whitespaces).hasPrefix(option + " ") }) else { continue }
            var text = line.trimmingCharacters(in: .whitespaces).dropFirst(option.count).trimmingCharacters(in: .whitespaces)
            if let range = text.range(of: " (default: ") { text = String(text[..<range.lowerBound]) }
            lines[command._commandName] = text
        }
        return lines
    }

    @Test func kernelIsDescribedInOneWayEverywhere() {
        let lines = Self.helpLines(of: "--kernel <kernel>")
        #expect(Set(lines.keys) == ["run", "race", "suite", "up", "build", "bench"], "\(lines.keys.sorted())")
        #expect(Set(lines.values) == [KernelForms.help], "\(lines)")
        let recipes = Self.helpLines(of: "--recipe <recipe>")
        #expect(Set(recipes.keys) == ["run", "race", "suite", "up", "build", "bench"], "\(recipes.keys.sorted())")
        #expect(Set(recipes.values).count == 1, "\(recipes)")
        // `--module` means one thing, in place of the module of its name; a module added to
        // the image is `--extra-module` (its old spelling `--module` hidden from the help).
        let modules = Self.helpLines(of: "--module <module>")
        #expect(Set(modules.keys) == ["run", "race", "suite"], "\(modules.keys.sorted())")
        #expect(Set(modules.values) == [ModuleHelp.replaces], "\(modules)")
        let extras = Self.helpLines(of: "--extra-module <module>")
        #expect(Set(extras.keys) == ["up", "build"], "\(extras.keys.sorted())")
        #expect(Set(extras.values) == [ModuleHelp.extra], "\(extras)")
    }

    @Test func defaultsShowInTheHelp() {
        #expect(CXLLab.helpMessage(for: CXLLab.Run.self, columns: 10_000).contains("(default: \(Self.backports))"))
        #expect(CXLLab.helpMessage(for: CXLLab.Suite.self, columns: 10_000).contains("(default: ndctl-suite)"))
        let build = CXLLab.helpMessage(for: CXLLab.Image.Build.self, columns: 10_000)
        #expect(build.contains("[--kernel <kernel>]") && build.contains("(default: \(Self.backports))"))
    }

    /// A setting the command line refuses, and the same setting in a matrix file's scenario.
    struct Refusal: Sendable, CustomTestStringConvertible {
        let arguments: [String]
        let scenario: String
        var testDescription: String { arguments.joined(separator: " ") }
    }

    static let refusals: [Refusal] = [
        Refusal(arguments: ["race", "t.yaml", "--rounds", "0"], scenario: "{name: race, rounds: 0}"),
        Refusal(arguments: ["race", "t.yaml", "--rounds", "10001"], scenario: "{name: race, rounds: 10001}"),
        Refusal(arguments: ["race", "t.yaml", "--workers", "65"], scenario: "{name: race, workers: 65}"),
        Refusal(arguments: ["race", "t.yaml", "--workers", "0"], scenario: "{name: race, workers: 0}"),
        Refusal(arguments: ["race", "t.yaml", "--kinds", "load,hotplug"], scenario: "{name: race, kinds: [load, hotplug]}"),
        Refusal(arguments: ["race", "t.yaml", "--drivers", "kmem,kmem"], scenario: "{name: race, drivers: [kmem, kmem]}"),
        Refusal(arguments: ["run", "t.yaml", "--orders", "zero"], scenario: "{name: driver-order, orders: zero}"),
        Refusal(arguments: ["run", "t.yaml", "--orders", "kmem,device_dax"], scenario: "{name: driver-order, orders: 'kmem,device_dax'}"),
        Refusal(arguments: ["suite", "ndctl", "--suites", "nvdimm"], scenario: "{name: ndctl-suite, suites: [nvdimm]}"),
        Refusal(arguments: ["suite", "ndctl", "--load-first", "x/fsdev_dax.ko"], scenario: "{name: ndctl-suite, load_first: [x/fsdev_dax.ko]}"),
        Refusal(arguments: ["suite", "ndctl", "--timeout-multiplier", "101"], scenario: "{name: ndctl-suite, timeout_multiplier: 101}"),
    ]

    @Test(arguments: refusals) func commandAndMatrixRefuseInTheSameWords(_ refusal: Refusal) throws {
        let commandError = try #require(throws: (any Error).self) { try CXLLab.parseAsRoot(refusal.arguments) }
        let words = CXLLab.message(for: commandError)
        #expect(!words.isEmpty)
        #expect(CXLLab.exitCode(for: commandError) == .validationFailure, "a usage error, with the command's usage line")

        let file = NSTemporaryDirectory() + "refusal-\(UUID().uuidString.prefix(6)).yaml"
        defer { try? FileManager.default.removeItem(atPath: file) }
        try "name: s\nkernels: [debian:bookworm]\ntopologies: [t.yaml]\nscenarios: [\(refusal.scenario)]\n".write(toFile: file, atomically: true, encoding: .utf8)
        let matrixError = try #require(throws: MatrixError.self) { try MatrixFile.load(path: file) }
        let scenarioName = refusal.scenario.dropFirst("{name: ".count).prefix { $0 != "," }
        // At the setting's place on the scenario entry's line (the fourth of the file).
        #expect(matrixError.diagnostics.count == 1)
        #expect(matrixError.message.hasPrefix("\(file):4:") && matrixError.message.hasSuffix(": scenario \(scenarioName): \(words)"), "\(matrixError)")
    }

    /// Under `git bisect run` a refused setting is still the user's mistake, the same at every
    /// commit: exit 2, not 125 (with which `git bisect` skipped every commit and named none).
    @Test func aRefusalUnderBisectIsAnInputError() throws {
        for arguments in [["race", "t.yaml", "--rounds", "0", "--bisect"], ["run", "t.yaml", "--orders", "zero", "--bisect"],
                          ["suite", "pytest", "--bisect"]] {
            let error = try #require(throws: (any Error).self) { try CXLLab.parseAsRoot(arguments) }
            #expect(CXLLab.exitCode(for: error) == ExitCode(2), "\(arguments)")
        }
    }
}

/// `cxllab matrix FILE` refuses a file it cannot use with exit status 2 (input error, as a
/// cell that could not run; 1 is a deviation, 64 argument-parser's usage error), before it
/// opens the store or fetches a kernel: the load is the command's first step.
@Suite struct MatrixCommandInputTests {
    @Test func aBrokenOrMissingMatrixFileExitsTwo() throws {
        let file = NSTemporaryDirectory() + "broken-\(UUID().uuidString.prefix(6)).yaml"
        defer { try? FileManager.default.removeItem(atPath: file) }
        try "name: b\nkernels: [debain:trixie]\ntopologies: [t.yaml]\nscenarios: [{name: driver-order, ordrs: all}]\n"
            .write(toFile: file, atomically: true, encoding: .utf8)
        for path in [file, file + ".missing"] {
            let error = try #require(throws: ExitCode.self) { try MatrixCommandSupport.load(path, projectRoots: []) }
            #expect(error == ExitCode(2))
        }
        let command = try #require(try CXLLab.parseAsRoot(["matrix", file]) as? CXLLab.Matrix)
        #expect(command.file == file, "the file is an argument, so argument parsing (64) accepts it and the load refuses it (2)")
    }
}
