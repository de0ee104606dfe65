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
            let reason = output.last { $0.localizedCaseInsensitiveContains("skip") || $0.contains("missing") || $0.contains("requires") }
            return "skipped: " + (reason ?? last ?? "exit 77").trimmingCharacters(in: .whitespaces)
        case 124 where timedOut: return "timed out after \(timeout) s"
        default:
            // A test's JSON dumps and progress come last; its complaint is the last line that says so.
            let complaint = complaints(in: output).last
            return "exit \(status)" + ((complaint ?? last).map { ": \($0.trimmingCharacters(in: .whitespaces))" } ?? "")
        }
    }

    /// Lines where a test says what went wrong.
    static func complaints(in output: [String]) -> [String] {
        output.filter { line in ["fail", "error", "not ok", "unable", "cannot"].contains { line.localizedCaseInsensitiveContains($0) } }
    }

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
