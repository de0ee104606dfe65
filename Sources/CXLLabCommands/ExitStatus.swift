import ArgumentParser

/// The exit statuses of cxllab, said once. Each command says what its 0 and 1 mean; 2, 64 and
/// 125 mean the same in every command, and every command's help ends with the list.
struct ExitStatus {
    /// What the command did when it exits 0.
    let success: String
    /// What a failed check means (1), or nil for a command that checks nothing.
    let failure: String?
    /// Whether the command takes `--bisect` (125).
    var bisect = false

    /// cxllab could not do what it was asked (a missing file, a kernel not fetched, a lab that
    /// did not boot): not a verdict on the kernel.
    static let couldNotRun: Int32 = 2
    /// The command line is wrong (argument-parser's EX_USAGE).
    static let usage: Int32 = ExitCode.validationFailure.rawValue
    /// `git bisect run`'s "cannot test this commit".
    static let bisectSkip: Int32 = 125
    /// `exec`'s own errors, kept apart from the guest command's statuses (as ssh does).
    static let execOwnError: Int32 = 255

    static let couldNotRunLine = "could not be done: a missing file, no such kernel, a boot that failed"
    static let usageLine = "the command line is wrong: the message names the argument"
    static let bisectLine = "with --bisect, for a run that could not be done; bad inputs stay 2"
    static let bisectFlagHelp = """
        For `git bisect run`: exit 125 (skip this commit) instead of 2 when the run is not applicable or could not \
        be done (not for unusable inputs, the same mistake at every commit).
        """

    /// The help's list, each status with its meaning (a meaning is kept under 71 columns, so
    /// its row fits 80 and the help never wraps it).
    var text: String {
        var rows = [("0", success), ("1", failure ?? "not used: this command checks nothing"),
                     ("2", Self.couldNotRunLine), ("64", Self.usageLine)]
        if bisect { rows.append(("125", Self.bisectLine)) }
        return Self.list(rows)
    }

    /// `exec`'s list: the guest command's status passes through, so cxllab's own errors (usage
    /// errors too) take one status the guest's commands rarely use.
    static let exec = list([("0-254", "the command's own exit status, as the guest returned it"),
                            ("255", "cxllab's own error: no such lab, no answer, a wrong command line")])

    static func list(_ rows: [(String, String)]) -> String {
        "Exit status:\n" + rows.map { "  " + $0.0.padding(toLength: 7, withPad: " ", startingAt: 0) + $0.1 }.joined(separator: "\n")
    }
}

/// A command's discussion: what it does, its examples (kept to 79 columns, so the help's
/// wrapping never breaks one), and its exit statuses.
enum CommandHelp {
    static func discussion(_ text: String = "", examples: [String] = [], exit: String) -> String {
        var parts: [String] = []
        if !text.isEmpty { parts.append(text) }
        if !examples.isEmpty { parts.append("Examples:\n" + examples.map { "  " + $0 }.joined(separator: "\n")) }
        parts.append(exit)
        return parts.joined(separator: "\n\n")
    }

    static func discussion(_ text: String = "", examples: [String] = [], exit: ExitStatus) -> String {
        discussion(text, examples: examples, exit: exit.text)
    }
}
