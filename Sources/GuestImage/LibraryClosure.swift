import Foundation

/// A file that goes into the guest: where it lands, and the host file it is copied from.
public struct GuestFile: Sendable, Hashable, Comparable {
    public let guestPath: String
    public let hostPath: String
    public let mode: UInt32

    public init(guestPath: String, hostPath: String, mode: UInt32 = 0o755) {
        self.guestPath = guestPath
        self.hostPath = hostPath
        self.mode = mode
    }

    public static func < (lhs: GuestFile, rhs: GuestFile) -> Bool { lhs.guestPath < rhs.guestPath }
}

public struct LibraryNotFound: Error, Sendable, CustomStringConvertible {
    public let library: String
    public let neededBy: String
    public let searched: [String]
    public let sysroot: String

    public var description: String {
        let root = sysroot == "/" ? "" : " under \(sysroot)"
        return "\(neededBy) needs \(library), which is in none of \(searched.joined(separator: ", "))\(root); "
            + "install the Debian package that provides it, or drop \((neededBy as NSString).lastPathComponent) from the image recipe"
    }
}

/// Finds the shared libraries a set of binaries needs, transitively, the way the dynamic
/// loader would: each ELF file's DT_NEEDED entries looked up along its DT_RUNPATH and the
/// loader's default paths, all under a sysroot (the host's `/`, or a folder of another Debian
/// suite's packages whose libc the guest then uses instead of the host's).
public struct LibraryClosure: Sendable {
    public static let defaultSearchPaths = [
        "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib",
    ]

    public let sysroot: String
    public let searchPaths: [String]

    public init(sysroot: String = "/", searchPaths: [String] = LibraryClosure.defaultSearchPaths) {
        self.sysroot = sysroot
        self.searchPaths = searchPaths
    }

    /// Where a guest path's file is on the host. A suite's packages unpacked into a sysroot
    /// lack merged-/usr's links (/lib -> usr/lib, /lib64 -> usr/lib64), so /usr is tried too.
    func host(_ guestPath: String) -> String {
        guard sysroot != "/" else { return guestPath }
        let direct = sysroot + guestPath
        if FileManager.default.fileExists(atPath: direct) { return direct }
        let merged = sysroot + "/usr" + guestPath
        if ["/lib", "/lib64", "/bin", "/sbin"].contains(where: { guestPath.hasPrefix($0 + "/") }),
           FileManager.default.fileExists(atPath: merged) { return merged }
        return direct
    }

    /// The binaries (by guest path) with the interpreter and every library they need.
    public func files(for binaries: [String]) throws -> [GuestFile] {
        var result: [String: GuestFile] = [:]
        var queue: [(guestPath: String, neededBy: String)] = binaries.map { ($0, $0) }
        while !queue.isEmpty {
            let (guestPath, _) = queue.removeFirst()
            guard result[guestPath] == nil else { continue }
            let hostPath = host(guestPath)
            result[guestPath] = GuestFile(guestPath: guestPath, hostPath: resolvedHostPath(hostPath))
            let elf = try ELFFile(path: hostPath)
            if let interpreter = elf.interpreter, result[interpreter] == nil {
                queue.append((interpreter, guestPath))
            }
            for library in elf.needed {
                let origin = (guestPath as NSString).deletingLastPathComponent
                let paths = elf.runPaths.map { $0.replacingOccurrences(of: "$ORIGIN", with: origin) } + searchPaths
                guard let found = paths.map({ $0 + "/" + library }).first(where: { FileManager.default.fileExists(atPath: host($0)) }) else {
                    throw LibraryNotFound(library: library, neededBy: guestPath, searched: paths, sysroot: sysroot)
                }
                if result[found] == nil { queue.append((found, guestPath)) }
            }
        }
        return result.values.sorted()
    }

    /// Symlinks (libc.so.6 -> libc-2.36.so, /lib -> usr/lib) resolved inside the sysroot.
    func resolvedHostPath(_ path: String) -> String {
        let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        if sysroot == "/" || resolved.hasPrefix(sysroot) { return resolved }
        // An absolute link inside the sysroot points at the host's tree: re-root it.
        return sysroot + resolved
    }
}
