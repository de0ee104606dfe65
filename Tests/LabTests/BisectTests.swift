import Foundation
import HostSupport
@testable import LabRuntime
import Testing
import TestSupport

/// `git bisect run` with `cxllab run --bisect` on a synthetic history of a module: the good
/// stand-in, a commit that does not build (125: skipped), the build fixed, then the commit
/// that makes it bind on its own (V9). Bisect must name that commit.
@Suite(.serialized, .tags(.vm, .network), .needsHost) struct BisectTests {
    func git(_ arguments: [String], in folder: String) async throws -> ProcessResult {
        let result = try await ProcessRunner.run("git", ["-c", "user.name=cxllab", "-c", "user.email=cxllab@localhost"] + arguments,
                                                 currentDirectory: folder, timeout: .seconds(1800))
        return result
    }

    @Test func gitBisectRunFindsTheCommitThatBroke() async throws {
        let repo = FileManager.default.temporaryDirectory.appendingPathComponent("cxllab-bisect-\(UUID().uuidString.prefix(6))").path
        try FileManager.default.createDirectory(atPath: repo, withIntermediateDirectories: true)
        chmod(repo, 0o755)
        defer { try? FileManager.default.removeItem(atPath: repo) }
        let standIn = LabSessionTests.root + "/images/modules/fsdev_dax"
        try FileManager.default.copyItem(atPath: standIn + "/Kbuild", toPath: repo + "/Kbuild")
        let source = try String(contentsOfFile: standIn + "/fsdev_dax.c", encoding: .utf8)
        #expect(source.contains("static bool automatch;"))
        func commit(_ text: String, _ message: String) async throws -> String {
            try text.write(toFile: repo + "/fsdev_dax.c", atomically: true, encoding: .utf8)
            _ = try await git(["add", "-A"], in: repo)
            _ = try await git(["commit", "-qm", message], in: repo)
            return try await git(["rev-parse", "HEAD"], in: repo).output.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        _ = try await git(["init", "-q"], in: repo)
        let good = try await commit(source, "good: binds only when asked")
        _ = try await commit(source + "\nthis does not compile;\n", "broken build")
        _ = try await commit(source + "\n/* build fixed */\n", "fix the build")
        let culprit = try await commit(source.replacingOccurrences(of: "static bool automatch;", with: "static bool automatch = true;") + "\n/* build fixed */\n",
                                       "bind to devdax devices by default")
        let executable = try AgentBinary.locateForTests().replacingOccurrences(of: "cxllab-agent", with: "cxllab")
        _ = try await git(["bisect", "start", culprit, good], in: repo)
        let run = try await git(["bisect", "run", executable, "run", LabSessionTests.root + "/topologies/nvdimm-single.yaml",
                                 "--module", repo, "--orders", "1", "--bisect"], in: repo)
        #expect(run.status == 0, "\(run.output)\(run.errorOutput)")
        #expect(run.output.contains("\(culprit) is the first bad commit"), "\(run.output)\(run.errorOutput)")
        _ = try await git(["bisect", "reset"], in: repo)
    }
    /// A revision that crashes the guest during the scenario is bad, not untestable: exit 1
    /// under --bisect with the crash as evidence (a crash used to become "could not run",
    /// 125, and git bisect skipped the very commit that broke the kernel).
    @Test func aCrashDuringTheScenarioIsABadRevision() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("cxllab-crasher-\(UUID().uuidString.prefix(6))").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        chmod(folder, 0o755)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let standIn = LabSessionTests.root + "/images/modules/fsdev_dax"
        try FileManager.default.copyItem(atPath: standIn + "/Kbuild", toPath: folder + "/Kbuild")
        let source = try String(contentsOfFile: standIn + "/fsdev_dax.c", encoding: .utf8)
        let probe = "static int fsdev_standin_probe(struct dev_dax *dev_dax)\n{\n\treturn 0;"
        #expect(source.contains(probe))
        // Binding it (the scenario's explicit round trip) dereferences NULL: an oops.
        try source.replacingOccurrences(of: probe, with: probe.replacingOccurrences(of: "\treturn 0;", with: "\t*(volatile int *)0 = 1;\n\treturn 0;"))
            .write(toFile: folder + "/fsdev_dax.c", atomically: true, encoding: .utf8)
        let executable = try AgentBinary.locateForTests().replacingOccurrences(of: "cxllab-agent", with: "cxllab")
        let run = try await ProcessRunner.run(executable, ["run", LabSessionTests.root + "/topologies/nvdimm-single.yaml", "--module", folder,
                                                           "--orders", "1", "--bisect"], timeout: .seconds(900))
        #expect(run.status == 1, "\(run.output)\(run.errorOutput)")
        #expect(run.output.contains("guest-crash"), "\(run.output)")
        #expect(run.output.contains("NULL pointer dereference") || run.output.contains("Oops"), "\(run.output)")
    }
}
