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
        // CXLLAB_HOME comes first, as given.
        #expect(ProjectFiles.searchFolders(home: "/opt/cxllab", executable: "/nonexistent/cxllab", workingFolder: shared) == ["/opt/cxllab"])
    }
}
