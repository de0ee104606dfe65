import Foundation
import HostSupport
import Kernels
@testable import LabRuntime
import Testing
import TestSupport

/// `git bisect run` with `cxllab run --bisect` on a synthetic history of a module: the good
/// stand-in, a commit that does not build (125: skipped), the build fixed, then the commit
/// that makes it bind on its own (V9). Bisect must name that commit. And `--kernel make:` on
/// a kernel tree's history: each commit boots what its own build made.
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
                                                           "--orders", "1", "--bisect"], timeout: .seconds(1800))
        #expect(run.status == 1, "\(run.output)\(run.errorOutput)")
        #expect(run.output.contains("guest-crash"), "\(run.output)")
        #expect(run.output.contains("NULL pointer dereference") || run.output.contains("Oops"), "\(run.output)")
    }

    /// A kernel tree's history under `make:`, walked as `git bisect run` walks it: each
    /// commit's Makefile "builds" another cached Debian kernel (its targets put the image,
    /// config and modules where a kernel build leaves them: a real build takes hours on two
    /// cores), and one commit's build fails. At each commit the guest must run the release that
    /// commit built (its `uname -r`, in the session's transcript); the failing commit exits
    /// 125 with make's complaint and boots nothing. Under `build:` the failing commit would
    /// have booted the previous commit's kernel.
    @Test func makeBootsWhatEachCommitBuilt() async throws {
        let context = LabContext.forTests()
        let store = try KernelStore(cache: context.cache)
        let older = try await store.kernel(.debianSuite("bookworm"))
        let newer = try await store.kernel(.debianSuite("bookworm-backports"))
        #expect(older.release != newer.release)
        // In the cache's file system, so the tree's modules are hard links, not copies.
        let repo = try context.cache.folder("test-trees") + "/tree-\(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: repo, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: repo) }
        func makefile(_ kernel: Kernel?) -> String {
            guard let kernel else {
                return "defconfig olddefconfig modules:\n\t@true\nbzImage:\n\t@echo 'arch/x86/boot/main.c:1: error: broken on purpose' >&2; exit 2\n"
            }
            let modules = kernel.modulesFolder
            return """
                ifneq ($(M),)
                $(error this stand-in tree builds no external modules)
                endif
                defconfig olddefconfig:
                \tcp '\(kernel.configPath)' .config
                bzImage:
                \tmkdir -p arch/x86/boot && cp '\(kernel.imagePath)' arch/x86/boot/bzImage
                modules:
                \trm -rf built-modules modules.order modules.builtin modules.builtin.modinfo
                \tcp -al '\(modules)/kernel' built-modules 2>/dev/null || cp -a '\(modules)/kernel' built-modules
                \tfor f in modules.order modules.builtin modules.builtin.modinfo; do [ ! -e '\(modules)'/$$f ] || cp '\(modules)'/$$f .; done

                """
        }
        func commit(_ kernel: Kernel?) async throws -> String {
            try makefile(kernel).write(toFile: repo + "/Makefile", atomically: true, encoding: .utf8)
            _ = try await git(["add", "Makefile"], in: repo)
            _ = try await git(["commit", "-qm", kernel?.release ?? "does not build"], in: repo)
            return try await git(["rev-parse", "HEAD"], in: repo).output.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        _ = try await git(["init", "-q"], in: repo)
        try "built-modules/\narch/\n.config\nmodules.*\n".write(toFile: repo + "/.gitignore", atomically: true, encoding: .utf8)
        _ = try await git(["add", ".gitignore"], in: repo)
        let steps = [(try await commit(older), older.release), (try await commit(nil), nil), (try await commit(newer), newer.release)]
        let executable = try AgentBinary.locateForTests().replacingOccurrences(of: "cxllab-agent", with: "cxllab")
        for (revision, release) in steps {
            _ = try await git(["checkout", "-q", revision], in: repo)
            let transcript = repo + "-transcript.jsonl"
            defer { try? FileManager.default.removeItem(atPath: transcript) }
            let run = try await ProcessRunner.run(executable, ["run", LabSessionTests.root + "/topologies/nvdimm-single.yaml", "--kernel", "make:" + repo,
                                                               "--orders", "1", "--bisect", "--transcript", transcript], timeout: .seconds(1800))
            guard let release else {
                #expect(run.status == 125, "\(run.output)\(run.errorOutput)")
                #expect(run.output.contains("broken on purpose") && run.output.contains("build KernelTreeBuildError"), "\(run.output)")
                let session = (try? String(contentsOfFile: transcript, encoding: .utf8)) ?? ""
                #expect(session.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "the broken commit booted a lab: \(session.prefix(300))")
                continue
            }
            #expect(run.status == 0, "\(release): \(run.output)\(run.errorOutput)")
            #expect(run.output.contains("on \(release)"), "\(run.output)")
            let lines = try String(contentsOfFile: transcript, encoding: .utf8).split(separator: "\n")
            let unames = Set(lines.filter { $0.hasPrefix("{\"method\":\"info\"") }.compactMap { line in
                line.range(of: "\"kernel\":\"").map { String(line[$0.upperBound...].prefix { $0 != "\"" }) }
            })
            #expect(unames == [release], "the guest ran \(unames), the commit built \(release)")
        }
    }
}
