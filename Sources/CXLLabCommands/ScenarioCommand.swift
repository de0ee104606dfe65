import ArgumentParser
import Foundation
import Scenarios

/// What `run` and `race` share at their ends: `--bisect`'s rule, and the report and exit
/// status of an outcome.
enum ScenarioCommand {
    /// Runs a command's body; with `--bisect`, whatever stops it before a verdict (a missing
    /// file, a bad argument) means this commit cannot be tested (125), not that it is bad.
    static func bisectable(_ bisect: Bool, _ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as ExitCode {
            throw error
        } catch where bisect {
            Terminal.standardError.line("Error: \(error)")
            throw ExitCode(125)
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
