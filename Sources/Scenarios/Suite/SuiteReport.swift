import Foundation
import HostSupport

/// What a run of ndctl's test suite found: per test its verdict, time, and the last lines of
/// its output and of the kernel's log as evidence, with the command that runs it alone.
public struct SuiteReport: Sendable, Codable {
    public struct TestResult: Sendable, Codable, Hashable {
        public let name: String
        public let suite: String
        /// pass, fail, error (could not start), n/a (skipped: exit 77, or not run and why).
        public let verdict: Verdict
        /// The exit status; nil when the test was not run.
        public let status: Int32?
        public let seconds: Double
        public let message: String?
        public let output: [String]
        public let kernelLog: [String]
        public let repro: String

        public var skipped: Bool { verdict == .notApplicable }
    }

    public let ndctlVersion: String
    /// Each test module set and what became of it (built, or why not).
    public let testModules: [String: String]
    /// Modules loaded before the suite started, in order.
    public let loadedFirst: [String]
    public let results: [TestResult]

    public var cases: [CaseResult] {
        results.map { result in
            CaseResult(name: result.name, round: 0, verdict: result.verdict, seconds: result.seconds, message: result.message,
                       evidence: result.output.map { "| " + $0 } + result.kernelLog.map { "kernel: " + $0 } + ["repro: " + result.repro])
        }
    }

    /// exit status 77 is meson's skip; 124 the agent's deadline.
    static func verdict(status: Int32) -> Verdict {
        switch status {
        case 0: .pass
        case 77: .notApplicable
        case 127: .error
        default: .fail
        }
    }

    /// The words a skipped or failed test ends with: ndctl's tests say why on their last lines.
    static func message(status: Int32, timedOut: Bool, timeout: Int, output: [String]) -> String? {
        let last = output.last { !$0.trimmingCharacters(in: .whitespaces).isEmpty }?.trimmingCharacters(in: .whitespaces)
        switch status {
        case 0: return nil
        case 77:
            // The test's own words: not bash's trace ("++ exit 77"), the libraries' debug log
            // or the harness's count ("attempted: 1 skipped: 1").
            let said = output.map { $0.trimmingCharacters(in: .whitespaces) }.filter { line in
                !line.isEmpty && !line.hasPrefix("+") && !line.hasPrefix("attempted: ") && !libraryLogPrefixes.contains { line.hasPrefix($0) }
            }
            let reason = said.last { line in
                ["skip", "missing", "requires", "unable", "cannot", "not supported", "failed to find", "lacks"].contains { line.localizedCaseInsensitiveContains($0) }
            }
            return "skipped: " + (reason ?? said.last ?? last ?? "exit 77")
        case 124 where timedOut: return "timed out after \(timeout) s"
        default:
            // ndctl's scripts stop with "test/dm.sh: failed at line 70" and then clean up, which
            // complains too: the complaint is the last one before the first such line. Without
            // one, a test's JSON dumps and progress come last: the last line that complains.
            let stop = output.firstIndex { $0.range(of: #"failed at line [0-9]+"#, options: .regularExpression) != nil }
            let complaint = stop.map { complaints(in: Array(output[..<$0])).last ?? output[$0] }
                ?? complaints(in: output).last ?? complaints(in: output, libraries: true).last
            return "exit \(status)" + ((complaint ?? last).map { ": \($0.trimmingCharacters(in: .whitespaces))" } ?? "")
        }
    }

    /// Lines where a test, or the shell running it, says what went wrong. The libraries' debug
    /// log counts only with `libraries` (when the test said nothing itself, as device-dax's C
    /// code returning the library's -ENXIO does): with the tests' log level it reports every
    /// seed device's unreadable size ("libndctl: __sysfs_read_attr: failed to read
    /// .../dax0.1/size") on passing runs too.
    static func complaints(in output: [String], libraries: Bool = false) -> [String] {
        output.filter { line in
            (libraries || !libraryLogPrefixes.contains { line.hasPrefix($0) })
                && ["fail", "error", "not ok", "unable", "cannot", "no such file", "not found", "does not exist", "too long"].contains { line.localizedCaseInsensitiveContains($0) }
        }
    }

    static let libraryLogPrefixes = ["libndctl: ", "libdaxctl: ", "libcxl: "]

    /// What a failed test's evidence keeps of its output: its last lines, after the lines
    /// before them that say what failed (ndctl's tests often end with a JSON dump).
    static func evidence(_ output: [String], keep: Int = 40) -> [String] {
        let tail = Array(output.suffix(keep))
        let earlier = complaints(in: Array(output.dropLast(keep))).suffix(5)
        return earlier.isEmpty ? tail : Array(earlier) + ["..."] + tail
    }

    public var passed: [TestResult] { results.filter { $0.verdict == .pass } }
    public var skips: [TestResult] { results.filter(\.skipped) }
    public var failures: [TestResult] { results.filter { $0.verdict.isFailure } }

    /// For every report: the suite's shape, then each failure with its evidence and repro.
    public func summary() -> [String] {
        var lines = ["ndctl \(ndctlVersion) tests: \(passed.count) passed, \(failures.count) failed, \(skips.count) skipped"]
        for (set, state) in testModules.sorted(by: { $0.key < $1.key }) { lines.append("  \(set): \(state)") }
        if !loadedFirst.isEmpty { lines.append("  loaded first: \(loadedFirst.joined(separator: ", "))") }
        for skip in skips { lines.append("  skipped \(skip.name): \((skip.message ?? "").replacingOccurrences(of: "skipped: ", with: ""))") }
        for failure in failures {
            lines.append("")
            lines.append("\(failure.name) (\(failure.suite)): \(failure.message ?? "failed")")
            lines += failure.output.suffix(15).map { "  | " + $0 }
            lines += failure.kernelLog.suffix(10).map { "  kernel: " + $0 }
            lines.append("  repro: \(failure.repro)")
        }
        return lines
    }
}
