import ArgumentParser
import Foundation
import HostSupport

/// How an error that stops a command after its arguments were parsed is said and what status
/// it exits with. argument-parser would print the root command's usage ("cxllab
/// <subcommand>") for a `ValidationError` thrown while running, exit 1 for anything else (the
/// status of a failed check), and give Foundation's words for a file error.
enum FailedCommand {
    /// The words and status for `error`, thrown by `command`'s run.
    static func message(for error: any Error, in command: any ParsableCommand.Type) -> (text: String, status: Int32) {
        let ownError = command == CXLLab.Exec.self ? ExitStatus.execOwnError : ExitStatus.couldNotRun
        switch error {
        case let code as ExitCode:
            return ("", code.rawValue)
        case let validation as ValidationError:
            let status = command == CXLLab.Exec.self ? ExitStatus.execOwnError : ExitStatus.usage
            return ("Error: \(validation.message)\n" + usage(of: command), status)
        default:
            return ("Error: \(words(for: error))", ownError)
        }
    }

    /// An error argument-parser made itself (a help request, a parser error), which it alone
    /// knows how to print; `ValidationError` and `ExitCode` are the commands' own.
    static func isArgumentParsers(_ error: any Error) -> Bool {
        !(error is ValidationError) && !(error is ExitCode) && String(reflecting: type(of: error)).hasPrefix("ArgumentParser.")
    }

    /// The subcommand's own usage line, and where its help is.
    static func usage(of command: any ParsableCommand.Type) -> String {
        let names = commandPath(of: command)
        return "Usage: \(CXLLab.usageString(for: command))\n  See '\(names) --help' for more information."
    }

    /// `cxllab topology validate`: the names from the root down to `command`.
    static func commandPath(of command: any ParsableCommand.Type) -> String {
        func path(under parent: any ParsableCommand.Type) -> [String]? {
            if parent == command { return [parent._commandName] }
            for child in parent.configuration.subcommands {
                if let rest = path(under: child) { return [parent._commandName] + rest }
            }
            return nil
        }
        return (path(under: CXLLab.self) ?? ["cxllab", command._commandName]).joined(separator: " ")
    }

    /// An error in words that name what it is about: a Foundation file error names its file
    /// and cause instead of "The operation could not be completed".
    static func words(for error: any Error) -> String {
        let bridged = error as NSError
        if bridged.domain == NSCocoaErrorDomain || bridged.domain == NSPOSIXErrorDomain {
            let reason = InputFile.reason(of: error)
            guard let path = InputFile.path(of: error) else { return reason }
            return "\(path): \(reason); check the path, and that its folder exists and this user may use it"
        }
        return String(describing: error)
    }
}
