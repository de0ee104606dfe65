import ArgumentParser
import Foundation
import HostSupport
import LabRuntime
import Matrix
import Scenarios

extension CXLLab {
    struct Suite: ScenarioRunCommand, CacheDirOption {
        static let configuration = CommandConfiguration(
            abstract: "Run a project's own test suite in a lab: `cxllab suite ndctl` runs ndctl's tests against the kernel's test modules.",
            discussion: CommandHelp.discussion("""
                ndctl: the kernel's nfit_test (and cxl_test, where the kernel's config allows it) are built from the source \
                of exactly that kernel (Debian's linux-source package, or the build tree), ndctl's tests from Debian's ndctl \
                source with meson; both go into the image, and each test of the chosen suites runs in the guest with meson's \
                command, environment and timeout. Exit 77 is a skip. --load-first loads modules before the dax drivers, so \
                they come first in the dax bus's driver list (how fsdev_dax V9's bug was found).
                """,
                examples: ["cxllab suite ndctl --tests device-dax --load-first fsdev_dax \\",
                           "    --module images/modules/fsdev_dax:automatch=1",
                           "cxllab suite ndctl topologies/ndctl-suite.yaml --suites dax --junit suite.xml"],
                exit: ExitStatus(success: "every test passed or skipped", failure: "a test failed", bisect: true))
        )
        @OptionGroup var cacheOptions: CacheOptions
        @Argument(help: "The suite: ndctl.") var project: String
        @OptionGroup var guestKernel: KernelOption<BookwormBackports>
        @Argument(help: "The topology file (default: topologies/ndctl-suite.yaml, 8 GiB with 4 GiB of memmap= pmem).") var topology: String?
        @Option(name: .customLong("topology"), help: .hidden) var topologyOldSpelling: String?
        @OptionGroup var guestRecipe: RecipeOption<NdctlSuiteRecipe>
        @OptionGroup var guestModules: ModuleOptions
        @Option(help: "Modules to load, in this order, before the dax drivers (comma-separated names; give their files with --module).")
        var loadFirst: String?
        @Option(help: "Tests to run, comma-separated (default: every test of --suites).") var tests: String?
        @Option(help: "Suites to run, comma-separated: ndctl, dax, cxl.") var suites = NdctlSuiteScenario.allSuites.joined(separator: ",")
        @Option(help: "ndctl's upstream version to build the tests of (default: the newest in Debian's archive).") var ndctlVersion: String?
        @Option(help: "Multiply each test's meson timeout by this, as `meson test --timeout-multiplier` does (under TCG mmap.sh needs 2).")
        var timeoutMultiplier = 1
        @OptionGroup var output: JSONOption
        @OptionGroup var report: JUnitOption
        @Flag(help: ArgumentHelp(ExitStatus.bisectFlagHelp)) var bisect = false

        /// A comma-separated option as names.
        static func names(_ list: String) -> [String] { list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }

        /// The suite and its settings under the rule matrix files follow too; nil when they can run.
        var settingsProblem: String? {
            if topology != nil, topologyOldSpelling != nil {
                return "the topology is given twice: give it once, as the argument after the suite (--topology is its old spelling)"
            }
            guard project == "ndctl" else { return "'\(project)' is not a suite cxllab runs; the one it has is ndctl" }
            return NdctlSuiteScenario.problem(suites: Self.names(suites), loadFirst: loadFirst.map(Self.names) ?? [],
                                              timeoutMultiplier: timeoutMultiplier)
        }

        func inputs(in context: LabContext) -> ScenarioInputs {
            let topologyFile = topology ?? topologyOldSpelling ?? ((try? context.projectFiles.folder("topologies")).map { $0 + "/ndctl-suite.yaml" } ?? "topologies/ndctl-suite.yaml")
            return ScenarioInputs(kernel: guestKernel.kernel, topology: topologyFile, recipe: guestRecipe.recipe, modules: guestModules.module,
                                  drivers: loadFirst.map(Self.names) ?? [], driverOption: "--load-first", driversAreDaxDrivers: false)
        }

        func execute(_ context: LabContext) async throws {
            InterruptTeardown.install(sessions: context.sessions)
            let suiteList = Self.names(suites)
            let testList = tests.map(Self.names)
            let loadList = loadFirst.map(Self.names) ?? []
            let named = topology ?? topologyOldSpelling
            let topologyFile = try named ?? context.projectFiles.folder("topologies") + "/ndctl-suite.yaml"
            let scenario = NdctlSuiteScenario(suites: suiteList, tests: testList, modules: guestModules.module, loadFirst: loadList,
                                              ndctlVersion: ndctlVersion, topologyArgument: named ?? "topologies/ndctl-suite.yaml",
                                              timeoutMultiplier: timeoutMultiplier)
            let cell = ScenarioCell(kernel: guestKernel.kernel, topology: topologyFile, recipe: try context.projectFiles.recipe(named: guestRecipe.recipe), scenario: scenario,
                                    runID: "suite", cellID: String(UUID().uuidString.prefix(6)).lowercased())
            let start = context.now()
            let outcome = await ScenarioCommand.run(cell, context: context)
            let settings = NdctlSuiteScenario.Settings(modules: guestModules.module, suites: suiteList, suiteTests: testList, loadFirst: loadList,
                                                       timeoutMultiplier: timeoutMultiplier)
            try ScenarioCommand.writeJUnit(report.junit, outcome: outcome, plugin: NdctlSuiteScenario.self, settings: settings,
                                           kernel: guestKernel.kernel, topology: named ?? "topologies/ndctl-suite.yaml", variant: "suite",
                                           seconds: context.seconds(since: start), name: "cxllab suite ndctl")
            try ScenarioCommand.finish(outcome, json: output.json, bisect: bisect)
        }
    }
}
