import Foundation
import HostSupport

/// ndctl-suite in matrix files, the store and the reports.
extension NdctlSuiteScenario: ScenarioPlugin {
    public typealias Report = SuiteReport
    public static let name = "ndctl-suite"
    public static let entryKeys = ["suites", "tests", "modules", "stand_in", "load_first", "timeout_multiplier"]
    /// Its own image: the recipe's `ndctl-suite` group and the tools its tests call.
    public static let recipeName: String? = "ndctl-suite"

    /// A `scenarios:` entry: `{name: ndctl-suite, tests: [device-dax], modules: [...], stand_in: [1], load_first: [fsdev_dax]}`.
    public struct Entry: ScenarioEntry {
        /// ndctl's suites (ndctl, dax, cxl), or exactly these tests.
        public var suites: [String]?
        public var tests: [String]?
        public var modules: [String]?
        /// With stand-in variants, one cell each; without, one cell whatever fsdev_dax the kernel has.
        public var standIn: [Int]?
        /// Modules loaded before the dax drivers.
        public var loadFirst: [String]?
        /// Multiplies each test's meson timeout (`--timeout-multiplier`).
        public var timeoutMultiplier: Int?

        enum CodingKeys: String, CodingKey {
            case suites, tests, modules
            case standIn = "stand_in"
            case loadFirst = "load_first"
            case timeoutMultiplier = "timeout_multiplier"
        }

        /// The command line's one check, asked of one setting at a time so each problem is
        /// reported at its own key.
        public var problems: [EntryProblem] {
            EntryProblem.at("timeout_multiplier", NdctlSuiteScenario.problem(suites: nil, loadFirst: [], timeoutMultiplier: timeoutMultiplier ?? 1))
                + EntryProblem.at("suites", NdctlSuiteScenario.problem(suites: suites, loadFirst: []))
                + EntryProblem.at("load_first", NdctlSuiteScenario.problem(suites: nil, loadFirst: loadFirst ?? []))
                + FsdevVariant.standInProblems(standIn)
        }
    }

    /// One cell's settings. The names are those stored cells always had.
    public struct Settings: ScenarioSettings {
        public var modules: [String]
        public var suites: [String]?
        public var suiteTests: [String]?
        public var loadFirst: [String]?
        /// Only when more than 1, so cells without one keep their ids.
        public var timeoutMultiplier: Int?

        public init(modules: [String] = [], suites: [String]? = nil, suiteTests: [String]? = nil, loadFirst: [String]? = nil,
                    timeoutMultiplier: Int? = nil) {
            self.modules = modules
            self.suites = suites
            self.suiteTests = suiteTests
            self.loadFirst = loadFirst
            self.timeoutMultiplier = timeoutMultiplier.flatMap { $0 > 1 ? $0 : nil }
        }

        /// The first five are what every cell was hashed with before scenarios had their own
        /// settings (no drivers, orders "all", seed 1, one repeat): stored suite cells keep their ids.
        public var identityInputs: [String] {
            ["", modules.joined(separator: " "), "all", "1", "1",
             (suites ?? []).joined(separator: ","), (suiteTests ?? []).joined(separator: ","), (loadFirst ?? []).joined(separator: ",")]
                + (timeoutMultiplier.map { ["timeout x\($0)"] } ?? [])
        }
    }

    public static func variants(of entry: Entry, fsdev: FsdevAvailability, standInSource: String) -> [(label: String, settings: Settings)] {
        let base = Settings(modules: entry.modules ?? [], suites: entry.suites, suiteTests: entry.tests, loadFirst: entry.loadFirst,
                            timeoutMultiplier: entry.timeoutMultiplier)
        guard entry.standIn != nil else { return [("suite", base)] }
        return FsdevVariant.variants(modules: base.modules, standIn: entry.standIn, fsdev: fsdev, standInSource: standInSource).map { variant in
            var settings = base
            if variant.dropsFsdev { settings.loadFirst?.removeAll { $0 == DriverOrderScenario.fsdev } }
            if let module = variant.standInModule { settings.modules.append(module) }
            return (variant.label, settings)
        }
    }

    public init(settings: Settings, topology: String, project: ScenarioProject) throws {
        self.init(suites: settings.suites ?? Self.allSuites, tests: settings.suiteTests, modules: settings.modules.map(project.moduleArgument),
                  loadFirst: settings.loadFirst ?? [], topologyArgument: topology, timeoutMultiplier: settings.timeoutMultiplier ?? 1)
    }

    public static func command(_ settings: Settings, kernel: String, topology: String) -> String {
        command(kernel: kernel, topology: topology, modules: settings.modules, loadFirst: settings.loadFirst ?? [], ndctlVersion: nil,
                tests: settings.suiteTests, suites: settings.suites, timeoutMultiplier: settings.timeoutMultiplier ?? 1)
    }
}

extension SuiteReport: ScenarioReport {
    public static let detailKey = "suite"

    public var closingLines: [String] { [""] + summary() }
    public var summaryLines: [String] { summary() }
    public var properties: [Fact] { [Fact("ndctl", ndctlVersion)] }
}
