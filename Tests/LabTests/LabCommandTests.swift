import Foundation
import HostSupport
@testable import LabRuntime
@testable import Scenarios
@testable import Matrix
@testable import Bench
import Libvirt
import Testing
import TestSupport

/// The commands a newcomer types, as a newcomer types them.
@Suite(.serialized, .tags(.vm, .network), .needsHost) struct LabCommandTests {
    static func cxllab(_ arguments: [String]) async throws -> ProcessResult {
        let executable = try AgentBinary.locateForTests().replacingOccurrences(of: "cxllab-agent", with: "cxllab")
        return try await ProcessRunner.run(executable, arguments, currentDirectory: LabSessionTests.root, timeout: .seconds(1800))
    }

    /// `cxllab clean` touches only what cxllab made: a `cxllab-` domain without cxllab's
    /// metadata (shut off, persistent) stays defined; folders without cxllab's owner file, or
    /// not named like a lab, stay; a lab folder whose owner is gone goes.
    @Test func cleanTouchesOnlyWhatCxllabMade() async throws {
        let suffix = UUID().uuidString.prefix(6).lowercased()
        let foreign = "cxllab-foreign-\(suffix)"
        let xml = "<domain type='qemu'><name>\(foreign)</name><memory unit='MiB'>64</memory>"
            + "<os><type arch='x86_64' machine='q35'>hvm</type></os></domain>"
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("\(foreign).xml").path
        try xml.write(toFile: file, atomically: true, encoding: .utf8)
        let defined = try await ProcessRunner.run("virsh", ["define", file])
        #expect(defined.status == 0, "\(defined.errorOutput)")
        defer { _ = try? Process.run(URL(fileURLWithPath: "/usr/bin/virsh"), arguments: ["undefine", foreign]).waitUntilExit() }

        let labs = FileManager.default.temporaryDirectory.appendingPathComponent("cxllab-clean-\(suffix)").path
        defer { try? FileManager.default.removeItem(atPath: labs) }
        for folder in ["cxllab-noowner", "notalab", "cxllab-gone"] {
            try FileManager.default.createDirectory(atPath: labs + "/" + folder, withIntermediateDirectories: true)
        }
        // A pid that is no process: the owner is gone.
        try "2147483646\n".write(toFile: labs + "/notalab/owner.pid", atomically: true, encoding: .utf8)
        try "2147483646\n".write(toFile: labs + "/cxllab-gone/owner.pid", atomically: true, encoding: .utf8)
        // Name links: to a lab folder that goes (it goes too), to one that stays, to nothing
        // (stale: it goes), and a link that is not cxllab's (to an absolute path: it stays).
        let fm = FileManager.default
        try fm.createSymbolicLink(atPath: labs + "/cxllab-linked", withDestinationPath: "cxllab-gone")
        try fm.createSymbolicLink(atPath: labs + "/cxllab-kept", withDestinationPath: "cxllab-noowner")
        try fm.createSymbolicLink(atPath: labs + "/cxllab-stale", withDestinationPath: "cxllab-nothere")
        try fm.createSymbolicLink(atPath: labs + "/cxllab-abs", withDestinationPath: labs + "/cxllab-gone")

        let executable = try AgentBinary.locateForTests().replacingOccurrences(of: "cxllab-agent", with: "cxllab")
        let clean = try await ProcessRunner.run(executable, ["clean"], environment: ProcessInfo.processInfo.environment.merging(["CXLLAB_LABS_DIR": labs]) { $1 },
                                                currentDirectory: LabSessionTests.root, timeout: .seconds(120))
        #expect(clean.status == 0, "\(clean.errorOutput)")
        #expect(clean.output.contains("left \(foreign) alone: it carries no cxllab metadata"), "\(clean.output)")
        #expect(try Connection().lookupDomain(named: foreign) != nil, "a domain cxllab did not make was removed")
        let left = Set(try FileManager.default.contentsOfDirectory(atPath: labs))
        #expect(left == ["cxllab-noowner", "notalab", "cxllab-kept", "cxllab-abs"], "left: \(left); said: \(clean.output)")
    }

    /// A lab `up` starts, booted or restored from a saved machine: the domain it runs under
    /// (a restored one keeps its copy's name, linked from the lab's own), to remove it when a
    /// test fails before `down`.
    static func removeLab(_ name: String) {
        let paths = LabContext.forTests().paths
        guard let domain = try? paths.domainName(ofLab: name) else { return }
        if let stray = try? Connection().lookupDomain(named: domain) { try? stray.destroy() }
        try? FileManager.default.removeItem(atPath: paths.folder(ofDomain: domain))
        paths.removeNameLink(ofLab: name, to: domain)
        try? FileManager.default.removeItem(atPath: paths.folder(ofDomain: LabNames.domainName(name)))
    }

    @Test func upExecDownLeavesNothing() async throws {
        let name = "cli-\(UUID().uuidString.prefix(6).lowercased())"
        let paths = LabContext.forTests().paths
        defer { Self.removeLab(name) }
        let up = try await Self.cxllab(["up", "topologies/nvdimm-single.yaml", "--name", name, "--kernel", "debian:bookworm-backports"])
        #expect(up.status == 0, "\(up.errorOutput)")
        #expect(up.output.contains("cxllab exec \(name) -- cxl list"))
        let domain = try paths.domainName(ofLab: name)
        #expect(try Connection().lookupDomain(named: domain) != nil, "lab \(name) runs under \(domain)")
        let twice = try await Self.cxllab(["up", "topologies/nvdimm-single.yaml", "--name", name, "--kernel", "debian:bookworm-backports"])
        #expect(twice.status != 0 && twice.errorOutput.contains("a lab named \(name) is running already"), "\(twice.errorOutput)")

        let release = try await Self.cxllab(["exec", name, "--", "uname", "-r"])
        #expect(release.status == 0)
        #expect(release.output.trimmingCharacters(in: .whitespacesAndNewlines).hasSuffix("+deb12-amd64"))
        let ndctl = try await Self.cxllab(["exec", name, "--", "ndctl", "list", "-R"])
        #expect(ndctl.output.contains("\"dev\":\"region0\""), "\(ndctl.output)")
        let status = try await Self.cxllab(["exec", name, "--", "sh", "-c", "echo to-stderr >&2; exit 3"])
        #expect(status.status == 3)
        #expect(status.errorOutput.contains("to-stderr"))
        let list = try await Self.cxllab(["list"])
        #expect(list.output.contains(name))

        let down = try await Self.cxllab(["down", name])
        #expect(down.status == 0)
        #expect(try Connection().lookupDomain(named: domain) == nil)
        #expect(!FileManager.default.fileExists(atPath: paths.folder(ofDomain: domain)))
        #expect(LabPaths.nameLinkTarget(paths.folder(ofDomain: LabNames.domainName(name))) == nil, "down removes the name's link")
        let again = try await Self.cxllab(["exec", name, "--", "true"])
        #expect(again.status != 0)
        #expect(again.errorOutput.contains("no lab named \(name)"))
    }

    /// The second `up` of a machine restores the first one's saved copy, and the lab is found
    /// by its name through the link to the copy's domain.
    @Test func aSecondUpRestoresTheSavedMachine() async throws {
        let name = "restore-\(UUID().uuidString.prefix(6).lowercased())"
        let paths = LabContext.forTests().paths
        defer { Self.removeLab(name) }
        for round in 1...2 {
            let up = try await Self.cxllab(["up", "topologies/nvdimm-single.yaml", "--name", name, "--kernel", "debian:bookworm-backports", "--json"])
            try #require(up.status == 0, "\(up.errorOutput)")
            if round == 2 { #expect(up.output.contains("\"start\" : \"restored\""), "\(up.output)") }
            let domain = try paths.domainName(ofLab: name)
            let release = try await Self.cxllab(["exec", name, "--", "uname", "-r"])
            #expect(release.status == 0 && release.output.hasPrefix("6.12."), "\(release.output)\(release.errorOutput)")
            let list = try await Self.cxllab(["list", "--json"])
            #expect(list.output.contains("\"name\" : \"\(name)\""), "\(list.output)")
            let down = try await Self.cxllab(["down", name])
            #expect(down.status == 0, "\(down.errorOutput)")
            #expect(try Connection().lookupDomain(named: domain) == nil)
            #expect(!FileManager.default.fileExists(atPath: paths.folder(ofDomain: LabNames.domainName(name))))
        }
    }
}

/// The README's tour, run line by line exactly as printed (each through bash, with `cxllab`
/// meaning this build), and the facts its comments state checked in the output.
@Suite(.serialized, .tags(.vm, .network), .needsHost) struct ReadmeTourTests {
    static func tourLines() throws -> [String] {
        let readme = try String(contentsOfFile: LabSessionTests.root + "/README.md", encoding: .utf8)
        guard let start = readme.range(of: "<!-- tour -->"), let end = readme.range(of: "<!-- /tour -->") else { return [] }
        return readme[start.upperBound..<end.lowerBound].split(separator: "\n").map(String.init).filter { $0.hasPrefix("cxllab ") }
    }

    @Test func theReadmeTourRunsAsPrinted() async throws {
        let lines = try Self.tourLines()
        #expect(lines.count >= 10, "the README's tour block (between <!-- tour --> markers) was not found")
        let executable = try AgentBinary.locateForTests().replacingOccurrences(of: "cxllab-agent", with: "cxllab")
        let names = ["lab", "ram"]
        // The tour names its labs: someone's own labs of those names are left alone.
        let paths = LabContext.forTests().paths
        for name in names where try Connection().lookupDomain(named: paths.domainName(ofLab: name)) != nil {
            Issue.record("a lab named '\(name)' is running here; the README's tour needs that name (cxllab down \(name))")
            return
        }
        defer {
            // A failed line must not leave a lab running.
            for name in names { LabCommandTests.removeLab(name) }
        }
        var outputs: [(line: String, output: String)] = []
        for line in lines {
            var environment = ProcessInfo.processInfo.environment
            environment["CXLLAB_BIN"] = executable
            let result = try await ProcessRunner.run("/bin/bash", ["-c", "cxllab() { \"$CXLLAB_BIN\" \"$@\"; }; " + line],
                                                     environment: environment, currentDirectory: LabSessionTests.root, timeout: .seconds(1800))
            try #require(result.status == 0, "`\(line)` exited \(result.status): \(result.errorOutput)\(result.output)")
            outputs.append((line, result.output))
        }
        func output(_ lab: String, _ containing: String) -> String {
            outputs.first { $0.line.contains("exec \(lab) ") && $0.line.contains(containing) }?.output ?? ""
        }
        // What the comments say.
        #expect(output("lab", "cxl list -M").contains("\"pmem_size\":268435456") && output("lab", "cxl list -M").contains("\"serial\""))
        #expect(output("lab", "create-region").contains("\"region\":\"region0\""), "\(output("lab", "create-region"))")
        #expect(output("lab", "create-namespace").contains("\"chardev\":\"dax0.0\""), "\(output("lab", "create-namespace"))")
        #expect(output("lab", "daxctl list").contains("\"mode\":\"devdax\""))
        #expect(output("lab", "readlink").trimmingCharacters(in: .whitespacesAndNewlines).hasSuffix("/drivers/device_dax"))
        #expect(output("ram", "daxctl list").contains("\"chardev\":\"dax0.0\"") && output("ram", "daxctl list").contains("\"mode\":\"system-ram\""),
                "\(output("ram", "daxctl list"))")
        #expect(output("ram", "readlink").trimmingCharacters(in: .whitespacesAndNewlines).hasSuffix("/drivers/kmem"))
        for name in names {
            #expect(try Connection().lookupDomain(named: paths.domainName(ofLab: name)) == nil, "the tour takes lab \(name) down")
        }
    }
}
