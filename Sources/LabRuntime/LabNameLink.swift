import Foundation
import Libvirt

/// A kept lab (`up`, `repro --keep`) restored from a saved machine runs under the saved copy's
/// domain name (`cxllab-m<key>-<n>`: libvirt restores a save image only under the name it was
/// saved with), so the name the user gave it is a link in the labs folder, `cxllab-<name>` →
/// `cxllab-m<key>-<n>` (relative, a sibling), through which `exec`, `console` and `down` find
/// its record as they find a booted lab's folder.
extension LabPaths {
    /// The path a lab name's folder (a booted lab) or link (a restored one) has.
    func namePath(_ labName: String) throws -> String {
        folder(ofDomain: try LabNames.validated(labName))
    }

    static func isSymbolicLink(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFLNK
    }

    /// The sibling folder name a path's link names, when the path is one of cxllab's name
    /// links (a symbolic link to a `cxllab-` sibling); nil for anything else.
    static func nameLinkTarget(_ path: String) -> String? {
        guard isSymbolicLink(path), let target = try? FileManager.default.destinationOfSymbolicLink(atPath: path),
              !target.contains("/"), target.hasPrefix(LabNames.prefix) else { return nil }
        return target
    }

    /// The domain a lab of this name runs under: its link's target, else the name's own domain.
    public func domainName(ofLab labName: String) throws -> String {
        let own = try LabNames.validated(labName)
        return Self.nameLinkTarget(folder(ofDomain: own)) ?? own
    }

    /// Refuses a name a running lab has, booted (its own domain runs) or restored (its link
    /// leads to a running domain).
    func checkNameFree(_ labName: String, libvirt: Connection) throws {
        let own = try LabNames.validated(labName)
        let domains = [own] + (Self.nameLinkTarget(try namePath(labName)).map { [$0] } ?? [])
        for domain in domains where try libvirt.lookupDomain(named: domain) != nil {
            throw LabError(.labExists, "a lab named \(labName) is running already (domain \(domain)); pick another --name or `cxllab down \(labName)`")
        }
    }

    /// Links the lab name to the folder of `domainName`; a stale link or a lab folder of that
    /// name whose lab is gone (no live owner) is replaced. Returns the link's path.
    func linkName(_ labName: String, to domainName: String) throws -> String {
        let path = try namePath(labName)
        let fm = FileManager.default
        if Self.nameLinkTarget(path) != nil {
            unlink(path)
        } else if fm.fileExists(atPath: path) {
            if let owner = Self.liveOwner(ofFolder: path), owner != getpid() {
                throw LabError(.labExists, "a lab named \(labName) is being made by process \(owner) (\(path)); pick another --name")
            }
            try? Self.removeStrayFolder(path)
        }
        guard symlink((folder(ofDomain: domainName) as NSString).lastPathComponent, path) == 0 else {
            throw LabError(.host, "cannot link the lab name \(path) to \(domainName): \(String(cString: strerror(errno)))")
        }
        return path
    }

    /// Removes a lab name's link when it still leads to `domainName`'s folder (`down`).
    public func removeNameLink(ofLab labName: String, to domainName: String) {
        if let path = try? namePath(labName) { Self.removeNameLink(path, to: domainName) }
    }

    /// Removes the name link at `path` when it still leads to `domainName`'s folder.
    static func removeNameLink(_ path: String, to domainName: String) {
        if nameLinkTarget(path) == domainName { unlink(path) }
    }
}
