import Foundation

/// Files a scenario puts into its guest image besides the recipe's (a test suite's build):
/// each program comes with the libraries it needs from this host, the ones under `hostRoot`
/// (found along its RUNPATH) moved to `guestRoot` like the rest of the payload.
public struct ImagePayload: Sendable, Hashable {
    public var name: String
    public var files: [GuestFile]
    /// Host paths of the ELF files among `files`.
    public var programs: [String]
    public var hostRoot: String
    public var guestRoot: String
    /// Guest symlinks: path -> target.
    public var links: [String: String]

    public init(name: String, files: [GuestFile], programs: [String], hostRoot: String, guestRoot: String, links: [String: String] = [:]) {
        self.name = name
        self.files = files
        self.programs = programs
        self.hostRoot = hostRoot
        self.guestRoot = guestRoot
        self.links = links
    }

    /// The payload's files and their libraries, by guest path. A library the recipe's files
    /// already have at the same guest path is the recipe's (another suite's newer build of the
    /// same soname is compatible); the rest come from this host.
    func guestFiles() throws -> [GuestFile] {
        let closure = try LibraryClosure().files(for: programs)
        let moved = closure.map { file -> GuestFile in
            guard file.guestPath.hasPrefix(hostRoot + "/") else { return file }
            return GuestFile(guestPath: guestRoot + file.guestPath.dropFirst(hostRoot.count), hostPath: file.hostPath, mode: file.mode)
        }
        var byPath: [String: GuestFile] = [:]
        for file in moved { byPath[file.guestPath] = file }
        for file in files { byPath[file.guestPath] = file }
        return byPath.values.sorted()
    }
}
