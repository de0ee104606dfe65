#if canImport(Glibc)
import Glibc
#endif

/// The kernel's log through /dev/kmsg: each read returns one record, `pri,seq,ts,flags;text`.
/// A mark is a sequence number, so "what the kernel said since the mark" survives the ring
/// wrapping better than counting lines.
struct KernelLog {
    let files: GuestFiles

    func records() -> [(sequence: Int64, text: String)] {
        let fd = open(files.path("/dev/kmsg"), O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var result: [(Int64, String)] = []
        var buffer = [UInt8](repeating: 0, count: 8192)
        while true {
            let count = read(fd, &buffer, buffer.count)
            if count < 0 {
                if errno == EPIPE { continue }  // records overwritten while reading: go on
                break
            }
            if count == 0 { break }
            let record = String(decoding: buffer[0..<count], as: UTF8.self)
            guard let semicolon = record.firstIndex(of: ";") else { continue }
            let header = record[..<semicolon].split(separator: ",")
            guard header.count >= 2, let sequence = Int64(header[1]) else { continue }
            let text = record[record.index(after: semicolon)...].split(separator: "\n", omittingEmptySubsequences: false).first ?? ""
            result.append((sequence, String(text)))
        }
        return result
    }

    func lastSequence() -> Int64 { records().last?.sequence ?? -1 }

    func lines(after mark: Int64) -> [String] { records().filter { $0.sequence > mark }.map(\.text) }
}
