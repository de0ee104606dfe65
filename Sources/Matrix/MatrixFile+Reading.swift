// Reading a matrix file's YAML into a MatrixFile, every problem reported at its place: the
// topology reader's pieces (MappingReader, DiagnosticSink, Spelling), not a second copy.

import Foundation
import HostSupport
import Kernels
import Scenarios
import Yams
import YAMLGuard

/// Reads a matrix file's root node. Every getter reports what is wrong and carries on, so one
/// reading finds every problem; the result is nil only when the top is not a mapping.
struct MatrixReader {
    let sink: DiagnosticSink

    func read(_ root: Node) -> MatrixFile? {
        guard let top = MappingReader(root, what: "the matrix", known: MatrixFile.keys, sink: sink, isRoot: true) else { return nil }
        top.require("name", "my-matrix")
        top.require("kernels", "[debian:bookworm-backports]")
        top.require("topologies", "[topologies/nvdimm-single.yaml]")
        top.require("scenarios", "[{name: driver-order}]")
        let name = top.string("name")?.value
        let description = top.string("description")?.value
        let kernels = words(top, "kernels", example: "debian:bookworm-backports").filter(isKernelName).map(\.value)
        let topologies = words(top, "topologies", example: "topologies/nvdimm-single.yaml").map(\.value)
        let scenarios = nonEmpty(top, "scenarios", example: "{name: driver-order}").compactMap(scenario)
        let include = top.has("include") ? nonEmpty(top, "include", example: "{kernel: debian:bookworm}").compactMap { rule($0, in: "include") } : nil
        let exclude = top.has("exclude") ? nonEmpty(top, "exclude", example: "{kernel: debian:bookworm}").compactMap { rule($0, in: "exclude") } : nil
        let expect = top.node("expect").map { ExpectationParser.rules(from: $0, sink: sink) } ?? []
        if let root = root.mapping { MatrixFile.reportDuplicates(in: root, to: sink) }
        guard let name else { return nil }
        var matrix = MatrixFile(name: name, description: description, kernels: kernels, topologies: topologies, scenarios: scenarios,
                                include: include, exclude: exclude)
        matrix.expect = expect
        return matrix
    }

    /// A list that must hold something; each item as it stands.
    private func nonEmpty(_ top: MappingReader, _ key: String, example: String) -> [Node] {
        guard let (items, location) = top.list(key, example: example) else { return [] }
        if items.isEmpty {
            sink.error(location, "`\(key)` lists nothing: a matrix needs at least one of each of kernels, topologies and scenarios",
                       fix: "list one or more, e.g. `\(key): [\(example)]`")
        }
        return items
    }

    /// A list of words (kernel names, topology files), each with its place.
    private func words(_ top: MappingReader, _ key: String, example: String) -> [Located<String>] {
        nonEmpty(top, key, example: example).compactMap { node in
            guard case .scalar(let scalar) = node, !node.isNull else {
                sink.error(node.location, "an item of `\(key)` should be text, but is \(node.kindDescription)", fix: "write one name per item, e.g. `- \(example)`")
                return nil
            }
            return Located(value: scalar.string, location: node.location)
        }
    }

    /// A kernel name is checked by the same parser `--kernel` goes through, before anything is
    /// fetched: a typo is told with its nearest spelling here, not by Debian's archive.
    private func isKernelName(_ name: Located<String>) -> Bool {
        do {
            _ = try KernelReference(parsing: name.value)
            return true
        } catch {
            sink.error(name.location, error.problem, fix: error.fix)
            return false
        }
    }

    /// An `include` or `exclude` rule: kernel, topology and scenario, each a name or `*`.
    private func rule(_ node: Node, in list: String) -> MatrixFile.Rule? {
        guard let reader = MappingReader(node, what: "a rule of `\(list)`", known: MatrixFile.Rule.keys, sink: sink) else { return nil }
        let rule = MatrixFile.Rule(kernel: reader.string("kernel")?.value, topology: reader.string("topology")?.value,
                                   scenario: reader.string("scenario")?.value)
        if rule.kernel == nil, rule.topology == nil, rule.scenario == nil, !reader.has("kernel"), !reader.has("topology"), !reader.has("scenario") {
            sink.error(reader.location, "a rule of `\(list)` names no cell field", fix: "give kernel, topology or scenario (a name, or `*` for any)")
        }
        return rule
    }
}
