import Foundation
import HostSupport
import Testing

@Suite struct ProcessRunnerTests {
    @Test func capturesOutputAndStatus() async throws {
        let result = try await ProcessRunner.run("sh", ["-c", "echo out; echo err >&2; exit 3"])
        #expect(result.status == 3)
        #expect(result.output == "out\n")
        #expect(result.errorOutput == "err\n")
        #expect(!result.succeeded)
        #expect(!result.timedOut)
    }

    @Test func largeOutputDoesNotBlock() async throws {
        let result = try await ProcessRunner.run("sh", ["-c", "head -c 3000000 /dev/zero; head -c 3000000 /dev/zero >&2"], timeout: .seconds(30))
        #expect(result.standardOutput.count == 3_000_000)
        #expect(result.standardError.count == 3_000_000)
    }

    @Test func deadlineStopsAHungChild() async throws {
        let result = try await ProcessRunner.run("sleep", ["120"], timeout: .milliseconds(300))
        #expect(result.timedOut)
        #expect(!result.succeeded)
        // Well before the child's own end; loose, since the suite shares the host with guests
        // (measured once at 5.0 s under two TCG guests, against 0.3 s idle, and 11 s for a
        // like wait in a CI run's start-up stampede).
        #expect(result.duration < .seconds(60))
    }

    /// A deadline stops the child's children too (make's compilers, a shell's pipeline):
    /// left alive, they would keep the output pipes open and the run would never return.
    @Test func deadlineStopsTheChildsChildren() async throws {
        let result = try await ProcessRunner.run("sh", ["-c", "sleep 30 & sleep 30 & wait"], timeout: .milliseconds(300))
        #expect(result.timedOut)
        #expect(result.duration < .seconds(25), "well before the children's own 30 s end")
    }

    /// A finished run keeps no descriptor open, even with a long deadline still pending (it
    /// kept the process and its pipes until the deadline: 756 pipes in one test run).
    @Test func aFinishedRunKeepsNoDescriptorOpen() async throws {
        func openDescriptors() -> Int { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0 }
        _ = try await ProcessRunner.run("true", [], timeout: .seconds(600))
        let before = openDescriptors()
        for _ in 0..<100 {
            _ = try await ProcessRunner.run("true", [], timeout: .seconds(600))
            _ = try await ProcessRunner.run("cat", [], input: Data("x".utf8), timeout: .seconds(600))
        }
        // Other tests run beside this one and open their own (up to 67 measured in a CI run):
        // far fewer than the 500 or more 200 leaking runs leave.
        #expect(openDescriptors() - before < 250, "\(openDescriptors() - before) more descriptors open after 200 runs")
    }

    @Test func inputReachesTheChild() async throws {
        let result = try await ProcessRunner.run("cat", [], input: Data("hello".utf8))
        #expect(result.output == "hello")
    }

    @Test func cancellationStopsTheChild() async throws {
        let task = Task { try await ProcessRunner.run("sleep", ["30"]) }
        try await Task.sleep(for: .milliseconds(200))
        task.cancel()
        let result = try await task.value
        #expect(result.timedOut)
    }

    @Test func missingProgramIsAClearError() async throws {
        let error = try await #require(throws: ProcessRunnerError.self) {
            try await ProcessRunner.run("cxllab-no-such-program")
        }
        #expect(error.description.contains("make setup"))
    }

    @Test func checkNamesTheCommandAndItsOutput() async throws {
        let error = try await #require(throws: CommandFailure.self) {
            try await ProcessRunner.check("sh", ["-c", "echo broken thing >&2; exit 1"], context: "could not frob")
        }
        #expect(error.description.contains("could not frob"))
        #expect(error.description.contains("broken thing"))
        #expect(error.description.contains("status 1"))
    }

    @Test(arguments: [("plain", "plain"), ("a b", "'a b'"), ("it's", "'it'\\''s'"), ("", "''"), ("x=1,y", "x=1,y")])
    func quotesForTheShell(word: String, quoted: String) {
        #expect(shellQuoted(word) == quoted)
    }
}

@Suite struct CacheDirectoryTests {
    @Test func explicitBeatsEnvironment() {
        let cache = CacheDirectory.resolve(explicit: "/tmp/a", environment: ["CXLLAB_CACHE": "/tmp/b", "HOME": "/h"])
        #expect(cache.path == "/tmp/a")
    }

    @Test func environmentThenXDGThenHome() {
        #expect(CacheDirectory.resolve(environment: ["CXLLAB_CACHE": "/tmp/b", "HOME": "/h"]).path == "/tmp/b")
        #expect(CacheDirectory.resolve(environment: ["XDG_CACHE_HOME": "/x", "HOME": "/h"]).path == "/x/cxllab")
        #expect(CacheDirectory.resolve(environment: ["HOME": "/h"]).path == "/h/.cache/cxllab")
    }

    @Test func freeSpaceIsReadFromTheNearestExistingFolder() {
        let cache = CacheDirectory(path: "/tmp/cxllab-does-not-exist/yet")
        #expect((cache.freeBytes() ?? 0) > 0)
    }
}
