@testable import Agent
import Foundation
import Testing

/// The agent's kernel log reader keeps its descriptor and reads only what arrived since its
/// last call. A regular file stands in for /dev/kmsg: written one record at a time, each read
/// returns one record, as /dev/kmsg's reads do.
@Suite struct KernelLogTests {
    @Test func marksAndLinesFollowRecordsAsTheyArrive() throws {
        let root = NSTemporaryDirectory() + "cxllab-kmsg-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: root + "/dev", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let kmsg = root + "/dev/kmsg"
        func append(_ record: String) throws {
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: kmsg))
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(record.utf8))
            try handle.close()
        }
        #expect(FileManager.default.createFile(atPath: kmsg, contents: Data("6,41,100,-;booted\n".utf8)))
        let log = KernelLog(files: GuestFiles(root: root), keep: 2)
        let mark = log.lastSequence()
        #expect(mark == 41)
        #expect(log.lines(after: mark).isEmpty)
        try append("4,42,200,-;first\n SUBSYSTEM=dax\n")
        #expect(log.lines(after: mark) == ["first"])
        try append("4,43,300,-;second\n")
        #expect(log.lines(after: mark) == ["first", "second"])
        #expect(log.lastSequence() == 43)
        // Beyond what is kept, a mark gives every kept line, as a wrapped ring would.
        try append("4,44,400,-;third\n")
        #expect(log.lines(after: mark) == ["second", "third"])
        #expect(log.lines(after: 44).isEmpty)
    }

    @Test func noLogIsNoMarkAndNoLines() {
        let log = KernelLog(files: GuestFiles(root: "/nonexistent-cxllab-root"))
        #expect(log.lastSequence() == -1)
        #expect(log.lines(after: -1).isEmpty)
    }
}
