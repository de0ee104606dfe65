import ArgumentParser
import Foundation
import HostSupport
import LabRuntime
import Matrix
import Scenarios

extension CXLLab {
    struct Run: ScenarioRunCommand, CacheDirOption {
        static let configuration = CommandConfiguration(
            abstract: "Run the driver-order scenario in one lab: every order of the dax drivers, every way to re-probe.",
            discussion: CommandHelp.discussion(
                examples: ["cxllab run topologies/nvdimm-single.yaml --kernel debian:bookworm-backports \\",
                           "    --module images/modules/fsdev_dax:automatch=1",
                           "cxllab run topologies/cxl-pmem-ram.yaml --orders 2 --junit run.xml"],
                exit: ExitStatus(success: "every invariant held", failure: "an invariant was violated", bisect: true))
        )
        @OptionGroup var cacheOptions: CacheOptions
        @Argument(help: "The topology file.") var topology: String
        @OptionGroup var guestKernel: KernelOption<BookwormBackports>
        @OptionGroup var guestRecipe: RecipeOption<DefaultRecipe>
        @Option(help: "The dax drivers to order, comma-separated (default: device_dax,kmem,fsdev_dax).") var drivers: String?
        @OptionGroup var guestModules: ModuleOptions
        @Option(help: "all, how many orders to sample, or one order of the drivers (fsdev_dax,device_dax,kmem: how `cxllab race` replays a failing round); the order udev loads them in (modprobe $MODALIAS) runs too.") var orders = "all"
        @Option(help: "The seed for sampled orders.") var seed: UInt64 = 1
        @Option(help: "Run the whole scenario this many times (1 to 1000) and report the failure rate.") var `repeat` = 1
        @OptionGroup var output: JSONOption
        @OptionGroup var report: JUnitOption
        @Flag(help: ArgumentHelp(ExitStatus.bisectFlagHelp))
        var bisect = false
        @Option(help: ArgumentHelp("Write the session's agent requests and replies here (JSON lines), for tests that replay it without a VM.",
                                   valueName: "FILE")) var transcript: String?

        /// `--drivers` as a list; nil: the scenario's default drivers.
        var driverList: [String]? { drivers.map { $0.split(separator: ",").map(String.init) } }

        /// `--orders` and `--repeat` under the rules matrix files follow too; nil when it can run.
        var settingsProblem: String? {
            DriverOrders.problem(orders: orders, drivers: driverList ?? DriverOrderScenario.defaultDrivers)
                ?? DriverOrderScenario.repeatProblem(`repeat`, spelled: "--repeat")
        }

        func inputs(in context: LabContext) -> ScenarioInputs {
            ScenarioInputs(kernel: guestKernel.kernel, topology: topology, recipe: guestRecipe.recipe, modules: guestModules.module,
                           drivers: driverList ?? [])
        }

        func execute(_ context: LabContext) async throws {
            InterruptTeardown.install(sessions: context.sessions)
            // validate() has refused every --orders OrderSelection cannot read.
            guard let selection = OrderSelection(argument: orders) else { throw ValidationError(settingsProblem ?? "--orders '\(orders)' cannot be read") }
            var cell = ScenarioCell(
                kernel: guestKernel.kernel, topology: topology, recipe: try context.projectFiles.recipe(named: guestRecipe.recipe),
                scenario: DriverOrderScenario(drivers: driverList, modules: guestModules.module.map(ModuleSpec.init(parsing:)),
                                              standInSource: try context.projectFiles.folder("images/modules/fsdev_dax"), selection: selection,
                                              seed: seed, repeats: `repeat`),
                runID: "run", cellID: String(UUID().uuidString.prefix(6)).lowercased()
            )
            let recorder = transcript.map { _ in SessionTranscript() }
            cell.transcript = recorder
            let start = context.now()
            let outcome = await ScenarioCommand.run(cell, context: context)
            if let transcript, let recorder {
                try recorder.jsonLines.write(toFile: transcript, atomically: true, encoding: .utf8)
            }
            let settings = DriverOrderScenario.Settings(drivers: driverList ?? DriverOrderScenario.defaultDrivers, modules: guestModules.module,
                                                        orders: orders, seed: seed, repeats: `repeat`)
            try ScenarioCommand.writeJUnit(report.junit, outcome: outcome, plugin: DriverOrderScenario.self, settings: settings,
                                           kernel: guestKernel.kernel, topology: topology, variant: "run", seconds: context.seconds(since: start),
                                           name: "cxllab run")
            try ScenarioCommand.finish(outcome, json: output.json, bisect: bisect)
        }
    }
}
