import Foundation
import HostSupport
@testable import LabRuntime
import Libvirt
import Testing

/// The runnable lines of a document and how they are run: the tutorial and the onboarding
/// pages share it, so every page is read and checked the same way.
enum DocSteps {
    struct Step: Equatable {
        let command: String
        let expected: [String]
        let exit: Int32
    }

    /// The runnable lines of a Markdown file: those of its ```sh blocks (```shell blocks are
    /// shown, not run). A comment's `⇒ "text"` is output the line must print, `exit N` its
    /// exit status (0 unless said).
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

    /// The info strings of a Markdown file's fenced blocks, in order (`sh`, `text`, ...).
    static func fenceKinds(_ markdown: String) -> [String] {
        var kinds: [String] = []
        var inBlock = false
        for raw in markdown.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            guard line.hasPrefix("```") else { continue }
            if !inBlock { kinds.append(String(line.dropFirst(3))) }
            inBlock.toggle()
        }
        return kinds
    }

    /// The labs a document's steps make (`--name NAME`), which must not be running before and
    /// are gone after.
    static func labNames(_ steps: [Step]) -> [String] {
        var names: [String] = []
        for step in steps {
            guard let range = step.command.range(of: #"--name [a-z0-9-]+"#, options: .regularExpression) else { continue }
            let name = String(step.command[range].dropFirst("--name ".count))
            if !names.contains(name) { names.append(name) }
        }
        return names
    }

    static func document(_ relativePath: String) throws -> String {
        try String(contentsOfFile: LabSessionTests.root + "/" + relativePath, encoding: .utf8)
    }

    /// Runs every step in order, each through bash from the project's folder with `cxllab`
    /// meaning this build, and checks its exit status and stated output. A lab of the same
    /// name running already is someone's: the run stops before touching it.
    static func run(_ steps: [Step], source: String) async throws {
        let labs = labNames(steps)
        let paths = LabContext.forTests().paths
        for name in labs where try Connection().lookupDomain(named: paths.domainName(ofLab: name)) != nil {
            Issue.record("a lab named '\(name)' is running here; \(source) needs that name (cxllab down \(name))")
            return
        }
        defer {
            // A failed step must not leave a lab running.
            for name in labs { LabCommandTests.removeLab(name) }
        }
        let executable = try AgentBinary.locateForTests().replacingOccurrences(of: "cxllab-agent", with: "cxllab")
        var environment = ProcessInfo.processInfo.environment
        environment["CXLLAB_BIN"] = executable
        for step in steps {
            let result = try await ProcessRunner.run("/bin/bash", ["-c", "cxllab() { \"$CXLLAB_BIN\" \"$@\"; }; " + step.command],
                                                     environment: environment, currentDirectory: LabSessionTests.root, timeout: .seconds(1800))
            let said = result.output + result.errorOutput
            try #require(result.status == step.exit, "`\(step.command)` exited \(result.status), \(source) says \(step.exit): \(said)")
            for expected in step.expected {
                #expect(said.contains(expected), "`\(step.command)`: \(source) says its output has \(expected); it said: \(said.suffix(3000))")
            }
        }
        for name in labs {
            #expect(try Connection().lookupDomain(named: paths.domainName(ofLab: name)) == nil, "\(source) takes lab \(name) down")
            #expect(LabPaths.nameLinkTarget(paths.folder(ofDomain: LabNames.domainName(name))) == nil, "\(source) takes lab \(name) down, its name too")
        }
    }
}
