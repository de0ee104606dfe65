import ArgumentParser
import Foundation
import HostSupport
import Kernels
import LabRuntime
import Matrix
import Scenarios

/// A command that runs one scenario in one lab (`run`, `race`, `suite`): its settings and
/// inputs refused before anything runs (in the scenario's own words, and before any kernel is
/// fetched or module built), and `--bisect`'s rule for whatever stops it before a verdict.
protocol ScenarioRunCommand: ContextCommand {
    var bisect: Bool { get }
    /// What is wrong with the settings, by the rule matrix files follow too; nil when they can run.
    var settingsProblem: String? { get }
    /// The kernel, topology, recipe, modules and driver names it was given.
    func inputs(in context: LabContext) -> ScenarioInputs
    func execute(_ context: LabContext) async throws
}

extension ScenarioRunCommand {
    func validate() throws {
        try ScenarioCommand.refuse(settingsProblem, bisect: bisect)
    }

    func run(in context: LabContext) async throws {
        try await ScenarioCommand.check(inputs(in: context), context: context)
        try await ScenarioCommand.bisectable(bisect) { try await execute(context) }
    }
}

/// What `run`, `race` and `suite` share: `--bisect`'s rule, refusing settings before they
/// run, and the report and exit status of an outcome.
enum ScenarioCommand {
    /// Runs a command's body; with `--bisect`, whatever stops it before a verdict once its
    /// inputs were found usable (a build that failed, a host error) means this commit cannot
    /// be tested (125), not that it is bad.
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
        Terminal.standardError.line("Error: " + ((reason as? any Error).map(FailedCommand.words) ?? "\(reason)"))
        return ExitCode(125)
    }

    /// Refuses settings a scenario cannot run with, from a command's `validate()`, in the
    /// words of the scenario's own check (the one matrix files use too): argument-parser
    /// prints them with the command's usage line. With `--bisect` it is exit 2, "could not
    /// run": a setting is the user's mistake at every commit, never a commit to skip (125).
    static func refuse(_ problem: String?, bisect: Bool) throws {
        guard let problem else { return }
        if bisect { throw inputError(ScenarioInputError(problems: [problem])) }
        throw ValidationError(problem)
    }

    /// Refuses inputs that cannot be used, all of them in one message, before anything is
    /// fetched or built: exit 2, with or without `--bisect`.
    static func check(_ inputs: ScenarioInputs, context: LabContext) async throws {
        var problems = inputs.problems(projectFiles: context.projectFiles)
        // Asking QEMU what it offers is worth it only for inputs otherwise fine.
        if problems.isEmpty, let topology = await inputs.topologyProblem(context: context) { problems.append(topology) }
        if !problems.isEmpty { throw inputError(ScenarioInputError(problems: problems)) }
    }

    /// Says what cannot be used, and exits 2.
    static func inputError(_ error: ScenarioInputError) -> ExitCode {
        Terminal.standardError.line("Error: \(error)")
        return ExitCode(2)
    }

    /// The cell in its lab, its progress on the terminal's status line.
    static func run<S: Scenario>(_ cell: ScenarioCell<S>, context: LabContext) async -> CellOutcome {
        let terminal = Terminal.standardError
        let outcome = await cell.run(context: context) { terminal.status($0) }
        terminal.clearStatus()
        return outcome
    }

    /// Writes the outcome as JUnit XML, the way a matrix writes its cells: the cell stands
    /// for its plug-in's settings on the kernel it ran on. A cell whose kernel was never
    /// resolved has an error case naming the reference it was given.
    static func writeJUnit<P: ScenarioPlugin>(
        _ path: String?, outcome: CellOutcome, plugin: P.Type, settings: P.Settings, kernel: String, topology: String,
        variant: String, seconds: Double, name: String
    ) throws {
        guard let path else { return }
        let pinned = outcome.kernel ?? PinnedKernel(reference: kernel, release: kernel, packageVersion: nil, imageSHA256: "", exactReference: kernel)
        let cell = MatrixCell(plugin, kernel: kernel, pinned: pinned, topology: topology, variant: variant, settings: settings)
        let result = CellResult(cell: cell, outcome: outcome, seconds: seconds, finished: Date())
        let xml = try JUnitReport.xml([result], name: name)
        do {
            try xml.write(toFile: path, atomically: true, encoding: .utf8)
        } catch {
            throw InputFileError(path: path, role: "JUnit file", reason: InputFile.reason(of: error),
                                 fix: "give --junit a path in a folder that exists and this user may write")
        }
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
