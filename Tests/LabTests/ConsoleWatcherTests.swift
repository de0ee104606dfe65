import Foundation
@testable import LabRuntime
@testable import Scenarios
@testable import Matrix
@testable import Bench
import Testing

@Suite struct ConsoleWatcherTests {
    @Test(arguments: [
        ("[    6.975433] Kernel panic - not syncing: sysrq triggered crash", ConsoleAlert.Kind.panic),
        ("[    1.0] BUG: kernel NULL pointer dereference, address: 0000000000000000", .bug),
        ("[    1.0] Oops: general protection fault, probably for non-canonical address", .oops),
        ("[    1.0] WARNING: CPU: 0 PID: 1 at drivers/dax/bus.c:123 foo+0x1/0x2", .warning),
        ("[  245.1] INFO: task kworker/0:1:42 blocked for more than 120 seconds.", .hungTask),
    ])
    func classifiesAlarmingLines(line: String, kind: ConsoleAlert.Kind) {
        #expect(ConsoleAlert.classify(line)?.kind == kind)
    }

    @Test func quietLinesAreNotAlerts() {
        #expect(ConsoleAlert.classify("cxllab-init: modules loaded at 2.95 s") == nil)
    }

    @Test func followsAppendsTruncationAndReplacement() async throws {
        let folder = FileManager.default.temporaryDirectory.path + "/cxllab-console-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/console.log"
        let watcher = ConsoleWatcher(path: path)
        defer { watcher.stop() }
        try "boot line\n".write(toFile: path, atomically: false, encoding: .utf8)
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        // Serial consoles end lines with \r\n.
        handle.write(Data("more\r\n[ 1.0] Kernel panic - not syncing: test\r\n".utf8))
        let fatal = await watcher.waitForFatal(deadline: .seconds(10))
        #expect(fatal?.line.contains("not syncing: test") == true)
        #expect(watcher.contents.contains("boot line"))
        try handle.close()
    }

    @Test func waitingEndsAtTheDeadlineWithoutAPanic() async throws {
        let watcher = ConsoleWatcher(path: "/nonexistent/console.log")
        defer { watcher.stop() }
        let clock = ContinuousClock()
        let start = clock.now
        #expect(await watcher.waitForFatal(deadline: .milliseconds(300)) == nil)
        // Only a guard against hanging: the test process's two pool threads are shared with
        // every VM suite starting at once, which has delayed this wake-up by 52 s in CI.
        #expect(clock.now - start >= .milliseconds(300))
        #expect(clock.now - start < .seconds(300))
    }
}

