import Foundation
import Testing
@testable import LabRuntime
@testable import Matrix

/// One lab name, one owner: a second claim fails cleanly and removes nothing of the first.
@Suite struct LabNameClaimTests {
    let paths = LabContext.forTests().paths

    func uniqueFolder() -> String {
        paths.folder(ofDomain: "cxllab-claim-test-\(UUID().uuidString.prefix(8).lowercased())")
    }

    @Test func ofClaimsRacingForOneNameExactlyOneWinsAndKeepsItsFolder() async throws {
        let folder = uniqueFolder()
        defer { try? FileManager.default.removeItem(atPath: folder); LabPaths.release(folder) }
        let outcomes = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<8 { group.addTask { (try? await paths.claim(folder, labName: "x")) != nil } }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 }.count == 1)
        // The losers touched nothing: the winner's folder and owner file are there.
        #expect(FileManager.default.fileExists(atPath: folder + "/" + LabPaths.ownerFile))
    }

    @Test func aFolderAnotherLiveProcessOwnsIsLeftAlone() async throws {
        let folder = uniqueFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        // pid 1 is alive and is not this process: another cxllab making this lab.
        try "1\n".write(toFile: folder + "/" + LabPaths.ownerFile, atomically: true, encoding: .utf8)
        try "the other lab's".write(toFile: folder + "/lab.json", atomically: true, encoding: .utf8)
        let error = await #expect(throws: LabError.self) { try await paths.claim(folder, labName: "x") }
        #expect(error?.code == .labExists)
        #expect(FileManager.default.fileExists(atPath: folder + "/lab.json"))
        // Once that owner is gone, the folder is taken over.
        try "999999999\n".write(toFile: folder + "/" + LabPaths.ownerFile, atomically: true, encoding: .utf8)
        try await paths.claim(folder, labName: "x")
        LabPaths.release(folder)
        #expect(!FileManager.default.fileExists(atPath: folder + "/lab.json"))
    }
}

@Suite struct MatrixDuplicateTests {
    @Test func aCellListedTwiceIsRefusedWithItsLine() throws {
        let path = FileManager.default.temporaryDirectory.path + "/cxllab-matrix-\(UUID().uuidString.prefix(6)).yaml"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try """
            name: x
            kernels:
              - debian:bookworm
              - debian:bookworm
            topologies: [topologies/nvdimm-single.yaml]
            scenarios:
              - {name: driver-order, orders: "1"}
              - {name: driver-order, orders: "1"}

            """.write(toFile: path, atomically: true, encoding: .utf8)
        let error = #expect(throws: MatrixError.self) { try MatrixFile.load(path: path) }
        let message = error?.message ?? ""
        #expect(message.contains("\(path):4:5: kernels lists 'debian:bookworm' twice (first at line 3)"), "\(message)")
        #expect(message.contains("\(path):8:5: scenarios lists the same entry twice (first at line 7)"), "\(message)")
    }
}

@Suite struct MatrixModuleEntryTests {
    @Test func aBareModuleNameStaysANameAndAPathIsRooted() {
        #expect(Fixtures.moduleArgument("fsdev_dax:automatch=1", projectRoot: "/p") == "fsdev_dax:automatch=1")
        #expect(Fixtures.moduleArgument("device_dax", projectRoot: "/p") == "device_dax")
        #expect(Fixtures.moduleArgument("images/modules/fsdev_dax:automatch=1", projectRoot: "/p") == "/p/images/modules/fsdev_dax:automatch=1")
        #expect(Fixtures.moduleArgument("/abs/mod.ko", projectRoot: "/p") == "/abs/mod.ko")
    }
}

/// A kept lab restored from a saved machine is found by its own name through a link to its
/// copy's folder (`LabNameLink`); only cxllab's own links (to a `cxllab-` sibling) count.
@Suite struct LabNameLinkTests {
    let paths = LabPaths(root: FileManager.default.temporaryDirectory.appendingPathComponent("cxllab-links-\(UUID().uuidString.prefix(8))").path)

    @Test func aLinkedNameLeadsToItsCopysFolderAndRecord() throws {
        defer { try? FileManager.default.removeItem(atPath: paths.root) }
        let copy = "cxllab-mabc123-0"
        try FileManager.default.createDirectory(atPath: paths.folder(ofDomain: copy), withIntermediateDirectories: true)
        let record = LabRecord(name: "mylab", domainName: copy, folder: paths.folder(ofDomain: copy), topology: "t.yaml", kernel: "debian:x",
                               kernelRelease: "6.12", image: "i", shell: true, created: Date(), ownerPID: 1)
        try record.save()
        #expect(try paths.domainName(ofLab: "mylab") == "cxllab-mylab", "an unlinked name is its own domain")

        let link = try paths.linkName("mylab", to: copy)
        #expect(link == paths.folder(ofDomain: "cxllab-mylab"))
        #expect(try paths.domainName(ofLab: "mylab") == copy)
        #expect(try LabLookup.record("mylab", paths: paths).domainName == copy)

        // Linking again replaces the link; removal only when it still leads to the copy.
        _ = try paths.linkName("mylab", to: copy)
        paths.removeNameLink(ofLab: "mylab", to: "cxllab-other-0")
        #expect(LabPaths.nameLinkTarget(link) == copy)
        paths.removeNameLink(ofLab: "mylab", to: copy)
        #expect(LabPaths.nameLinkTarget(link) == nil && !FileManager.default.fileExists(atPath: link))
        #expect(FileManager.default.fileExists(atPath: paths.folder(ofDomain: copy) + "/lab.json"), "the copy's folder is not the link's to remove")
    }

    @Test func onlyLinksToALabSiblingAreNameLinks() throws {
        defer { try? FileManager.default.removeItem(atPath: paths.root) }
        try FileManager.default.createDirectory(atPath: paths.root + "/cxllab-real", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: paths.root + "/cxllab-abs", withDestinationPath: "/etc")
        try FileManager.default.createSymbolicLink(atPath: paths.root + "/cxllab-up", withDestinationPath: "../cxllab-real")
        try FileManager.default.createSymbolicLink(atPath: paths.root + "/cxllab-other", withDestinationPath: "notalab")
        for name in ["cxllab-real", "cxllab-abs", "cxllab-up", "cxllab-other", "cxllab-missing"] {
            #expect(LabPaths.nameLinkTarget(paths.root + "/" + name) == nil, "\(name)")
        }
        #expect(try paths.domainName(ofLab: "abs") == "cxllab-abs", "a link that is not cxllab's leads nowhere")
    }
}
