import AgentProtocol
import Foundation
import HostSupport
@testable import LabRuntime
import Libvirt
import Testing
import TestSupport

/// The two lab backends boot the same machine: the agent answers its handshake and a call,
/// the console is followed, and a teardown leaves no domain, no QEMU and no files. One guest
/// at a time.
@Suite(.tags(.vm, .network), .needsHost) struct LabBackendTests {
    @Test func bothBackendsBootTalkAndLeaveNothing() async throws {
        let prepared = try await Fixtures.prepare("nvdimm-single")
        // One after the other, never side by side: one guest at a time.
        try await bootTalkAndTearDown(LibvirtBackend(), kind: "libvirt", prepared)
        try await bootTalkAndTearDown(DirectQEMUBackend(), kind: "direct", prepared)
    }

    func bootTalkAndTearDown(_ backend: any LabBackend, kind: String, _ prepared: PreparedLab) async throws {
        let name = "backend-\(kind)-\(UUID().uuidString.prefix(6).lowercased())"
        let domainName = LabNames.domainName(name)
        let context = LabContext.forTests()
        let folder = context.paths.folder(ofDomain: domainName)
        let lab = try await backend.start(LabRequest(name: name, topology: prepared.topology, kernel: prepared.kernel, image: prepared.image,
                                                     domainType: prepared.domainType, runID: "test", cellID: "backend-\(kind)"), context: context)
        do {
            #expect(lab.name == name)
            #expect(lab.backendName == backend.name)
            #expect(lab.hello?.kernel == prepared.kernel.release, "\(backend.name): the agent's hello")
            let info = try await lab.send(AgentCalls.Info())
            #expect(info.kernel == prepared.kernel.release)
            #expect(info.modules.contains { $0.name == "nd_pmem" })
            #expect(await lab.console.waitForLine(containing: "cxllab-init: starting the agent", deadline: .seconds(10)) != nil,
                    "\(backend.name): the console is followed")
            #expect(lab.connectionLost == nil)
        } catch {
            await lab.teardown()
            throw error
        }
        let leftovers = await lab.teardown()
        #expect(leftovers.emulatorComplaint == nil)
        #expect(leftovers.consoleTail.contains("cxllab-init"))
        #expect(try Connection().lookupDomain(named: domainName) == nil)
        #expect(!FileManager.default.fileExists(atPath: folder), "\(folder) is left")
        #expect(Self.processes(naming: folder).isEmpty, "a process of \(folder) still runs")
    }

    /// Processes whose command line names `text` (a QEMU that outlived its lab).
    static func processes(naming text: String) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { pid in
            guard let command = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            return String(decoding: command, as: UTF8.self).contains(text)
        }
    }
}
