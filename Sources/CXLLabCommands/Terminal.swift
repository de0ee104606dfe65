import Foundation
import HostSupport
import Synchronization

/// Progress for people: a status line rewritten in place on a terminal, plain lines otherwise.
final class Terminal: Sendable {
    static let standardError = Terminal(fileDescriptor: 2)

    private let fileDescriptor: Int32
    /// Whether a status line is on screen; held while writing, so lines never interleave.
    private let statusShown = Mutex(false)
    let isInteractive: Bool

    init(fileDescriptor: Int32) {
        self.fileDescriptor = fileDescriptor
        self.isInteractive = isatty(fileDescriptor) == 1
    }

    /// Shows what is happening now. Progress can quote a guest, so its control characters
    /// are shown as text; the terminal obeys only this class's own sequences.
    func status(_ text: String) {
        let text = VisibleText.of(text).replacingOccurrences(of: "\n", with: " ")
        statusShown.withLock { shown in
            if isInteractive {
                write("\r\u{1B}[2K\(text)")
                shown = true
            } else {
                write(text + "\n")
            }
        }
    }

    func clearStatus() {
        statusShown.withLock { shown in
            if shown { write("\r\u{1B}[2K") }
            shown = false
        }
    }

    /// A line that stays (control characters shown as text, as in `status`).
    func line(_ text: String) {
        let text = VisibleText.of(text)
        statusShown.withLock { shown in
            if shown { write("\r\u{1B}[2K") }
            shown = false
            write(text + "\n")
        }
    }

    private func write(_ text: String) {
        let bytes = Array(text.utf8)
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Foundation.write(fileDescriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if written <= 0 { break }
                offset += written
            }
        }
    }
}

enum JSONOutput {
    static func encode<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}
