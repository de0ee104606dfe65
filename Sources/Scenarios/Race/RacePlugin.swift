import Foundation
import HostSupport

/// race in matrix files, the store and the reports.
extension RaceScenario: ScenarioPlugin {
    public typealias Report = RaceReport
    public static let name = "race"
    public static let entryKeys = ["drivers", "modules", "stand_in", "kinds", "rounds", "workers", "seed"]

    /// A `scenarios:` entry: `{name: race, kinds: [load, coldplug, create], rounds: 40, workers: 2, seed: 1}`.
    public struct Entry: ScenarioEntry {
        public var drivers: [String]?
        public var modules: [String]?
        public var standIn: [Int]?
        public var kinds: [String]?
        public var rounds: Int?
        public var workers: Int?
        public var seed: UInt64?

        enum CodingKeys: String, CodingKey {
            case drivers, modules, kinds, rounds, workers, seed
            case standIn = "stand_in"
        }

        /// The command line's one check, asked of one setting at a time so each problem is
        /// reported at its own key.
        public var problems: [EntryProblem] {
            let defaults = DriverOrderScenario.defaultDrivers
            return EntryProblem.at("kinds", RaceScenario.problem(kinds: kinds, rounds: nil, workers: nil, drivers: defaults))
                + EntryProblem.at("rounds", RaceScenario.problem(kinds: nil, rounds: rounds, workers: nil, drivers: defaults))
                + EntryProblem.at("workers", RaceScenario.problem(kinds: nil, rounds: nil, workers: workers, drivers: defaults))
                + EntryProblem.at("drivers", RaceScenario.problem(kinds: nil, rounds: nil, workers: nil, drivers: drivers ?? defaults))
                + FsdevVariant.standInProblems(standIn)
        }
    }

    /// One cell's settings. The names are those stored cells always had (`repeats`: rounds of
    /// each kind).
    public struct Settings: ScenarioSettings {
        public var drivers: [String]
        public var modules: [String]
        public var seed: UInt64
        public var repeats: Int
        /// nil: every kind (and the id as cells without kinds always had).
        public var kinds: [String]?
        /// nil: one coldplug worker per device.
        public var workers: Int?

        public init(drivers: [String] = DriverOrderScenario.defaultDrivers, modules: [String] = [], seed: UInt64 = 1,
                    repeats: Int = RaceScenario.defaultRounds, kinds: [String]? = nil, workers: Int? = nil) {
            self.drivers = drivers
            self.modules = modules
            self.seed = seed
            self.repeats = repeats
            self.kinds = kinds
            self.workers = workers
        }

        /// "all" stands where driver-order's orders are: race cells were hashed with it.
        public var identityInputs: [String] {
            [drivers.joined(separator: ","), modules.joined(separator: " "), "all", String(seed), String(repeats),
             (kinds ?? []).joined(separator: ","), workers.map(String.init) ?? "per-device"]
        }

        public var randomSeed: UInt64? { seed }
        var kindNames: [String] { kinds ?? RaceKind.allCases.map(\.rawValue) }
    }

    public static func variants(of entry: Entry, fsdev: FsdevAvailability, standInSource: String) -> [(label: String, settings: Settings)] {
        let base = Settings(drivers: entry.drivers ?? DriverOrderScenario.defaultDrivers, modules: entry.modules ?? [], seed: entry.seed ?? 1,
                            repeats: entry.rounds ?? defaultRounds, kinds: entry.kinds, workers: entry.workers)
        return FsdevVariant.variants(modules: base.modules, standIn: entry.standIn, fsdev: fsdev, standInSource: standInSource).map { variant in
            var settings = base
            (settings.drivers, settings.modules) = variant.applied(drivers: base.drivers, modules: base.modules)
            return (variant.label, settings)
        }
    }

    public init(settings: Settings, topology: String, project: ScenarioProject) throws {
        guard let kinds = RaceKind.parse(list: settings.kindNames.joined(separator: ",")) else {
            throw OutcomeError.input("kinds '\(settings.kindNames.joined(separator: ","))' names an unknown race kind")
        }
        self.init(drivers: settings.drivers, modules: settings.modules.map(project.moduleArgument), standInSource: project.path(project.standInSource),
                  kinds: kinds, rounds: settings.repeats, seed: settings.seed, workers: settings.workers)
    }

    public static func command(_ settings: Settings, kernel: String, topology: String) -> String {
        var words = ["cxllab", "race", topology, "--kernel", kernel, "--drivers", settings.drivers.joined(separator: ",")]
        for module in settings.modules { words += ["--module", module] }
        words += ["--kinds", settings.kindNames.joined(separator: ","), "--rounds", String(settings.repeats), "--seed", String(settings.seed)]
        if let workers = settings.workers { words += ["--workers", String(workers)] }
        return words.map(shellQuoted).joined(separator: " ")
    }
}

extension RaceReport: ScenarioReport {
    public static let detailKey = "race"

    public func headingLines(_ heading: String, facts: [Fact]) -> [String] {
        [heading + ", drivers \(drivers.joined(separator: ", "))", "fsdev_dax: \(fsdev)"] + ScenarioDevice.line(devices)
    }

    /// Rounds by the dozen say less than their rates: the summary, then the evidence.
    public var caseLines: [String]? { rendered() }
    public var summaryLines: [String] { summary() }

    public var properties: [Fact] {
        summaries.map { Fact("failure rate, \($0.kind.rawValue)", $0.rate.description) }
    }

    /// A race's failure rate per kind, with both intervals; a change whose intervals do not
    /// overlap is called significant, one within them is only a difference.
    public func diffLines(label: String, earlier: any ScenarioReport, verdicts: (before: Verdict, after: Verdict)) -> [String]? {
        guard let earlier = earlier as? RaceReport else { return nil }
        var lines = Verdict.changeLine(label, verdicts.before, verdicts.after).map { [$0] } ?? []
        let before = Dictionary(earlier.summaries.map { ($0.kind, $0.rate) }, uniquingKeysWith: { first, _ in first })
        for summary in summaries {
            guard let old = before[summary.kind], old.trials > 0, summary.rate.trials > 0 else { continue }
            let new = summary.rate
            guard abs(old.rate - new.rate) > 1e-9 else { continue }
            let significant = old.upper < new.lower || new.upper < old.lower
            lines.append(String(format: "RATE         %@, %@: %.0f%% [%.0f–%.0f] -> %.0f%% [%.0f–%.0f] failed%@", label, summary.kind.rawValue,
                                old.rate * 100, old.lower * 100, old.upper * 100, new.rate * 100, new.lower * 100, new.upper * 100,
                                significant ? " (significant: the 95% intervals do not overlap)" : " (within the 95% intervals)"))
        }
        return lines
    }
}
