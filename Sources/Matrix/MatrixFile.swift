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
public struct MatrixFile: Sendable, Decodable {
    /// A `scenarios:` entry: a registered scenario's name and its own entry, as written.
    public struct Scenario: Sendable, Decodable {
        public var name: String
        public var entry: any ScenarioEntry
        public var plugin: any ScenarioPlugin.Type

        typealias Key = StringCodingKey

        /// Keys of no scenario, or of another, are refused with the scenario they belong to and
        /// the keys this one takes.
        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: Key.self)
            name = try container.decode(String.self, forKey: Key("name"))
            guard let plugin = ScenarioRegistry.plugin(named: name) else {
                throw EntryRefusal(message: "unknown scenario '\(name)'; the scenarios cxllab has are \(ScenarioRegistry.names)", codingPath: decoder.codingPath)
            }
            self.plugin = plugin
            for key in container.allKeys.map(\.stringValue) where key != "name" && !plugin.entryKeys.contains(key) {
                let owners = ScenarioRegistry.plugins.filter { $0.entryKeys.contains(key) }.map { $0.name }
                let belongs = owners.isEmpty ? "is not a setting of any scenario" : "belongs to the \(ScenarioRegistry.list(owners)) scenario"
                throw EntryRefusal(message: "scenario \(name): '\(key)' \(belongs); \(name) takes \(ScenarioRegistry.list(plugin.entryKeys))",
                                   codingPath: decoder.codingPath)
            }
            entry = try plugin.decodeEntry(from: decoder)
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
            for (index, scenario) in matrix.scenarios.enumerated() {
                if let problem = scenario.entry.problem {
                    throw MatrixError("\(path):\(line(ofScenario: index, yaml: text)): scenario \(scenario.name): \(problem)")
                }
            }
            let duplicates = duplicateEntries(yaml: text, file: path)
            if !duplicates.isEmpty { throw MatrixError(duplicates.joined(separator: "\n")) }
            var withRules = matrix
            withRules.expect = try ExpectationParser.rules(yaml: text, file: path)
            return withRules
        } catch let error as MatrixError {
            throw error
        } catch let refusal as EntryRefusal {
            throw MatrixError("\(path):\(line(of: refusal.codingPath, yaml: text)): \(refusal.message)")
        } catch let DecodingError.dataCorrupted(context) where context.underlyingError is EntryRefusal {
            // Yams hands an entry's own refusal on inside its decoding error.
            let refusal = context.underlyingError as? EntryRefusal
            throw MatrixError("\(path):\(line(of: refusal?.codingPath ?? [], yaml: text)): \(refusal?.message ?? "")")
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

public enum MatrixExpansion {
    /// The matrix's cells on the kernels pinned for this run (by the matrix's kernel names),
    /// with stand-in variants chosen by what each kernel can have.
    public static func cells(_ matrix: MatrixFile, kernels: [String: MatrixPlan.PlannedKernel], standInSource: String) -> [MatrixCell] {
        var cells: [MatrixCell] = []
        for kernel in matrix.kernels {
            guard let underTest = kernels[kernel] else { continue }
            for topology in matrix.topologies {
                for scenario in matrix.scenarios {
                    for (variant, settings) in scenario.plugin.cells(of: scenario.entry, fsdev: underTest.fsdev, standInSource: standInSource) {
                        cells.append(MatrixCell(kernel: kernel, pinned: underTest.pinned, topology: topology, variant: variant, settings: settings,
                                                scenario: scenario.name))
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
