import ArgumentParser
import Foundation
import HostSupport
import LabRuntime
import Scenarios

/// A command that runs one scenario in one lab (`run`, `race`, `suite`): its settings refused
/// before anything runs, in the scenario's own words, and `--bisect`'s rule for whatever stops
/// it before a verdict.
protocol ScenarioRunCommand: ContextCommand {
    var bisect: Bool { get }
    /// What is wrong with the settings, by the rule matrix files follow too; nil when they can run.
    var settingsProblem: String? { get }
    func execute(_ context: LabContext) async throws
}

extension ScenarioRunCommand {
    func validate() throws {
        try ScenarioCommand.refuse(settingsProblem, bisect: bisect)
    }

    func run(in context: LabContext) async throws {
        try await ScenarioCommand.bisectable(bisect) { try await execute(context) }
    }
}

/// What `run`, `race` and `suite` share: `--bisect`'s rule, refusing settings before they
/// run, and the report and exit status of an outcome.
enum ScenarioCommand {
    /// Runs a command's body; with `--bisect`, whatever stops it before a verdict (a missing
    /// file, a bad argument) means this commit cannot be tested (125), not that it is bad.
    static func bisectable(_ bisect: Bool, _ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as ExitCode {
            throw error
        } catch where bisect {
            throw untestable(error)
        }
    }

    /// Says why, and gives `git bisect` its "cannot test this commit".
    static func untestable(_ reason: Any) -> ExitCode {
        Terminal.standardError.line("Error: \(reason)")
        return ExitCode(125)
    }

    /// Refuses settings a scenario cannot run with, from a command's `validate()`, in the
    /// words of the scenario's own check (the one matrix files use too): argument-parser
    /// prints them with the command's usage line. With `--bisect` it is 125 instead, as for
    /// any error before a verdict: a usage error's status would mark the commit bad.
    static func refuse(_ problem: String?, bisect: Bool) throws {
        guard let problem else { return }
        if bisect { throw untestable(problem) }
        throw ValidationError(problem)
    }

    /// The cell in its lab, its progress on the terminal's status line.
    static func run<S: Scenario>(_ cell: ScenarioCell<S>, context: LabContext) async -> CellOutcome {
        let terminal = Terminal.standardError
        let outcome = await cell.run(context: context) { terminal.status($0) }
        terminal.clearStatus()
        return outcome
    }

    /// Prints the outcome for people or as JSON, and exits as its verdict says.
    static func finish(_ outcome: CellOutcome, json: Bool, bisect: Bool) throws {
        if json {
            print(try JSONOutput.encode(outcome))
        } else {
            print(outcome.rendered())
        }
        let status = outcome.outcome.verdict.exitStatus(bisect: bisect)
        if status != 0 { throw ExitCode(status) }
    }
}
