import Foundation
import HostSupport
@testable import LabRuntime
import Libvirt
import Testing
import TestSupport

/// docs/TUTORIAL.md cannot rot: every line of its `sh` blocks runs, in order, in real labs,
/// and each `⇒ "text"` and `exit N` its comments state is checked.
@Suite(.serialized, .tags(.vm, .network), .needsHost) struct TutorialTests {
    struct Step: Equatable {
        let command: String
        let expected: [String]
        let exit: Int32
    }

    /// The runnable lines of a Markdown file: those of its ```sh blocks (```shell blocks are
    /// shown, not run).
    static func steps(_ markdown: String) -> [Step] {
        var steps: [Step] = []
        var inBlock = false
        for raw in markdown.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("```") {
                inBlock = !inBlock && line == "```sh"
                continue
            }
            guard inBlock, !line.isEmpty, !line.hasPrefix("#") else { continue }
            // The comment is what follows the last " # "; the command may hold none.
            let comment = line.range(of: " # ", options: .backwards).map { String(line[$0.upperBound...]) } ?? ""
            var expected: [String] = []
            if let arrow = comment.range(of: "⇒ ") {
                var text = comment[arrow.upperBound...].trimmingCharacters(in: .whitespaces)
                if text.hasPrefix("\"") && text.hasSuffix("\"") && text.count >= 2 { text = String(text.dropFirst().dropLast()) }
                expected.append(text)
            }
            let exit = comment.range(of: #"exit (\d+)"#, options: .regularExpression)
                .flatMap { Int32(comment[$0].split(separator: " ").last ?? "") } ?? 0
            steps.append(Step(command: line, expected: expected, exit: exit))
        }
        return steps
    }

    @Test func theMarkersAreRead() {
        let text = """
            ```sh
            cxllab exec pm -- ndctl list -R      # ⇒ "available_size":1073741824
            # a comment line
            cxllab run t.yaml --orders 2   # exit 1 ⇒ "fsdev_dax bound"
            ```
            ```shell
            cxllab run --kernel build:.
            ```
            """
        #expect(Self.steps(text) == [
            Step(command: "cxllab exec pm -- ndctl list -R      # ⇒ \"available_size\":1073741824", expected: ["\"available_size\":1073741824"], exit: 0),
            Step(command: "cxllab run t.yaml --orders 2   # exit 1 ⇒ \"fsdev_dax bound\"", expected: ["fsdev_dax bound"], exit: 1),
        ])
    }

    static let labs = ["pm", "cx", "sw", "il"]

    @Test func everyStepRunsAsPrinted() async throws {
        let text = try String(contentsOfFile: LabSessionTests.root + "/docs/TUTORIAL.md", encoding: .utf8)
        let steps = Self.steps(text)
        #expect(steps.count >= 50 && steps.filter { !$0.expected.isEmpty }.count >= 30, "the tutorial's runnable steps were not found")
        for name in Self.labs where try Connection().lookupDomain(named: LabNames.domainName(name)) != nil {
            Issue.record("a lab named '\(name)' is running here; the tutorial needs that name (cxllab down \(name))")
            return
        }
        defer {
            for name in Self.labs {
                _ = try? Connection().lookupDomain(named: LabNames.domainName(name)).map { try? $0.destroy() }
                try? FileManager.default.removeItem(atPath: LabContext.forTests().paths.root + "/" + LabNames.domainName(name))
            }
        }
        try? FileManager.default.removeItem(atPath: "/tmp/cxllab-tutorial")
        let executable = try AgentBinary.locateForTests().replacingOccurrences(of: "cxllab-agent", with: "cxllab")
        var environment = ProcessInfo.processInfo.environment
        environment["CXLLAB_BIN"] = executable
        for step in steps {
            let result = try await ProcessRunner.run("/bin/bash", ["-c", "cxllab() { \"$CXLLAB_BIN\" \"$@\"; }; " + step.command],
                                                     environment: environment, currentDirectory: LabSessionTests.root, timeout: .seconds(600))
            let said = result.output + result.errorOutput
            try #require(result.status == step.exit, "`\(step.command)` exited \(result.status), the tutorial says \(step.exit): \(said)")
            for expected in step.expected {
                #expect(said.contains(expected), "`\(step.command)`: the tutorial says its output has \(expected); it said: \(said.suffix(3000))")
            }
        }
        for name in Self.labs {
            #expect(try Connection().lookupDomain(named: LabNames.domainName(name)) == nil, "the tutorial takes lab \(name) down")
        }
    }
}
