import ArgumentParser
import Foundation
import GuestImage
import HostSupport
import Lab
import Libvirt

extension CXLLab {
    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the driver-order scenario in one lab: every order of the dax drivers, every way to re-probe.",
            discussion: """
                Exit status: 0 when every invariant held, 1 when one was violated, 2 when the run could not be done.
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
        @Option(help: "all, or how many orders to sample.") var orders = "all"
        @Option(help: "The seed for sampled orders.") var seed: UInt64 = 1
        @Option(help: "Run the whole scenario this many times and report the failure rate.") var `repeat` = 1
        @Flag(help: "Print the report as JSON.") var json = false

        func run() async throws {
            InterruptTeardown.install()
            let terminal = Terminal.standardError
            guard let selection = OrderSelection(argument: orders) else { throw ValidationError("--orders takes 'all' or a positive number") }
            let cache = cacheOptions.cache
            let reference = try KernelReference(parsing: kernel)
            let store = try KernelStore(cache: cache)
            let found = try await store.kernel(reference) { terminal.status($0) }
            let standIn = try ProjectFiles.folder("images/modules/fsdev_dax")
            let plan = try await DriverOrderSetup(cache: cache, standInSource: standIn)
                .plan(kernel: found, specs: module.map(ModuleSpec.init(parsing:))) { terminal.status($0) }
            var driverSet = drivers.map { $0.split(separator: ",").map(String.init) } ?? ["device_dax", "kmem", "fsdev_dax"]
            if case .absent = plan.fsdev { driverSet.removeAll { $0 == DriverOrderScenario.fsdev } }

            var report = DriverOrderReport(kernel: found.release, topology: topology, drivers: driverSet, fsdev: plan.fsdev, seed: seed)
            let prepared: PreparedLab
            do {
                prepared = try await LabPreparation(cache: cache).prepare(
                    topologyFile: topology, kernel: reference, recipe: try ProjectFiles.recipe(named: recipe),
                    extraFeatures: plan.features, modules: plan.modules, progress: { terminal.status($0) }
                )
            } catch {
                terminal.clearStatus()
                report.error = "\(error)"
                try finish(report, accelerator: "n/a")
                return
            }
            report.topology = prepared.topology.name
            let scenario = DriverOrderScenario(drivers: driverSet, parameters: plan.parameters, selection: selection, seed: seed, repeats: `repeat`)
            let name = "run-\(prepared.topology.name)-\(UUID().uuidString.prefix(6).lowercased())"
            let accelerator = prepared.accelerator.accelerator.rawValue.uppercased()
            do {
                let session = try await LabSession.start(
                    LabRequest(name: name, topology: prepared.topology, kernel: prepared.kernel, image: prepared.image,
                               domainType: prepared.accelerator.accelerator == .kvm ? .kvm : .qemu, runID: "run", cellID: name),
                    libvirt: try Connection(), progress: { terminal.status($0) }
                )
                await scenario.run(session: session, features: prepared.features, report: &report) { terminal.status($0) }
                await session.teardown()
            } catch {
                report.error = "\(error)"
            }
            terminal.clearStatus()
            try finish(report, accelerator: accelerator)
        }

        func finish(_ report: DriverOrderReport, accelerator: String) throws {
            var report = report
            report.verdictText = report.verdict
            if json {
                print(try JSONOutput.encode(report))
            } else {
                print(report.rendered(accelerator: accelerator))
            }
            if report.exitStatus != 0 { throw ExitCode(report.exitStatus) }
        }
    }
}
