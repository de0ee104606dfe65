import Foundation

/// Progress for people: a status line rewritten in place on a terminal, plain lines otherwise.
final class Terminal: @unchecked Sendable {
    static let standardError = Terminal(fileDescriptor: 2)

    private let fileDescriptor: Int32
    private let lock = NSLock()
    private var statusShown = false
    let isInteractive: Bool

    init(fileDescriptor: Int32) {
        self.fileDescriptor = fileDescriptor
        self.isInteractive = isatty(fileDescriptor) == 1
    }

    /// Shows what is happening now.
    func status(_ text: String) {
        lock.lock()
        defer { lock.unlock() }
        if isInteractive {
            write("\r\u{1B}[2K\(text)")
            statusShown = true
        } else {
            write(text + "\n")
        }
    }

    func clearStatus() {
        lock.lock()
        defer { lock.unlock() }
        if statusShown { write("\r\u{1B}[2K") }
        statusShown = false
    }

    /// A line that stays.
    func line(_ text: String) {
        lock.lock()
        defer { lock.unlock() }
        if statusShown { write("\r\u{1B}[2K") }
        statusShown = false
        write(text + "\n")
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
