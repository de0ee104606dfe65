import AgentProtocol
import Foundation
import HostSupport
@testable import LabRuntime
import Libvirt
import Synchronization
import Testing
import TestSupport

/// A saved machine end to end, one guest at a time: the first start boots and saves, the next
/// restores (well under the boot's time) with an agent that answers, a teardown leaves no
/// domain and no lab folder, and a copy whose backing file or record was damaged is rebuilt.
@Suite(.serialized, .tags(.vm, .network), .needsHost) struct SavedMachineBackendTests {
    @Test func bootsSavesRestoresAndRebuildsADamagedCopy() async throws {
        let context = LabContext.forTests()
        let scratch = NSTemporaryDirectory() + "cxllab-saved-" + UUID().uuidString.prefix(6)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let prepared = try await Fixtures.prepare(topologyFile: Fixtures.privateTopology("nvdimm-single", memory: "1952M", in: scratch), context: context)
        func request(_ name: String) -> LabRequest {
            LabRequest(name: name, topology: prepared.topology, kernel: prepared.kernel, image: prepared.image, domainType: prepared.domainType,
                       runID: "test", cellID: name)
        }
        let key = try SavedMachineKey.of(request("saved-a"), emulator: SavedMachineKey.emulator(Connection()))
        let store = SavedMachines(cache: context.cache)
        // Starts from no copy of this key (its own: no other test's labs use it), and leaves none.
        try? FileManager.default.removeItem(atPath: store.root + "/" + key)
        defer { try? FileManager.default.removeItem(atPath: store.root + "/" + key) }
        let domainName = SavedMachineKey.domainName(key: key, index: 0)
        let folder = context.paths.folder(ofDomain: domainName)

        let first = try await startTalkAndTearDown(request("saved-a"), context: context, domainName: domainName, folder: folder)
        guard case .restored(let firstSeconds) = first.start else { Issue.record("the first start restores what it saved"); return }
        let record = try #require(store.record(key: key, index: 0))
        #expect(record.key == key && record.domainName == domainName && record.agentVersion == AgentProtocol.version)

        let second = try await startTalkAndTearDown(request("saved-b"), context: context, domainName: domainName, folder: folder)
        guard case .restored(let restoreSeconds) = second.start else { Issue.record("the second start restores"); return }
        #expect(!second.progress.contains { $0.contains("booting and saving") }, "the second start uses the saved copy")
        #expect(store.record(key: key, index: 0)?.created == record.created)
        for line in first.progress + second.progress where line.hasPrefix("saved ") || line.hasPrefix("restored ") { print(line) }
        print("saved machine: boot \(record.bootSeconds) s, save \(record.saveSeconds ?? 0) s, first start (boot, save, restore) \(firstSeconds) s, restore \(restoreSeconds) s, "
              + "\(record.bytes >> 20) MiB")
        // How much faster a restore is belongs to `cxllab bench`, not a timed test: under a
        // loaded host (CI, other guests) a restore's seconds include waiting for a guest slot.

        // A backing file of another size: rebuilt, not used.
        let stored = try #require(record.files.first)
        let path = store.storedFile(stored.name, key: key, index: 0)
        #expect(truncate(path, off_t(stored.size / 2)) == 0)
        let third = try await startTalkAndTearDown(request("saved-c"), context: context, domainName: domainName, folder: folder)
        #expect(third.progress.contains { $0.contains("\(stored.name) is \(stored.size / 2) bytes") && $0.contains("booting and saving") })
        let rebuilt = try #require(store.record(key: key, index: 0))
        #expect(rebuilt.created > record.created)

        // A record of another key: rebuilt, not used.
        var wrong = rebuilt
        wrong.key = String(repeating: "0", count: 64)
        try SavedMachines.writeRecord(wrong, in: store.copyFolder(key: key, index: 0))
        let fourth = try await startTalkAndTearDown(request("saved-d"), context: context, domainName: domainName, folder: folder)
        #expect(fourth.progress.contains { $0.contains("names key \(wrong.key)") && $0.contains("booting and saving") })
        #expect(store.record(key: key, index: 0)?.key == key)
    }

    /// One lab through `SavedMachineBackend`: the agent answers, and its teardown leaves no
    /// domain and no folder, and lets the copy go.
    func startTalkAndTearDown(_ request: LabRequest, context: LabContext, domainName: String, folder: String) async throws
        -> (start: LabStart, progress: [String]) {
        let said = Mutex<[String]>([])
        let lab = try await SavedMachineBackend().start(request, context: context) { line in said.withLock { $0.append(line) } }
        do {
            #expect(lab.name == request.name)
            let info = try await lab.send(AgentCalls.Info())
            #expect(info.kernel == request.kernel.release)
            #expect(info.modules.contains { $0.name == "nd_pmem" })
            #expect(try Connection().lookupDomain(named: domainName) != nil, "the lab runs under the copy's domain name")
            #expect(LabRecord.load(domainName: domainName, paths: context.paths)?.name == request.name, "`cxllab list` finds its record")
            let listed = try LabLookup.all(libvirt: Connection(), paths: context.paths).first { $0.domain == domainName }
            #expect(listed?.kernel == request.kernel.release && listed?.ownerPID == getpid(), "`cxllab list` shows it as this process's lab")
        } catch {
            await lab.teardown()
            throw error
        }
        await lab.teardown()
        #expect(try Connection().lookupDomain(named: domainName) == nil)
        #expect(!FileManager.default.fileExists(atPath: folder), "\(folder) is left")
        let copyName = LabNames.labName(domainName)   // "m<key12>-0": the key's folder is found by its prefix
        let keyFolder = ((try? FileManager.default.contentsOfDirectory(atPath: SavedMachines(cache: context.cache).root)) ?? [])
            .first { copyName.dropFirst().hasPrefix($0.prefix(12)) }
        if let keyFolder {
            #expect(try SavedMachines(cache: context.cache).claim(key: keyFolder, index: 0) != nil, "the teardown let the copy go")
        }
        return (lab.start, said.withLock { $0 })
    }
}
