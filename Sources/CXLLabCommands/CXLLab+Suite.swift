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
            discussion: """
                ndctl: the kernel's nfit_test (and cxl_test, where the kernel's config allows it) are built from the source \
                of exactly that kernel (Debian's linux-source package, or the build tree), ndctl's tests from Debian's ndctl \
                source with meson; both go into the image, and each test of the chosen suites runs in the guest with meson's \
                command, environment and timeout. Exit 77 is a skip. --load-first loads modules before the dax drivers, so \
                they come first in the dax bus's driver list (how fsdev_dax V9's bug was found).
                Exit status: 0 when every test passed or skipped, 1 when one failed, 2 when the suite could not run \
                (125 with --bisect). Inputs that cannot be used exit 2 before anything is fetched or built, with --bisect too.
                Example: cxllab suite ndctl --kernel debian:bookworm-backports --tests device-dax \\
                         --module images/modules/fsdev_dax:automatch=1 --load-first fsdev_dax
                """
        )
        @OptionGroup var cacheOptions: CacheOptions
        @Argument(help: "The suite: ndctl.") var project: String
        @OptionGroup var guestKernel: KernelOption<BookwormBackports>
        @Option(help: "The topology (default: topologies/ndctl-suite.yaml, 8 GiB with 4 GiB of memmap= pmem).") var topology: String?
        @OptionGroup var guestRecipe: RecipeOption<NdctlSuiteRecipe>
        @OptionGroup var guestModules: ModuleOptions<ReplacesModuleOfItsName>
        @Option(help: "Modules to load, in this order, before the dax drivers (comma-separated names; give their files with --module).")
        var loadFirst: String?
        @Option(help: "Tests to run, comma-separated (default: every test of --suites).") var tests: String?
        @Option(help: "Suites to run, comma-separated: ndctl, dax, cxl.") var suites = NdctlSuiteScenario.allSuites.joined(separator: ",")
        @Option(help: "ndctl's upstream version to build the tests of (default: the newest in Debian's archive).") var ndctlVersion: String?
        @Option(help: "Multiply each test's meson timeout by this, as `meson test --timeout-multiplier` does (under TCG mmap.sh needs 2).")
        var timeoutMultiplier = 1
        @Flag(help: "Print the report as JSON.") var json = false
        @Option(help: "Write JUnit XML here.") var junit: String?
        @Flag(help: "For `git bisect run`: exit 125 (skip this commit) instead of 2 when the suite could not run (not for unusable inputs).") var bisect = false

        /// A comma-separated option as names.
        static func names(_ list: String) -> [String] { list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }

        /// The suite and its settings under the rule matrix files follow too; nil when they can run.
        var settingsProblem: String? {
            guard project == "ndctl" else { return "'\(project)' is not a suite cxllab runs; the one it has is ndctl" }
            return NdctlSuiteScenario.problem(suites: Self.names(suites), loadFirst: loadFirst.map(Self.names) ?? [],
                                              timeoutMultiplier: timeoutMultiplier)
        }

        func inputs(in context: LabContext) -> ScenarioInputs {
            let topologyFile = topology ?? ((try? context.projectFiles.folder("topologies")).map { $0 + "/ndctl-suite.yaml" } ?? "topologies/ndctl-suite.yaml")
            return ScenarioInputs(kernel: guestKernel.kernel, topology: topologyFile, recipe: guestRecipe.recipe, modules: guestModules.module,
                                  drivers: loadFirst.map(Self.names) ?? [], driverOption: "--load-first", driversAreDaxDrivers: false)
        }

        func execute(_ context: LabContext) async throws {
            InterruptTeardown.install(sessions: context.sessions)
            let suiteList = Self.names(suites)
            let testList = tests.map(Self.names)
            let loadList = loadFirst.map(Self.names) ?? []
            let topologyFile = try topology ?? context.projectFiles.folder("topologies") + "/ndctl-suite.yaml"
            let scenario = NdctlSuiteScenario(suites: suiteList, tests: testList, modules: guestModules.module, loadFirst: loadList,
                                              ndctlVersion: ndctlVersion, topologyArgument: topology ?? "topologies/ndctl-suite.yaml",
                                              timeoutMultiplier: timeoutMultiplier)
            let cell = ScenarioCell(kernel: guestKernel.kernel, topology: topologyFile, recipe: try context.projectFiles.recipe(named: guestRecipe.recipe), scenario: scenario,
                                    runID: "suite", cellID: String(UUID().uuidString.prefix(6)).lowercased())
            let start = context.now()
            let outcome = await ScenarioCommand.run(cell, context: context)
            if let junit, let pinned = outcome.kernel {
                let settings = NdctlSuiteScenario.Settings(modules: guestModules.module, suites: suiteList, suiteTests: testList, loadFirst: loadList,
                                                           timeoutMultiplier: timeoutMultiplier)
                let matrixCell = MatrixCell(NdctlSuiteScenario.self, kernel: guestKernel.kernel, pinned: pinned,
                                            topology: topology ?? "topologies/ndctl-suite.yaml", variant: "suite", settings: settings)
                let result = CellResult(cell: matrixCell, outcome: outcome, seconds: context.seconds(since: start), finished: Date())
                try JUnitReport.xml([result], name: "cxllab suite ndctl").write(toFile: junit, atomically: true, encoding: .utf8)
            }
            try ScenarioCommand.finish(outcome, json: json, bisect: bisect)
        }
    }
}
