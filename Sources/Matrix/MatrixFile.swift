import Foundation
import Kernels
import HostSupport
import Scenarios
import Yams
import YAMLGuard

/// A matrix file or a stored run that cannot be used: a code to branch on, the place and the
/// fix in words, and the error underneath.
public struct MatrixError: Error, Sendable, CustomStringConvertible {
    public struct Code: RawRepresentable, Hashable, Sendable {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        /// The matrix file cannot be read or says something cxllab cannot run.
        public static let invalidFile = Code(rawValue: "invalid-file")
        /// No such run or cell in the store, or an id that cannot be one.
        public static let notFound = Code(rawValue: "not-found")
    }

    public let code: Code
    public let message: String
    public let cause: (any Error)?

    public init(_ message: String, code: Code = .invalidFile, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String { message }
}

/// A matrix: kernels x topologies x scenarios, from a YAML file under matrices/.
public struct MatrixFile: Sendable, Codable, Hashable {
    public struct Scenario: Sendable, Codable, Hashable {
        public var name: String
        /// The dax drivers to order (default: device_dax, kmem, fsdev_dax).
        public var drivers: [String]?
        /// Modules in place of the drivers of their names (`PATH[:param=value,...]`).
        public var modules: [String]?
        /// Where the kernel lacks fsdev_dax: the stand-in's automatch values to run, one cell
        /// each (default: [0]).
        public var standIn: [Int]?
        public var orders: String?
        public var seed: UInt64?
        public var `repeat`: Int?
        /// race: the kinds (load, coldplug, create), rounds of each, and coldplug's workers.
        public var kinds: [String]?
        public var rounds: Int?
        public var workers: Int?
        /// ndctl-suite: ndctl's suites (ndctl, dax, cxl), or exactly these tests, and modules
        /// loaded before the dax drivers.
        public var suites: [String]?
        public var tests: [String]?
        public var loadFirst: [String]?
        /// ndctl-suite: multiplies each test's meson timeout (`--timeout-multiplier`).
        public var timeoutMultiplier: Int?

        enum CodingKeys: String, CodingKey {
            case name, drivers, modules, orders, seed, `repeat`, kinds, rounds, workers, suites, tests
            case standIn = "stand_in"
            case loadFirst = "load_first"
            case timeoutMultiplier = "timeout_multiplier"
        }

        /// What is wrong with this scenario's settings, in words with the fix; nil when it can run.
        var problem: String? {
            let drivers = self.drivers ?? DriverOrderScenario.defaultDrivers
            let suiteKeys = suites != nil || tests != nil || loadFirst != nil || timeoutMultiplier != nil
            switch name {
            case "ndctl-suite":
                if orders != nil || `repeat` != nil || kinds != nil || rounds != nil || workers != nil || self.drivers != nil {
                    return "ndctl-suite takes suites, tests, modules, stand_in, load_first and timeout_multiplier; orders, repeat, kinds, rounds, workers and drivers belong to driver-order and race"
                }
                return NdctlSuiteScenario.problem(suites: suites, loadFirst: loadFirst ?? [], timeoutMultiplier: timeoutMultiplier ?? 1)
            case _ where suiteKeys:
                return "suites, tests, load_first and timeout_multiplier belong to the ndctl-suite scenario"
            case "driver-order":
                if kinds != nil || rounds != nil || workers != nil { return "kinds, rounds and workers belong to the race scenario; driver-order takes orders and repeat" }
                if let `repeat`, let problem = DriverOrderScenario.repeatProblem(`repeat`, spelled: "repeat") { return problem }
                return DriverOrders.problem(orders: orders ?? "all", drivers: drivers)
            case "race":
                if orders != nil || `repeat` != nil { return "orders and repeat belong to driver-order; a race takes kinds, rounds and workers" }
                return RaceScenario.problem(kinds: kinds, rounds: rounds, workers: workers, drivers: drivers)
            default:
                return "unknown scenario '\(name)'; the scenarios cxllab has are driver-order, race and ndctl-suite"
            }
        }
    }

    /// A rule: a cell matches when every field given matches (`*` in a field matches anything).
    public struct Rule: Sendable, Codable, Hashable {
        public var kernel: String?
        public var topology: String?
        public var scenario: String?
    }

    public var name: String
    public var description: String?
    public var kernels: [String]
    public var topologies: [String]
    public var scenarios: [Scenario]
    public var include: [Rule]?
    public var exclude: [Rule]?
    /// What the cells are expected to do (the `expect` section), read with each rule's place.
    public var expect: [ExpectationRule] = []

    enum CodingKeys: String, CodingKey {
        case name, description, kernels, topologies, scenarios, include, exclude
    }

    public static func load(path: String) throws -> MatrixFile {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw MatrixError("\(path) cannot be read")
        }
        // Before Yams composes it: aliases as keys make composing exponential (417 bytes once
        // took 7.7 s); the expect rules below read the same text.
        do {
            try YAMLGuard.check(text)
        } catch {
            throw MatrixError("\(path):\(error.line):\(error.column): \(error.message); fix: \(error.fix)", cause: error)
        }
        do {
            let matrix = try YAMLDecoder().decode(MatrixFile.self, from: text)
            guard !matrix.kernels.isEmpty, !matrix.topologies.isEmpty, !matrix.scenarios.isEmpty else {
                throw MatrixError("\(path): a matrix needs at least one kernel, topology and scenario")
            }
            for scenario in matrix.scenarios {
                if let problem = scenario.problem { throw MatrixError("\(path): scenario \(scenario.name): \(problem)") }
            }
            let duplicates = duplicateEntries(yaml: text, file: path)
            if !duplicates.isEmpty { throw MatrixError(duplicates.joined(separator: "\n")) }
            var withRules = matrix
            withRules.expect = try ExpectationParser.rules(yaml: text, file: path)
            return withRules
        } catch let error as MatrixError {
            throw error
        } catch let error as ExpectationError {
            throw MatrixError("\(path): " + error.description, cause: error)
        } catch let DecodingError.keyNotFound(key, context) {
            let place = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw MatrixError("\(path): missing '\(key.stringValue)'\(place.isEmpty ? "" : " in \(place)")")
        } catch {
            throw MatrixError("\(path): \(error)", cause: error)
        }
    }
}

/// One cell: a kernel, a topology and one variant of a scenario, run in one guest.
public struct MatrixCell: Sendable, Codable, Hashable {
    /// As the matrix file names it (`debian:bookworm-backports`).
    public var kernel: String
    /// What that named when the run started: every cell of a run uses this kernel.
    public var pinned: PinnedKernel
    public var topology: String
    public var scenario: String
    public var drivers: [String]
    public var modules: [String]
    public var orders: String
    public var seed: UInt64
    /// driver-order: --repeat; race: rounds of each kind.
    public var repeats: Int
    /// A short label of the variant for people: "stand-in automatch=1", "real", ...
    public var variant: String
    /// race only: the kinds and coldplug's workers (nil: one per device).
    public var kinds: [String]?
    public var workers: Int?
    /// ndctl-suite only: the suites, or the tests, and the modules loaded first.
    public var suites: [String]?
    public var suiteTests: [String]?
    public var loadFirst: [String]?
    /// ndctl-suite only: the timeout multiplier, when more than 1.
    public var timeoutMultiplier: Int?

    public init(kernel: String, pinned: PinnedKernel, topology: String, scenario: String, drivers: [String], modules: [String], orders: String,
                seed: UInt64, repeats: Int, variant: String, kinds: [String]? = nil, workers: Int? = nil) {
        self.kernel = kernel
        self.pinned = pinned
        self.topology = topology
        self.scenario = scenario
        self.drivers = drivers
        self.modules = modules
        self.orders = orders
        self.seed = seed
        self.repeats = repeats
        self.variant = variant
        self.kinds = kinds
        self.workers = workers
    }

    private var inputs: [String] {
        let base = [kernel, topology, scenario, drivers.joined(separator: ","), modules.joined(separator: " "), orders, String(seed), String(repeats)]
        // Only a race's or a suite's own settings extend the hash, so driver-order cells keep their ids.
        if scenario == "ndctl-suite" {
            // A multiplier extends it only when given, so cells without one keep their ids.
            return base + [(suites ?? []).joined(separator: ","), (suiteTests ?? []).joined(separator: ","), (loadFirst ?? []).joined(separator: ",")]
                + (timeoutMultiplier.map { ["timeout x\($0)"] } ?? [])
        }
        guard scenario == "race" else { return base }
        return base + [(kinds ?? []).joined(separator: ","), workers.map(String.init) ?? "per-device"]
    }

    /// A stable hash of the cell's inputs, the pinned kernel included: the same cell on the
    /// same kernel has the same id in every run, on every host, in every shard.
    public var id: String {
        let canonical = (inputs + [pinned.release, pinned.imageSHA256]).joined(separator: "\n")
        return String(FileDigest.sha256(of: Data(canonical.utf8)).prefix(12))
    }

    /// The same hash without the pinned kernel: the cell across runs whose alias moved
    /// (`cxllab diff` pairs cells by it).
    public var key: String {
        String(FileDigest.sha256(of: Data(inputs.joined(separator: "\n").utf8)).prefix(12))
    }

    public var label: String { "\(kernel) \((topology as NSString).lastPathComponent) \(scenario) [\(variant)]" }

    /// The command that runs this cell alone, on exactly its kernel.
    public var command: String {
        if scenario == "ndctl-suite" {
            return NdctlSuiteScenario.command(kernel: pinned.exactReference, topology: topology, modules: modules, loadFirst: loadFirst ?? [],
                                              ndctlVersion: nil, tests: suiteTests, suites: suites, timeoutMultiplier: timeoutMultiplier ?? 1)
        }
        let isRace = scenario == "race"
        var words = ["cxllab", isRace ? "race" : "run", topology, "--kernel", pinned.exactReference, "--drivers", drivers.joined(separator: ",")]
        for module in modules { words += ["--module", module] }
        if isRace {
            words += ["--kinds", (kinds ?? RaceKind.allCases.map(\.rawValue)).joined(separator: ","), "--rounds", String(repeats), "--seed", String(seed)]
            if let workers { words += ["--workers", String(workers)] }
        } else {
            words += ["--orders", orders, "--seed", String(seed), "--repeat", String(repeats)]
        }
        return words.map(shellQuoted).joined(separator: " ")
    }
}

public enum MatrixExpansion {
    /// The matrix's cells on the kernels pinned for this run (by the matrix's kernel names),
    /// with stand-in variants chosen by what each kernel can have.
    public static func cells(_ matrix: MatrixFile, kernels: [String: MatrixPlan.PlannedKernel], standInSource: String) -> [MatrixCell] {
        var cells: [MatrixCell] = []
        for kernel in matrix.kernels {
            guard let underTest = kernels[kernel] else { continue }
            for topology in matrix.topologies {
                for scenario in matrix.scenarios {
                    let plain = MatrixCell(kernel: kernel, pinned: underTest.pinned, topology: topology, scenario: scenario.name,
                                           drivers: scenario.drivers ?? DriverOrderScenario.defaultDrivers, modules: scenario.modules ?? [],
                                          orders: scenario.orders ?? "all", seed: scenario.seed ?? 1,
                                          repeats: scenario.name == "race" ? scenario.rounds ?? RaceScenario.defaultRounds : scenario.repeat ?? 1,
                                          variant: "", kinds: scenario.name == "race" ? scenario.kinds : nil, workers: scenario.workers)
                    var suiteBase = plain
                    if scenario.name == "ndctl-suite" {
                        suiteBase.drivers = []
                        suiteBase.suites = scenario.suites
                        suiteBase.suiteTests = scenario.tests
                        suiteBase.loadFirst = scenario.loadFirst
                        suiteBase.timeoutMultiplier = scenario.timeoutMultiplier.flatMap { $0 > 1 ? $0 : nil }
                        // A suite without stand-in variants is one cell, whatever fsdev_dax the kernel has.
                        if scenario.standIn == nil {
                            suiteBase.variant = "suite"
                            cells.append(suiteBase)
                            continue
                        }
                        if case .none = underTest.fsdev { suiteBase.loadFirst?.removeAll { $0 == DriverOrderScenario.fsdev } }
                    }
                    let base = suiteBase
                    let userFsdev = (scenario.modules ?? []).contains { ($0.split(separator: ":").first ?? "").contains("fsdev") }
                    switch (userFsdev, underTest.fsdev) {
                    case (true, _):
                        var cell = base
                        cell.variant = "user fsdev_dax"
                        cells.append(cell)
                    case (false, .real):
                        var cell = base
                        cell.variant = "real fsdev_dax"
                        cells.append(cell)
                    case (false, .none):
                        var cell = base
                        cell.drivers.removeAll { $0 == DriverOrderScenario.fsdev }
                        cell.variant = "no fsdev_dax"
                        cells.append(cell)
                    case (false, .standInPossible):
                        for automatch in scenario.standIn ?? [0] {
                            var cell = base
                            cell.modules.append("\(standInSource):automatch=\(automatch)")
                            cell.variant = "stand-in automatch=\(automatch)"
                            cells.append(cell)
                        }
                    }
                }
            }
        }
        return cells.filter { cell in
            let included = matrix.include.map { rules in rules.contains { matches($0, cell) } } ?? true
            let excluded = (matrix.exclude ?? []).contains { matches($0, cell) }
            return included && !excluded
        }
    }

    static func matches(_ rule: MatrixFile.Rule, _ cell: MatrixCell) -> Bool {
        func field(_ pattern: String?, _ value: String) -> Bool {
            guard let pattern, pattern != "*" else { return true }
            return value == pattern || (value as NSString).lastPathComponent == pattern || value.hasSuffix("/" + pattern)
        }
        return field(rule.kernel, cell.kernel) && field(rule.topology, cell.topology) && field(rule.scenario, cell.scenario)
    }

    /// Shard `index` of `count` (1-based): cells sorted by key, every count-th one. Together the
    /// shards hold every cell exactly once, whatever host computes them (by the key, which
    /// leaves out the pinned kernel, even if two hosts pinned an alias a day apart).
    public static func shard(_ cells: [MatrixCell], index: Int, count: Int) -> [MatrixCell] {
        cells.sorted { $0.key < $1.key }.enumerated().filter { $0.offset % count == index - 1 }.map(\.element)
    }

    /// Keeps cells whose label contains every word of the filter.
    public static func filter(_ cells: [MatrixCell], _ expression: String) -> [MatrixCell] {
        let words = expression.split(separator: " ").map(String.init)
        return cells.filter { cell in words.allSatisfy { cell.label.contains($0) || cell.id.hasPrefix($0) } }
    }
}
