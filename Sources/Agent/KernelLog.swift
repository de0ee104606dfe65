#if canImport(Glibc)
import Glibc
#endif

/// The kernel's log through /dev/kmsg: each read returns one record, `pri,seq,ts,flags;text`.
/// A mark is a sequence number, so "what the kernel said since the mark" survives the ring
/// wrapping better than counting lines.
///
/// One reader for the agent's life, its descriptor kept open: each call reads only the records
/// that arrived since the last, instead of the whole ring (under TCG, reading and parsing a
/// booted kernel's few thousand records took a third of a second per mark, a third of a
/// driver-order run's guest time). The records are kept up to a bound; a mark older than what
/// is kept gives every kept line, as a ring that wrapped past it would.
final class KernelLog {
    let files: GuestFiles
    let keep: Int
    private var descriptor: Int32 = -1
    private var records: [(sequence: Int64, text: String)] = []
    private var buffer = [UInt8](repeating: 0, count: 8192)

    init(files: GuestFiles, keep: Int = 20_000) {
        self.files = files
        self.keep = max(1, keep)
    }

    deinit { if descriptor >= 0 { close(descriptor) } }

    /// Reads what arrived since the last call; nothing when /dev/kmsg cannot be opened.
    private func catchUp() {
        if descriptor < 0 {
            descriptor = open(files.path("/dev/kmsg"), O_RDONLY | O_NONBLOCK | O_CLOEXEC)
            guard descriptor >= 0 else { return }
        }
        while true {
            let count = read(descriptor, &buffer, buffer.count)
            if count < 0 {
                if errno == EPIPE { continue }  // records overwritten while reading: go on
                break  // EAGAIN: nothing more for now
            }
            if count == 0 { break }
            let record = String(decoding: buffer[0..<count], as: UTF8.self)
            guard let semicolon = record.firstIndex(of: ";") else { continue }
            let header = record[..<semicolon].split(separator: ",")
            guard header.count >= 2, let sequence = Int64(header[1]) else { continue }
            let text = record[record.index(after: semicolon)...].split(separator: "\n", omittingEmptySubsequences: false).first ?? ""
            records.append((sequence, String(text)))
        }
        if records.count > keep { records.removeFirst(records.count - keep) }
    }

    func lastSequence() -> Int64 {
        catchUp()
        return records.last?.sequence ?? -1
    }

    func lines(after mark: Int64) -> [String] {
        catchUp()
        // Sequence numbers only grow: the lines after the mark are a suffix.
        let start = records.lastIndex { $0.sequence <= mark }.map { $0 + 1 } ?? 0
        return records[start...].map(\.text)
    }
}
