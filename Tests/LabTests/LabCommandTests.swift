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
        let executable = try AgentBinary.locate().replacingOccurrences(of: "cxllab-agent", with: "cxllab")
        return try await ProcessRunner.run(executable, arguments, currentDirectory: LabSessionTests.root, timeout: .seconds(300))
    }

    @Test func upExecDownLeavesNothing() async throws {
        let name = "cli-\(UUID().uuidString.prefix(6).lowercased())"
        let domain = LabNames.domainName(name)
        defer {
            if let stray = try? Connection().lookupDomain(named: domain) { try? stray.destroy() }
            try? FileManager.default.removeItem(atPath: LabPaths.labsRoot + "/" + domain)
        }
        let up = try await Self.cxllab(["up", "topologies/nvdimm-single.yaml", "--name", name, "--kernel", "debian:bookworm-backports"])
        #expect(up.status == 0, "\(up.errorOutput)")
        #expect(up.output.contains("cxllab exec \(name) -- cxl list"))

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
        #expect(!FileManager.default.fileExists(atPath: LabPaths.labsRoot + "/" + domain))
        let again = try await Self.cxllab(["exec", name, "--", "true"])
        #expect(again.status != 0)
        #expect(again.errorOutput.contains("no lab named \(name)"))
    }
}
