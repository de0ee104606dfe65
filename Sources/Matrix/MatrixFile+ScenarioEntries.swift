// A `scenarios:` entry of a matrix file: its name looked up in the registry, its keys checked
// against its plug-in's, its settings decoded by the plug-in's own Entry and checked by the
// plug-in's rules; every problem at the key or list item it is about.

import Foundation
import HostSupport
import Scenarios
import Yams
import YAMLGuard

extension MatrixReader {
    func scenario(_ node: Node) -> MatrixFile.Scenario? {
        let names = ScenarioRegistry.names
        guard case .mapping(let mapping) = node else {
            sink.error(node.location, "a scenario entry should be a mapping, but is \(node.kindDescription)",
                       fix: "write `- name: driver-order` and its settings below it; the scenarios are \(names)")
            return nil
        }
        guard let nameNode = mapping["name"] else {
            sink.error(node.location, "a scenario entry has no `name`", fix: "add `name: driver-order`; the scenarios are \(names)")
            return nil
        }
        guard case .scalar(let scalar) = nameNode, !nameNode.isNull else {
            sink.error(nameNode.location, "a scenario's `name` should be a scenario's name, but is \(nameNode.kindDescription)",
                       fix: "write `name: driver-order`; the scenarios are \(names)")
            return nil
        }
        let name = scalar.string
        guard let plugin = ScenarioRegistry.plugin(named: name) else {
            let guess = Spelling.nearest(to: name, in: ScenarioRegistry.plugins.map { $0.name }).map { "did you mean `\($0)`? " } ?? ""
            sink.error(nameNode.location, "unknown scenario '\(name)'", fix: "\(guess)the scenarios cxllab has are \(names)")
            return nil
        }
        checkKeys(mapping, of: plugin)
        let entry: any ScenarioEntry
        do {
            entry = try Self.decode(plugin.entryType, from: node)
        } catch let error as DecodingError {
            report(error, in: node, scenario: name)
            return nil
        } catch {
            sink.error(node.location, "scenario \(name): its settings cannot be read", fix: "compare it with the entry in docs/MATRICES.md")
            return nil
        }
        for problem in entry.problems {
            sink.error(Self.place(of: problem, in: mapping) ?? node.location, "scenario \(name): \(problem.message)", fix: problem.fix)
        }
        return MatrixFile.Scenario(name: name, entry: entry, plugin: plugin)
    }

    /// Keys of no scenario, or of another, are refused with the nearest key this one takes, or
    /// the scenario they belong to.
    private func checkKeys(_ mapping: Node.Mapping, of plugin: any ScenarioPlugin.Type) {
        let takes = "\(plugin.name) takes \(ScenarioRegistry.list(plugin.entryKeys))"
        for (keyNode, _) in mapping {
            guard case .scalar(let scalar) = keyNode else {
                sink.error(keyNode.location, "a key of scenario \(plugin.name) is \(keyNode.kindDescription), not a name", fix: takes)
                continue
            }
            let key = scalar.string
            guard key != "name", !plugin.entryKeys.contains(key) else { continue }
            let owners = ScenarioRegistry.plugins.filter { $0.entryKeys.contains(key) }.map { $0.name }
            if owners.isEmpty {
                let guess = Spelling.nearest(to: key, in: plugin.entryKeys).map { "did you mean `\($0)`? " } ?? ""
                sink.error(keyNode.location, "scenario \(plugin.name): unknown key `\(key)`", fix: "\(guess)\(takes)")
            } else {
                sink.error(keyNode.location, "scenario \(plugin.name): `\(key)` belongs to the \(ScenarioRegistry.list(owners)) scenario",
                           fix: "remove it, or give it to a scenario that takes it; \(takes)")
            }
        }
    }

    /// A plug-in's entry decoded from its node: Yams' decoder ignores keys the type does not
    /// have, which `checkKeys` has reported.
    private static func decode<Entry: ScenarioEntry>(_ type: Entry.Type, from node: Node) throws -> any ScenarioEntry {
        try YAMLDecoder().decode(Entry.self, from: node)
    }

    /// A decoding error in words, at the value it is about: Yams' own text names Swift types.
    private func report(_ error: DecodingError, in entry: Node, scenario: String) {
        let (path, expected): ([any CodingKey], String) = switch error {
        case .typeMismatch(let type, let context), .valueNotFound(let type, let context): (context.codingPath, Self.words(for: type))
        case .keyNotFound(_, let context), .dataCorrupted(let context): (context.codingPath, "a value this setting takes")
        @unknown default: ([], "a value this setting takes")
        }
        var node = entry
        for key in path {
            if let index = key.intValue, let items = node.sequence, index < items.count { node = items[index] }
            else if let value = node.mapping?[key.stringValue] { node = value }
        }
        let setting = path.first.map { "`\($0.stringValue)`" } ?? "the entry"
        let item = path.count > 1 ? "an item of \(setting)" : setting
        sink.error(node.location, "scenario \(scenario): \(item) should be \(expected), but is \(node.kindDescription)",
                   fix: "write \(expected) (docs/MATRICES.md gives each setting's values)")
    }

    /// What a user calls the type a setting takes.
    static func words(for type: Any.Type) -> String {
        switch type {
        case is Int.Type: "a whole number"
        case is UInt64.Type: "a whole number, 0 or more"
        case is String.Type: "text"
        case is Bool.Type: "true or false"
        case is [String].Type: "a list of names"
        case is [Int].Type: "a list of whole numbers"
        default:
            String(describing: type).contains("Sequence") || String(describing: type).hasPrefix("Array") ? "a list"
                : String(describing: type).contains("Mapping") || String(describing: type).hasPrefix("Dictionary") ? "a mapping" : "a value this setting takes"
        }
    }

    /// The value (or list item) a problem is about.
    static func place(of problem: EntryProblem, in mapping: Node.Mapping) -> SourcePosition? {
        guard let key = problem.key, let value = mapping[key] else { return nil }
        if let item = problem.item, let items = value.sequence, item < items.count { return items[item].location }
        return value.location
    }
}
