import Foundation

/// What QEMU itself said before it died, from the log the system libvirtd keeps of each
/// domain's QEMU (its stderr). When QEMU dies the guest is not at fault, and its console
/// says nothing: this is the only place the reason is written (an assertion, usually).
enum EmulatorLog {
    static let folder = "/var/log/libvirt/qemu"

    /// QEMU's last complaint during the domain's latest start, or nil when the log is absent,
    /// unreadable or says nothing beyond warnings.
    static func lastComplaint(domainName: String, folder: String = folder) -> String? {
        guard let handle = FileHandle(forReadingAtPath: folder + "/" + domainName + ".log") else { return nil }
        defer { try? handle.close() }
        // The tail is enough: one start writes its command line and a few lines.
        let end = (try? handle.seekToEnd()) ?? 0
        try? handle.seek(toOffset: end > 65536 ? end - 65536 : 0)
        guard let data = try? handle.readToEnd() else { return nil }
        return lastComplaint(inLog: String(decoding: data, as: UTF8.self))
    }

    /// The last line of the latest start that QEMU wrote as an error: libvirt's own lines
    /// (timestamped "starting up"/"shutting down"), the command line and warnings are not.
    static func lastComplaint(inLog text: String) -> String? {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
        let start = lines.lastIndex { $0.contains(": starting up ") }.map { $0 + 1 } ?? 0
        return lines[start...].last { line in
            let lower = line.lowercased()
            return (line.contains("qemu-system") || lower.contains("assertion") || lower.contains("error"))
                && !line.hasPrefix("/") && !line.hasSuffix("\\") && !lower.contains("warning")
                && !line.contains("shutting down, reason=") && !line.contains("terminating on signal")
        }
    }
}
