@testable import CXLLabCommands
import Foundation
import Testing

/// cxllab runs as root and builds the stand-in's Makefile from a project folder: the working
/// folder counts as one only when nobody else can write it or its images/.
@Suite struct ProjectFilesTests {
    func folder(mode: Int16, imagesMode: Int16?) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("cxllab-project-\(UUID().uuidString.prefix(6))").path
        try FileManager.default.createDirectory(atPath: path + "/images", withIntermediateDirectories: true)
        chmod(path, mode_t(mode))
        if let imagesMode { chmod(path + "/images", mode_t(imagesMode)) } else { try FileManager.default.removeItem(atPath: path + "/images") }
        return path
    }

    @Test func aWorkingFolderOthersCanWriteIsNeverSearched() throws {
        let shared = try folder(mode: 0o777, imagesMode: 0o755)
        let sharedImages = try folder(mode: 0o755, imagesMode: 0o777)
        let privateOne = try folder(mode: 0o755, imagesMode: 0o755)
        let noImages = try folder(mode: 0o700, imagesMode: nil)
        defer { for path in [shared, sharedImages, privateOne, noImages] { try? FileManager.default.removeItem(atPath: path) } }
        func searched(_ here: String) -> Bool {
            ProjectFiles.searchFolders(home: nil, executable: "/nonexistent/bin/cxllab", workingFolder: here).contains(here)
        }
        #expect(!searched(shared), "a folder anyone can write: its Makefile would run as root")
        #expect(!searched(sharedImages))
        #expect(searched(privateOne))
        #expect(searched(noImages))
        // The source tree an executable was built in, wherever SwiftPM put it.
        let tree = try folder(mode: 0o755, imagesMode: 0o755)
        defer { try? FileManager.default.removeItem(atPath: tree) }
        try FileManager.default.createDirectory(atPath: tree + "/.build/x86_64-unknown-linux-gnu/debug", withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: tree + "/Package.swift", contents: Data())
        #expect(ProjectFiles.searchFolders(home: nil, executable: tree + "/.build/x86_64-unknown-linux-gnu/debug/cxllab", workingFolder: shared) == [tree])
        // CXLLAB_HOME comes first, as given.
        #expect(ProjectFiles.searchFolders(home: "/opt/cxllab", executable: "/nonexistent/cxllab", workingFolder: shared) == ["/opt/cxllab"])
    }
}

@Suite struct KernelListingTests {
    @Test func onlyThePlainFlavourInNumericOrder() {
        let names = ["6.12.95+deb12-amd64", "6.12.95+deb12-cloud-amd64", "6.12.95+deb12-rt-amd64", "6.12.95+deb12-amd64-unsigned",
                     "6.12.107+deb12-amd64", "6.1.0-57-amd64", "6.12.9+deb12-amd64"]
        let plain = names.filter(KernelListing.isPlainRelease)
        #expect(plain == ["6.12.95+deb12-amd64", "6.12.107+deb12-amd64", "6.1.0-57-amd64", "6.12.9+deb12-amd64"])
        #expect(plain.sorted(by: KernelListing.releaseOrder) == ["6.1.0-57-amd64", "6.12.9+deb12-amd64", "6.12.95+deb12-amd64", "6.12.107+deb12-amd64"])
    }
}
