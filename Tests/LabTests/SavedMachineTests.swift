import Foundation
@testable import GuestImage
import HostSupport
@testable import Kernels
@testable import LabRuntime
import Testing
import Topology

/// Saved machines without a guest: the key, the restore XML, the store's checks, staging and
/// its disk bound.
@Suite struct SavedMachineTests {
    static func request(_ topology: String = "nvdimm-single", name: String = "lab-a", kernelDigest: String? = nil,
                        imageKey: String = "image-1", vcpus: Int? = nil) throws -> LabRequest {
        let file = LabSessionTests.root + "/topologies/\(topology).yaml"
        var machine = try Topology.load(yaml: String(contentsOfFile: file, encoding: .utf8), file: file, capabilities: .qemu10)
        if let vcpus { machine.machine.vcpus = vcpus }
        let image = BuiltImage(key: imageKey, path: "/nonexistent/\(imageKey).cpio", sha256: "", size: 0, kernelRelease: "6.12.95+deb12-amd64",
                               recipe: "default", programs: [], modules: [], absentModules: [], cacheHit: true)
        return LabRequest(name: name, topology: machine, kernel: Fixtures.kernel("6.12.95+deb12-amd64", digest: kernelDigest), image: image,
                          runID: "run-\(name)", cellID: "cell-\(name)")
    }

    @Test func theKeyFollowsTheMachineNotTheLab() throws {
        let key = try SavedMachineKey.of(Self.request())
        #expect(key.count == 64)
        var renamed = try Self.request(name: "lab-b")
        renamed.domainName = "cxllab-other"
        #expect(try SavedMachineKey.of(renamed) == key, "only the lab's name, folder, run and cell differ")
        #expect(try SavedMachineKey.of(Self.request(kernelDigest: String(repeating: "b", count: 64))) != key, "another kernel image")
        #expect(try SavedMachineKey.of(Self.request(imageKey: "image-2")) != key, "another guest image")
        #expect(try SavedMachineKey.of(Self.request(vcpus: 3)) != key, "another rendered topology")
        #expect(try SavedMachineKey.of(Self.request("cxl-pmem-single")) != key, "another topology")
        #expect(try SavedMachineKey.of(Self.request(), emulator: "qemu 10.1.0 libvirt 11.3.0") != key, "another QEMU: its migration stream may differ")
        var shell = try Self.request()
        shell.shell = true
        #expect(try SavedMachineKey.of(shell) != key, "another kernel command line")
        #expect(SavedMachineKey.domainName(key: key, index: 2) == "cxllab-m" + key.prefix(12) + "-2")
        #expect(LabNames.isValid(LabNames.labName(SavedMachineKey.domainName(key: key, index: 2))))
    }

    /// QEMU 10 keeps no state of CXL devices across a restore: machines with them boot.
    @Test func machinesWithCXLDevicesAreNeverSaved() throws {
        #expect(SavedMachineBackend.unsaveable(try Self.request("nvdimm-single").topology) == nil)
        for topology in ["cxl-pmem-single", "cxl-pmem-ram", "cxl-volatile", "mixed"] {
            #expect(SavedMachineBackend.unsaveable(try Self.request(topology).topology)?.contains("CXL") == true, "\(topology)")
        }
    }

    @Test func theRestoreXMLMovesPathsAndRenamesTheLab() throws {
        let saved = """
            <domain type='qemu'><name>cxllab-mabc-0</name><uuid>u</uuid><metadata><cxllab:lab xmlns:cxllab="https://cxllab.dev/xmlns/lab/1" \
            run="run-1" cell="cell-1" owner-pid="11" created="2026-12-01T00:00:00Z" topology="nvdimm-single"/></metadata>\
            <os><kernel>/labs/cxllab-mabc-0/vmlinuz</kernel></os><devices>\
            <source path='/labs/cxllab-mabc-0/pmem0.img'/><source path='/labs/cxllab-mabc-01/x'/></devices></domain>
            """
        let xml = SavedMachineXML.restoreXML(saved, from: "/labs/cxllab-mabc-0", to: "/new/cxllab-mabc-0",
                                             metadata: .init(runID: "run-2", cellID: "c&2", ownerPID: 42, created: Date(timeIntervalSince1970: 0)))
        #expect(xml.contains("<kernel>/new/cxllab-mabc-0/vmlinuz</kernel>"))
        #expect(xml.contains("path='/new/cxllab-mabc-0/pmem0.img'"))
        #expect(xml.contains("path='/labs/cxllab-mabc-01/x'"), "a folder whose name only starts the same is not moved")
        #expect(xml.contains("run=\"run-2\" cell=\"c&amp;2\" owner-pid=\"42\" created=\"1970-01-01T00:00:00Z\" topology=\"nvdimm-single\""))
        #expect(xml.contains("<name>cxllab-mabc-0</name><uuid>u</uuid>"), "name and UUID stay: libvirt refuses others")
    }

    /// A store in a fresh folder with one complete copy of `key` (two 1 MiB backing files).
    static func storeWithCopy(key: String = "k1", index: Int = 0, lastUsed: Date = Date(), store: SavedMachines? = nil) throws -> SavedMachines {
        let store = store ?? SavedMachines(root: NSTemporaryDirectory() + "saved-\(UUID().uuidString)", limitBytes: 1 << 40)
        let staging = try store.stagingFolder(key: key, index: index)
        try Data(repeating: 1, count: 4096).write(to: URL(fileURLWithPath: staging + "/" + SavedMachines.saveImageName))
        for name in ["pmem0.img", "lsa0.img"] {
            try Data(repeating: 2, count: 1 << 20).write(to: URL(fileURLWithPath: staging + "/files/" + name))
        }
        let record = SavedMachineRecord(key: key, kernelImageSHA256: "k", imageKey: "i", topologyXMLSHA256: "t", agentVersion: 1, agent: "a",
                                        domainName: SavedMachineKey.domainName(key: key, index: index), savedFolder: "/labs/x",
                                        saveImageSize: 4096, files: [.init(name: "pmem0.img", size: 1 << 20), .init(name: "lsa0.img", size: 1 << 20)],
                                        bootSeconds: 20, saveSeconds: 2, created: lastUsed, lastUsed: lastUsed, bytes: SavedMachines.diskUsage(of: staging))
        try SavedMachines.writeRecord(record, in: staging)
        #expect(!FileManager.default.fileExists(atPath: store.copyFolder(key: key, index: index)), "nothing is in place before the commit")
        try store.commit(staging: staging, key: key, index: index)
        #expect(!FileManager.default.fileExists(atPath: staging))
        return store
    }

    @Test func aCopyIsUsedOnlyWhenWholeAndOfItsKey() throws {
        let store = try Self.storeWithCopy()
        defer { try? FileManager.default.removeItem(atPath: store.root) }
        let domain = SavedMachineKey.domainName(key: "k1", index: 0)
        func problem(_ imageDomain: String = domain) -> String? {
            store.problem(key: "k1", index: 0, domainName: domain, imageDomainName: { _ in imageDomain })
        }
        #expect(problem() == nil)
        #expect(problem("cxllab-other")?.contains("holds domain cxllab-other") == true)
        #expect(store.problem(key: "k1", index: 1, domainName: domain, imageDomainName: { _ in domain }) == "there is none")
        #expect(store.problem(key: "k1", index: 0, domainName: "cxllab-mk1-9", imageDomainName: { _ in domain })?.contains("holds domain") == true)

        // A backing file of another size (the guest wrote past it, or a copy was cut short).
        let pmem = store.storedFile("pmem0.img", key: "k1", index: 0)
        try Data(repeating: 2, count: 100).write(to: URL(fileURLWithPath: pmem))
        #expect(problem()?.contains("pmem0.img is 100 bytes") == true)
        try Data(repeating: 2, count: 1 << 20).write(to: URL(fileURLWithPath: pmem))
        #expect(problem() == nil)

        // A record of another key (a copy moved or half-rewritten).
        var record = try #require(store.record(key: "k1", index: 0))
        record.key = "k2"
        try SavedMachines.writeRecord(record, in: store.copyFolder(key: "k1", index: 0))
        #expect(problem()?.contains("names key k2") == true)

        try FileManager.default.removeItem(atPath: store.copyFolder(key: "k1", index: 0) + "/" + SavedMachines.recordName)
        #expect(problem()?.contains("missing or unreadable") == true)
    }

    @Test func aClaimedCopyIsNotClaimedTwice() throws {
        let store = try Self.storeWithCopy()
        defer { try? FileManager.default.removeItem(atPath: store.root) }
        let first = try #require(try store.claim(key: "k1", index: 0))
        #expect(try store.claim(key: "k1", index: 0) == nil)
        #expect(try store.claim(key: "k1", index: 1) != nil)
        first.release()
        #expect(try store.claim(key: "k1", index: 0) != nil)
    }

    /// `clean --machines`: every copy goes but the one a lab is restoring from, and what a
    /// killed cxllab left half-saved.
    @Test func removingUnusedCopiesSparesTheOneInUse() throws {
        let store = try Self.storeWithCopy(key: "k1")
        defer { try? FileManager.default.removeItem(atPath: store.root) }
        _ = try Self.storeWithCopy(key: "k2", store: store)
        let dead = store.root + "/.staging/k3-0-\(Int32(1 << 22) + 9)"
        try FileManager.default.createDirectory(atPath: dead, withIntermediateDirectories: true)
        let held = try #require(try store.claim(key: "k2", index: 0))
        #expect(store.removeUnused() == [store.copyFolder(key: "k1", index: 0)])
        #expect(store.record(key: "k2", index: 0) != nil && !FileManager.default.fileExists(atPath: dead))
        held.release()
        #expect(store.removeUnused() == [store.copyFolder(key: "k2", index: 0)])
    }

    @Test func theStoreDropsTheLeastRecentlyUsedCopiesFirst() throws {
        let root = NSTemporaryDirectory() + "saved-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let unbounded = SavedMachines(root: root, limitBytes: 1 << 40)
        let old = Date(timeIntervalSinceNow: -3600)
        _ = try Self.storeWithCopy(key: "oldest", lastUsed: old.addingTimeInterval(-60), store: unbounded)
        _ = try Self.storeWithCopy(key: "older", lastUsed: old, store: unbounded)
        _ = try Self.storeWithCopy(key: "newest", lastUsed: Date(), store: unbounded)
        let held = try #require(try unbounded.claim(key: "older", index: 0))
        let copyBytes = try #require(unbounded.record(key: "newest", index: 0)).bytes
        #expect(copyBytes >= 2 << 20, "the sparse-aware size counts what the files hold")

        // Room for two copies: the oldest goes; the next oldest is in use, so it stays.
        let bounded = SavedMachines(root: root, limitBytes: copyBytes * 2)
        #expect(bounded.trim() == [bounded.copyFolder(key: "oldest", index: 0)])
        // Room for one: the copy in use stays, and the one spared too.
        let tight = SavedMachines(root: root, limitBytes: copyBytes)
        #expect(tight.trim(sparing: ("newest", 0)).isEmpty)
        held.release()
        #expect(tight.trim(sparing: ("newest", 0)) == [tight.copyFolder(key: "older", index: 0)])
        #expect(FileManager.default.fileExists(atPath: tight.copyFolder(key: "newest", index: 0)))
    }

    @Test func stagingAKilledCxllabLeftIsSweptAndOneInProgressIsNot() throws {
        let store = SavedMachines(root: NSTemporaryDirectory() + "saved-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(atPath: store.root) }
        let mine = try store.stagingFolder(key: "k1", index: 0)
        // A pid no process has: Linux's pid_max is at most 2^22.
        let dead = store.root + "/.staging/k1-1-\(Int32(1 << 22) + 7)"
        try FileManager.default.createDirectory(atPath: dead, withIntermediateDirectories: true)
        store.sweepStaging()
        #expect(FileManager.default.fileExists(atPath: mine))
        #expect(!FileManager.default.fileExists(atPath: dead))
        #expect(store.record(key: "k1", index: 1) == nil, "a half-saved machine is never in place")
    }

    @Test func savedMachinesAreOnUnlessTurnedOff() {
        #expect(LabSettings.from(environment: [:]).savedMachines)
        #expect(CellRunner.defaultBackend(LabSettings.from(environment: [:])) is SavedMachineBackend)
        let off = LabSettings.from(environment: ["CXLLAB_SAVED_MACHINES": "0"])
        #expect(!off.savedMachines && CellRunner.defaultBackend(off) is LibvirtBackend)
        let bounded = LabSettings.from(environment: ["CXLLAB_SAVED_MACHINES_MIB": "512"])
        #expect(bounded.savedMachines && bounded.savedMachinesLimitBytes == 512 << 20)
    }
}
