import Foundation
@testable import LabRuntime
import Testing

/// `cxllab down` decided from facts alone: the domain's metadata as libvirt returns it, the
/// folder's owner file, and which pids live.
@Suite struct DownDecisionTests {
    static func metadata(run: String = "up", ownerPID: Int32) -> String {
        #"<cxllab:lab xmlns:cxllab="https://cxllab.dev/xmlns/lab/1" run="\#(run)" cell="c" owner-pid="\#(ownerPID)" topology="t"/>"#
    }

    @Test func aDomainWithoutCxllabsMetadataIsNeverTakenDown() throws {
        for force in [false, true] {
            let refusal = try #require(LabLookup.downRefusal(lab: "foreign", domain: "cxllab-foreign", metadataXML: nil, folderOwner: nil,
                                                             force: force, currentPID: 10, isAlive: { _ in false }))
            #expect(refusal.message.contains("cxllab-foreign carries no cxllab metadata"), "\(refusal.message)")
        }
        // Metadata that is not XML is no metadata.
        #expect(LabLookup.downRefusal(lab: "x", domain: "cxllab-x", metadataXML: "<not xml", folderOwner: nil,
                                      force: true, currentPID: 10, isAlive: { _ in false }) != nil)
    }

    @Test func aLabWhoseOwnerLivesIsRefusedUnlessForced() throws {
        let live: Set<Int32> = [4242]
        let refusal = try #require(LabLookup.downRefusal(lab: "busy", domain: "cxllab-busy", metadataXML: Self.metadata(run: "r1", ownerPID: 4242),
                                                         folderOwner: 4242, force: false, currentPID: 10, isAlive: live.contains))
        #expect(refusal.code == .ownerAlive)
        #expect(refusal.message.contains("lab busy") && refusal.message.contains("pid 4242") && refusal.message.contains("--force"), "\(refusal.message)")
        #expect(LabLookup.downRefusal(lab: "busy", domain: "cxllab-busy", metadataXML: Self.metadata(run: "r1", ownerPID: 4242),
                                      folderOwner: 4242, force: true, currentPID: 10, isAlive: live.contains) == nil)
    }

    @Test func aLabOfAGoneOwnerOrOfThisProcessGoesDown() {
        // `up` exits once the lab is up: its owner is gone.
        #expect(LabLookup.downRefusal(lab: "up", domain: "cxllab-up", metadataXML: Self.metadata(ownerPID: 4242),
                                      folderOwner: 4242, force: false, currentPID: 10, isAlive: { _ in false }) == nil)
        #expect(LabLookup.downRefusal(lab: "mine", domain: "cxllab-mine", metadataXML: Self.metadata(ownerPID: 10),
                                      folderOwner: 10, force: false, currentPID: 10, isAlive: { _ in true }) == nil)
    }

    /// Only the folder is left (no domain): its owner file decides.
    @Test func aFolderWhoseOwnerLivesIsRefusedUnlessForced() throws {
        let refusal = try #require(LabLookup.downRefusal(lab: "prep", domain: nil, metadataXML: nil, folderOwner: 777, force: false,
                                                         currentPID: 10, isAlive: { $0 == 777 }))
        #expect(refusal.message.contains("pid 777") && refusal.message.contains("--force"))
        #expect(LabLookup.downRefusal(lab: "prep", domain: nil, metadataXML: nil, folderOwner: 777, force: true,
                                      currentPID: 10, isAlive: { $0 == 777 }) == nil)
        #expect(LabLookup.downRefusal(lab: "prep", domain: nil, metadataXML: nil, folderOwner: nil, force: false,
                                      currentPID: 10, isAlive: { _ in true }) == nil)
    }

    /// The folder-only path of `down` checks a real owner file with real liveness.
    @Test func checkDownReadsTheFolderOwnerFile() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("cxllab-down-\(UUID().uuidString.prefix(6))").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let folder = root + "/cxllab-held"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        // pid 1 lives and is not this process.
        try "1\n".write(toFile: folder + "/" + LabPaths.ownerFile, atomically: true, encoding: .utf8)
        #expect(LabPaths.owner(ofFolder: folder) == 1)
        #expect(LabLookup.downRefusal(lab: "held", domain: nil, metadataXML: nil, folderOwner: LabPaths.owner(ofFolder: folder), force: false,
                                      currentPID: getpid(), isAlive: { ProcessLiveness.isAlive($0) })?.code == .ownerAlive)
    }
}
