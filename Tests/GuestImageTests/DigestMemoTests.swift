import Foundation
@testable import GuestImage
import HostSupport
import Testing

/// The digest memo serves a remembered hash only for the very same file contents: a file
/// rewritten in place with its mtime set back (as `touch -d`, tar or rsync -t leave it) is
/// hashed anew.
@Suite struct DigestMemoTests {
    @Test func aFileRewrittenWithItsOldMtimeGetsANewDigest() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("cxllab-memo-\(UUID().uuidString.prefix(6))").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let file = folder + "/input.ko"
        try "first contents".write(toFile: file, atomically: false, encoding: .utf8)
        var before = stat()
        #expect(stat(file, &before) == 0)

        var memo = DigestMemo(path: folder + "/digests.json")
        let first = try memo.sha256(of: file)
        #expect(first == (try FileDigest.sha256(ofFile: file)))
        memo.save()

        // The same size, in place (the same inode), then the old access and modification
        // times put back to the nanosecond.
        usleep(20_000)
        let handle = try #require(FileHandle(forWritingAtPath: file))
        try handle.write(contentsOf: Data("other contents".utf8))
        try handle.close()
        let times = [before.st_atim, before.st_mtim]
        #expect(utimensat(AT_FDCWD, file, times, 0) == 0)
        var after = stat()
        #expect(stat(file, &after) == 0)
        #expect(after.st_ino == before.st_ino && after.st_size == before.st_size)
        #expect(after.st_mtim.tv_sec == before.st_mtim.tv_sec && after.st_mtim.tv_nsec == before.st_mtim.tv_nsec)

        var reloaded = DigestMemo(path: folder + "/digests.json")
        let second = try reloaded.sha256(of: file)
        #expect(second != first, "the memo served the digest of the old contents")
        #expect(second == (try FileDigest.sha256(ofFile: file)))
        // Unchanged since: the remembered digest is served.
        #expect(try reloaded.sha256(of: file) == second)
    }
}
