@testable import CXLLabCommands
import Foundation
import HostSupport
import Testing

/// cxllab runs as root and builds the stand-in's Makefile from a project folder: only the
/// package of its own executable (from /proc/self/exe) or $CXLLAB_HOME counts, and only when
/// this user owns it and its images/ and nobody else can write them. Never the working folder.
@Suite struct ProjectFilesTests {
    func folder(mode: Int16, imagesMode: Int16?, package: Bool = true) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("cxllab-project-\(UUID().uuidString.prefix(6))").path
        try FileManager.default.createDirectory(atPath: path + "/images", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: path + "/.build/x86_64-unknown-linux-gnu/debug", withIntermediateDirectories: true)
        if package { _ = FileManager.default.createFile(atPath: path + "/Package.swift", contents: Data()) }
        chmod(path, mode_t(mode))
        if let imagesMode { chmod(path + "/images", mode_t(imagesMode)) } else { try FileManager.default.removeItem(atPath: path + "/images") }
        return path
    }

    func executable(in tree: String) -> String { tree + "/.build/x86_64-unknown-linux-gnu/debug/cxllab" }

    @Test func onlyAPrivatePackageOfTheExecutableOrHomeIsSearched() throws {
        let shared = try folder(mode: 0o777, imagesMode: 0o755)
        let sharedImages = try folder(mode: 0o755, imagesMode: 0o777)
        let privateOne = try folder(mode: 0o755, imagesMode: 0o755)
        let noImages = try folder(mode: 0o700, imagesMode: nil)
        defer { for path in [shared, sharedImages, privateOne, noImages] { try? FileManager.default.removeItem(atPath: path) } }
        func searched(_ tree: String) -> Bool { ProjectFiles.searchFolders(home: nil, executable: executable(in: tree)).contains(tree) }
        #expect(!searched(shared), "a folder anyone can write: its Makefile would run as root")
        #expect(!searched(sharedImages))
        #expect(searched(privateOne))
        #expect(searched(noImages))
        // CXLLAB_HOME comes first, under the same rule.
        #expect(ProjectFiles.searchFolders(home: privateOne, executable: executable(in: noImages)) == [privateOne, noImages])
        #expect(ProjectFiles.searchFolders(home: shared, executable: nil).isEmpty)
        // A relative executable (argv[0] as a shell passes a bare name) proves nothing.
        #expect(ProjectFiles.searchFolders(home: nil, executable: "cxllab").isEmpty)
    }

    @Test func aFolderOfAnotherUserIsRefused() throws {
        let foreign = try folder(mode: 0o755, imagesMode: 0o755)
        defer { try? FileManager.default.removeItem(atPath: foreign) }
        #expect(chown(foreign, 65534, 65534) == 0)
        #expect(ProjectFiles.searchFolders(home: foreign, executable: executable(in: foreign)).isEmpty)
        #expect(TrustedProject.problem(with: foreign)?.contains("uid 65534") == true)
    }

    /// The whole program, run by its bare name from PATH inside a folder it does not own that
    /// looks like its project (Package.swift, a recipe): it reads nothing from there.
    @Test(.timeLimit(.minutes(1))) func aBareNameRunInsideAForeignProjectTrustsNothingThere() throws {
        let real = try #require(TrustedProject.sibling("cxllab"), "cxllab is built beside the tests")
        let foreign = try folder(mode: 0o755, imagesMode: 0o755)
        let bin = FileManager.default.temporaryDirectory.appendingPathComponent("cxllab-bin-\(UUID().uuidString.prefix(6))").path
        defer { for path in [foreign, bin] { try? FileManager.default.removeItem(atPath: path) } }
        try "name: planted\nbinaries: [busybox]\nmodules: []\n".write(toFile: foreign + "/images/planted.yaml", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: foreign + "/work", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: bin + "/cxllab", withDestinationPath: real)
        for path in [foreign, foreign + "/images", foreign + "/work", foreign + "/Package.swift"] { chown(path, 65534, 65534) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        // The shell passes argv[0] as typed: `cxllab`, relative to nothing.
        process.arguments = ["-c", "cd \"$1\" && exec cxllab run topology.yaml --recipe planted --kernel build:/nonexistent", "sh", foreign + "/work"]
        var environment = ProcessInfo.processInfo.environment
        environment["PATH"] = bin + ":" + (environment["PATH"] ?? "/usr/bin:/bin")
        environment["CXLLAB_HOME"] = nil
        process.environment = environment
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let output = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(output.contains("no image recipe 'planted'"), "the planted recipe was used: \(output)")
        #expect(!output.contains(foreign + ","), "the foreign folder was searched: \(output)")
        #expect(process.terminationStatus != 0)
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
