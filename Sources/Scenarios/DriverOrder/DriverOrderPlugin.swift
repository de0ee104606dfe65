import Foundation
import HostSupport

/// driver-order in matrix files, the store and the reports.
extension DriverOrderScenario: ScenarioPlugin {
    public typealias Report = DriverOrderReport
    public static let name = "driver-order"
    public static let entryKeys = ["drivers", "modules", "stand_in", "orders", "seed", "repeat"]

    /// A `scenarios:` entry: `{name: driver-order, drivers: [...], modules: [...], stand_in: [0, 1], orders: all, seed: 1, repeat: 1}`.
    public struct Entry: ScenarioEntry {
        public var drivers: [String]?
        /// Modules in place of the drivers of their names (`PATH[:param=value,...]`).
        public var modules: [String]?
        /// Where the kernel lacks fsdev_dax: the stand-in's automatch values, one cell each (default [0]).
        public var standIn: [Int]?
        public var orders: String?
        public var seed: UInt64?
        public var `repeat`: Int?

        enum CodingKeys: String, CodingKey {
            case drivers, modules, orders, seed, `repeat`
            case standIn = "stand_in"
        }

        public var problems: [EntryProblem] {
            let orderProblem = DriverOrders.problem(orders: orders ?? "all", drivers: drivers ?? DriverOrderScenario.defaultDrivers)
            return EntryProblem.at("repeat", `repeat`.flatMap { DriverOrderScenario.repeatProblem($0, spelled: "repeat") })
                + EntryProblem.at(orders == nil ? "drivers" : "orders", orderProblem) + FsdevVariant.standInProblems(standIn)
        }
    }

    /// One cell's settings. The names are those stored cells always had.
    public struct Settings: ScenarioSettings {
        public var drivers: [String]
        public var modules: [String]
        public var orders: String
        public var seed: UInt64
        public var repeats: Int

        public init(drivers: [String] = DriverOrderScenario.defaultDrivers, modules: [String] = [], orders: String = "all", seed: UInt64 = 1,
                    repeats: Int = 1) {
            self.drivers = drivers
            self.modules = modules
            self.orders = orders
            self.seed = seed
            self.repeats = repeats
        }

        public var identityInputs: [String] { [drivers.joined(separator: ","), modules.joined(separator: " "), orders, String(seed), String(repeats)] }
        public var randomSeed: UInt64? { seed }
        public var orderedDrivers: [String]? { drivers }
    }

    public static func variants(of entry: Entry, fsdev: FsdevAvailability, standInSource: String) -> [(label: String, settings: Settings)] {
        let base = Settings(drivers: entry.drivers ?? defaultDrivers, modules: entry.modules ?? [], orders: entry.orders ?? "all",
                            seed: entry.seed ?? 1, repeats: entry.repeat ?? 1)
        return FsdevVariant.variants(modules: base.modules, standIn: entry.standIn, fsdev: fsdev, standInSource: standInSource).map { variant in
            var settings = base
            (settings.drivers, settings.modules) = variant.applied(drivers: base.drivers, modules: base.modules)
            return (variant.label, settings)
        }
    }

    public init(settings: Settings, topology: String, project: ScenarioProject) throws {
        guard let selection = OrderSelection(argument: settings.orders) else {
            throw OutcomeError.input("orders '\(settings.orders)' is neither 'all', a positive number, nor an order of the drivers")
        }
        self.init(drivers: settings.drivers, modules: settings.modules.map { ModuleSpec(parsing: project.moduleArgument($0)) },
                  standInSource: project.path(project.standInSource), selection: selection, seed: settings.seed, repeats: settings.repeats)
    }

    public static func command(_ settings: Settings, kernel: String, topology: String) -> String {
        var words = ["cxllab", "run", topology, "--kernel", kernel, "--drivers", settings.drivers.joined(separator: ",")]
        for module in settings.modules { words += ["--module", module] }
        words += ["--orders", settings.orders, "--seed", String(settings.seed), "--repeat", String(settings.repeats)]
        return words.map(shellQuoted).joined(separator: " ")
    }
}

extension DriverOrderReport: ScenarioReport {
    public static let detailKey = "driverOrder"

    public func headingLines(_ heading: String, facts: [Fact]) -> [String] {
        [heading + ", drivers \(drivers.joined(separator: ", "))", "fsdev_dax: \(fsdev)"] + ScenarioDevice.line(devices)
    }

    public var closingLines: [String] {
        var lines = stepSummary()
        let failures = failedOrders.filter { $0.error == nil }
        guard !failures.isEmpty else { return lines }
        lines.append("")
        lines.append("Violations:")
        for result in failures {
            for observation in result.observations where observation.verdict == .fail {
                lines.append("  order \(result.label), \(observation.device), \(observation.step.rawValue): "
                             + "expected \(observation.expected ?? "any driver but fsdev_dax"), got \(observation.actual ?? "no driver")"
                             + (observation.registered.map { $0.isEmpty ? "" : " (registered \($0.joined(separator: " < ")))" } ?? ""))
                if let note = observation.note { lines.append("    \(note)") }
                for message in observation.dmesg.suffix(8) { lines.append("    | \(message)") }
            }
        }
        return lines
    }

    public var summaryLines: [String] { Array(stepSummary().drop { $0.isEmpty }) }
    public var properties: [Fact] { [Fact("drivers", drivers.joined(separator: ","))] }
    public func caseTitle(_ name: String) -> String { "order \(name)" }
}
