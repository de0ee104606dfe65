import ArgumentParser
@testable import CXLLabCommands
import Foundation
import HostSupport
import LabRuntime
import Testing

/// Every command's `--help`, as argument-parser prints it: its exit statuses listed from the
/// one shared text, lines that fit 80 columns, examples that the wrapping leaves whole.
@Suite struct CommandHelpTests {
    /// `cxllab` and every command under it.
    static let everyCommand: [ParsableCommand.Type] = [CXLLab.self] + SharedOptionsTests.commands()

    static func name(_ command: ParsableCommand.Type) -> String { FailedCommand.commandPath(of: command) }

    @Test func everyCommandIsWalked() {
        let names = Set(Self.everyCommand.map(Self.name))
        // A sample from each level, so a walk that stopped early fails here.
        for expected in ["cxllab", "cxllab run", "cxllab exec", "cxllab topology validate", "cxllab kernel rm", "cxllab image build"] {
            #expect(names.contains(expected), "\(names.sorted())")
        }
        #expect(names.count == Self.everyCommand.count, "two commands with one name")
    }

    @Test(arguments: everyCommand.map { ObjectIdentifier($0) })
    func helpListsTheExitStatuses(_ id: ObjectIdentifier) throws {
        let command = try #require(Self.everyCommand.first { ObjectIdentifier($0) == id })
        let help = CXLLab.helpMessage(for: command, columns: 80)
        let lines = help.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let start = try #require(lines.firstIndex(of: "Exit status:"), "\(Self.name(command)) lists no exit status:\n\(help)")
        let statuses = lines[(start + 1)...].prefix { $0.hasPrefix("  ") }.map { $0.split(separator: " ").first.map(String.init) ?? "" }
        if command == CXLLab.Exec.self {
            #expect(statuses == ["0-254", "255"], "\(statuses)")
            #expect(help.contains(ExitStatus.exec))
            return
        }
        // cxllab's own list is every command's: run, race and suite take --bisect.
        let bisect = command == CXLLab.self || lines.contains { $0.hasPrefix("  --bisect ") }
        #expect(statuses == ["0", "1", "2", "64"] + (bisect ? ["125"] : []), "\(Self.name(command)): \(statuses)")
        // Said in the shared words, not in words of the command's own.
        #expect(help.contains("  2      " + ExitStatus.couldNotRunLine) && help.contains("  64     " + ExitStatus.usageLine),
                "\(Self.name(command)):\n\(help)")
        #expect(help.contains(ExitStatus.bisectLine) == bisect)
    }

    @Test(arguments: everyCommand.map { ObjectIdentifier($0) })
    func helpFitsEightyColumns(_ id: ObjectIdentifier) throws {
        let command = try #require(Self.everyCommand.first { ObjectIdentifier($0) == id })
        let help = CXLLab.helpMessage(for: command, columns: 80)
        // argument-parser prints its synopsis on one line whatever the width (it has no way to
        // wrap it); every other line is cxllab's text and must fit.
        for line in help.split(separator: "\n") where !line.hasPrefix("USAGE: ") {
            #expect(line.count <= 80, "\(Self.name(command)): \(line.count) columns: \(line)")
        }
    }

    /// An example's lines are each under 80 columns, so the help's wrapping (at 80) leaves every
    /// one as written: a wrapped example could not be pasted.
    @Test(arguments: everyCommand.map { ObjectIdentifier($0) })
    func examplesAreWholeInTheHelp(_ id: ObjectIdentifier) throws {
        let command = try #require(Self.everyCommand.first { ObjectIdentifier($0) == id })
        let discussion = command.configuration.discussion
        guard let range = discussion.range(of: "Examples:\n") else { return }
        let examples = discussion[range.upperBound...].split(separator: "\n", omittingEmptySubsequences: false).prefix { $0.hasPrefix("  ") }
        #expect(!examples.isEmpty)
        let help = CXLLab.helpMessage(for: command, columns: 80).split(separator: "\n").map(String.init)
        for example in examples {
            #expect(example.count < 80, "\(Self.name(command)): \(example.count) columns: \(example)")
            #expect(help.contains(String(example)), "\(Self.name(command)): the help wrapped \(example)")
        }
    }

    @Test func examplesAreCommandsCxllabParses() throws {
        for command in Self.everyCommand {
            let discussion = command.configuration.discussion
            guard let range = discussion.range(of: "Examples:\n") else { continue }
            var joined: [String] = []
            var pending = ""
            for line in discussion[range.upperBound...].split(separator: "\n").prefix(while: { $0.hasPrefix("  ") }) {
                let text = line.trimmingCharacters(in: .whitespaces)
                if text.hasSuffix("\\") { pending += text.dropLast() } else { joined.append(pending + text); pending = "" }
            }
            for example in joined {
                let words = example.split(separator: " ").map(String.init)
                #expect(words.first == "cxllab", "\(example)")
                // A quoted argument or a shell glob is the shell's to read, not the parser's.
                if example.contains("'") || example.contains("*") { continue }
                #expect(throws: Never.self, "\(example)") { _ = try CXLLab.parseAsRoot(Array(words.dropFirst())) }
            }
        }
    }

    @Test func theKernelCommandSpellsOutEveryForm() {
        let help = CXLLab.helpMessage(for: CXLLab.Kernel.self, columns: 80)
        for form in ["debian:SUITE", "debian:RELEASE", "build:TREE", "files:BZIMAGE"] { #expect(help.contains(form), "\(form)") }
    }
}
