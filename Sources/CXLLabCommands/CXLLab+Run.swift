import ArgumentParser
import Foundation
import HostSupport
import LabRuntime
import Scenarios

extension CXLLab {
    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the driver-order scenario in one lab: every order of the dax drivers, every way to re-probe.",
            discussion: """
                Exit status: 0 when every invariant held, 1 when one was violated, 2 when the run could not be done (125 with --bisect, and for any error: git bisect then skips the commit).
                Example: cxllab run topologies/nvdimm-single.yaml --kernel debian:bookworm-backports \\
                         --module images/modules/fsdev_dax:automatch=1
                """
        )
        @OptionGroup var cacheOptions: CacheOptions
        @Argument(help: "The topology file.") var topology: String
        @Option(help: "The kernel.") var kernel = "debian:bookworm-backports"
        @Option(help: "The image recipe.") var recipe = "default"
        @Option(help: "The dax drivers to order, comma-separated (default: device_dax,kmem,fsdev_dax).") var drivers: String?
        @Option(help: "A module to use in place of the driver of its name: a .ko or a source folder, with parameters after ':' (PATH:automatch=1). Repeatable.")
        var module: [String] = []
        @Option(help: "all, how many orders to sample, or one order of the drivers (fsdev_dax,device_dax,kmem: how `cxllab race` replays a failing round); the order udev loads them in (modprobe $MODALIAS) runs too.") var orders = "all"
        @Option(help: "The seed for sampled orders.") var seed: UInt64 = 1
        @Option(help: "Run the whole scenario this many times and report the failure rate.") var `repeat` = 1
        @Flag(help: "Print the report as JSON.") var json = false
        @Flag(help: "For `git bisect run`: exit 125 (skip this commit) instead of 2 when the run is not applicable or could not be done.")
        var bisect = false
        @Option(help: ArgumentHelp("Write the session's agent requests and replies here (JSON lines), for tests that replay it without a VM.",
                                   valueName: "FILE")) var transcript: String?

        func run() async throws {
            try await ScenarioCommand.bisectable(bisect) { try await execute() }
        }

        func execute() async throws {
            InterruptTeardown.install()
            let terminal = Terminal.standardError
            guard let selection = OrderSelection(argument: orders) else { throw ValidationError("--orders takes 'all' or a positive number") }
            if let problem = DriverOrders.problem(orders: orders, drivers: drivers.map { $0.split(separator: ",").map(String.init) } ?? DriverOrderScenario.defaultDrivers) {
                throw ValidationError(problem)
            }
            var cell = ScenarioCell(
                kernel: kernel, topology: topology, recipe: try ProjectFiles.recipe(named: recipe),
                scenario: DriverOrderScenario(drivers: drivers.map { $0.split(separator: ",").map(String.init) }, modules: module.map(ModuleSpec.init(parsing:)),
                                              standInSource: try ProjectFiles.folder("images/modules/fsdev_dax"), selection: selection,
                                              seed: seed, repeats: `repeat`),
                runID: "run", cellID: String(UUID().uuidString.prefix(6)).lowercased()
            )
            let recorder = transcript.map { _ in SessionTranscript() }
            cell.transcript = recorder
            let outcome = await cell.run(cache: cacheOptions.cache) { terminal.status($0) }
            terminal.clearStatus()
            if let transcript, let recorder {
                try recorder.jsonLines.write(toFile: transcript, atomically: true, encoding: .utf8)
            }
            try ScenarioCommand.finish(outcome, json: json, bisect: bisect)
        }
    }
}
