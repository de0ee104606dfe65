import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A line per slot event (wait, take, give) appended to the file CXLLAB_SLOT_TRACE names:
/// the time, the process, and who (a label, else the command line). Where a test suite's
/// guest time goes is otherwise invisible: its tests wait for slots far longer than they
/// hold them. Off unless the variable is set; a line that cannot be written is dropped.
struct SlotTrace: Sendable {
    let path: String
    let label: (@Sendable () -> String?)?

    static func fromEnvironment(label: (@Sendable () -> String?)?) -> SlotTrace? {
        guard let path = ProcessInfo.processInfo.environment["CXLLAB_SLOT_TRACE"], !path.isEmpty else { return nil }
        return SlotTrace(path: path, label: label)
    }

    func record(_ event: String) {
        let who = label?() ?? CommandLine.arguments.dropFirst().prefix(4).joined(separator: " ")
        let line = String(format: "%.3f", Date().timeIntervalSince1970) + " \(getpid()) \(event) \(who)\n"
        let descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { return }
        // One write per line with O_APPEND: lines of concurrent processes do not interleave.
        _ = line.withCString { write(descriptor, $0, strlen($0)) }
        close(descriptor)
    }
}
