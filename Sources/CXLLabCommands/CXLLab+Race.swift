import ArgumentParser
import Foundation
import HostSupport
import LabRuntime
import Matrix
import Scenarios

extension CXLLab {
    struct Race: ScenarioRunCommand, CacheDirOption {
        static let configuration = CommandConfiguration(
            abstract: "Race driver registration against device probes in one lab, round after round, and report failure rates.",
            discussion: CommandHelp.discussion("""
                Each round starts with the devices unbound and the drivers unloaded, then releases its operations at once in \
                the guest, each after a delay drawn from the seed: 'load' runs one modprobe per driver, 'coldplug' one \
                modprobe $MODALIAS per dax device (udev's way), 'create' re-enables the namespaces while the drivers load. \
                The guest gets two vCPUs at least. The kernel's trace gives the order the drivers registered in; a failing \
                order is printed as the `cxllab run --orders` that replays it.
                """,
                examples: ["cxllab race topologies/nvdimm-single.yaml --rounds 40 \\",
                           "    --module images/modules/fsdev_dax:automatch=1 --junit race.xml"],
                exit: ExitStatus(success: "every invariant held in every round",
                                 failure: "one was violated, or a round could not be judged", bisect: true))
        )
        @OptionGroup var cacheOptions: CacheOptions
        @Argument(help: "The topology file.") var topology: String
        @OptionGroup var guestKernel: KernelOption<BookwormBackports>
        @OptionGroup var guestRecipe: RecipeOption<DefaultRecipe>
        @Option(help: "The dax drivers that race, comma-separated (default: device_dax,kmem,fsdev_dax).") var drivers: String?
        @OptionGroup var guestModules: ModuleOptions
        @Option(help: "Race kinds, comma-separated: load, coldplug, create.") var kinds = "load,coldplug,create"
        @Option(help: "Rounds of each kind.") var rounds = RaceScenario.defaultRounds
        @Option(help: "The seed the delays are drawn from; the same seed gives the same delays.") var seed: UInt64 = 1
        @Option(help: "Coldplug's modprobes at once (default: one per dax device, as udev runs a worker per event).") var workers: Int?
        @OptionGroup var output: JSONOption
        @OptionGroup var report: JUnitOption
        @Flag(help: ArgumentHelp(ExitStatus.bisectFlagHelp))
        var bisect = false

        /// `--drivers` as a list; nil: the scenario's default drivers.
        var driverList: [String]? { drivers.map { $0.split(separator: ",").map(String.init) } }

        /// The race's settings under the rule matrix files follow too; nil when they can run.
        var settingsProblem: String? {
            RaceScenario.problem(kinds: kinds.split(separator: ",").map(String.init), rounds: rounds, workers: workers,
                                 drivers: driverList ?? DriverOrderScenario.defaultDrivers)
        }

        func inputs(in context: LabContext) -> ScenarioInputs {
            ScenarioInputs(kernel: guestKernel.kernel, topology: topology, recipe: guestRecipe.recipe, modules: guestModules.module,
                           drivers: driverList ?? [])
        }

        func execute(_ context: LabContext) async throws {
            InterruptTeardown.install(sessions: context.sessions)
            // validate() has refused every list RaceKind cannot read; this names the kinds.
            guard let kinds = RaceKind.parse(list: kinds) else { throw ValidationError(settingsProblem ?? "--kinds '\(kinds)' cannot be read") }
            let scenario = RaceScenario(drivers: driverList, modules: guestModules.module, standInSource: try context.projectFiles.folder("images/modules/fsdev_dax"),
                                        kinds: kinds, rounds: rounds, seed: seed, workers: workers)
            let cell = ScenarioCell(kernel: guestKernel.kernel, topology: topology, recipe: try context.projectFiles.recipe(named: guestRecipe.recipe), scenario: scenario,
                                    runID: "race", cellID: String(UUID().uuidString.prefix(6)).lowercased())
            let start = context.now()
            let outcome = await ScenarioCommand.run(cell, context: context)
            let settings = RaceScenario.Settings(drivers: driverList ?? DriverOrderScenario.defaultDrivers, modules: guestModules.module, seed: seed,
                                                 repeats: rounds, kinds: kinds.map(\.rawValue), workers: workers)
            try ScenarioCommand.writeJUnit(report.junit, outcome: outcome, plugin: RaceScenario.self, settings: settings,
                                           kernel: guestKernel.kernel, topology: topology, variant: "race", seconds: context.seconds(since: start),
                                           name: "cxllab race")
            try ScenarioCommand.finish(outcome, json: output.json, bisect: bisect)
        }
    }
}
