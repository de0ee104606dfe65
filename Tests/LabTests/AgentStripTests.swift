import Foundation
import HostSupport
@testable import LabRuntime
import Testing

/// The agent is stripped with a deadline: a strip that hangs fails the lab, with the reason.
@Suite(.timeLimit(.minutes(1))) struct AgentStripTests {
    func scratch() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("cxllab-strip-\(UUID().uuidString.prefix(6))").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func aStripThatHangsFailsAtItsDeadline() async throws {
        let folder = try scratch()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let hanging = folder + "/strip"
        try "#!/bin/sh\nexec sleep 300\n".write(toFile: hanging, atomically: true, encoding: .utf8)
        chmod(hanging, 0o755)
        let clock = ContinuousClock()
        let start = clock.now
        do {
            try await AgentBinary.strip("/bin/true", to: folder + "/agent", tool: hanging, deadline: .milliseconds(500))
            Issue.record("a strip that never ends succeeded")
        } catch let error as LabError {
            #expect(error.message.contains("strip did not finish within") && error.message.contains("/bin/true"), "\(error.message)")
        }
        // Well short of the hanging strip's 300 s: a guard against waiting for it, not a
        // latency bound (a CI run's start-up stampede has delayed the wake-up by 11 s).
        #expect(clock.now - start < .seconds(120))
        #expect(!FileManager.default.fileExists(atPath: folder + "/agent"))
    }

    @Test func aStripThatWorksPlacesTheCopy() async throws {
        let folder = try scratch()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try await AgentBinary.strip(URL(fileURLWithPath: "/bin/true").resolvingSymlinksInPath().path, to: folder + "/agent", deadline: .seconds(60))
        #expect(FileManager.default.isExecutableFile(atPath: folder + "/agent"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["agent"])
    }
}
