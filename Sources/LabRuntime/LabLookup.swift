import Foundation
import Libvirt
import Topology
import XML

/// Labs as libvirt and the lab folders know them: for `list`, `exec`, `console`, `down` and
/// `clean`.
public enum LabLookup {
    public struct Listed: Codable, Sendable {
        public var name: String
        public var domain: String
        public var state: String
        public var kind: String
        public var kernel: String?
        public var topology: String?
        public var ownerPID: Int32?
        public var ownerAlive: Bool
    }

    /// What cxllab wrote into a domain's metadata, or nil when the domain carries none (it is
    /// not one of cxllab's, whatever its name).
    struct Metadata {
        var run: String?
        var pid: Int32?
        var topology: String?
    }

    /// The record of a running lab, by the name the user gave.
    public static func record(_ name: String) throws -> LabRecord {
        let domainName = try LabNames.validated(name)
        guard let record = LabRecord.load(domainName: domainName) else {
            throw LabError(.notFound, "no lab named \(name); `cxllab list` shows the running ones")
        }
        return record
    }

    static func metadata(_ domain: Domain) -> Metadata? {
        guard let xml = try? domain.metadata(namespace: DomainXMLNamespace.lab.uri),
              let document = try? XMLDocument(parsing: xml) else { return nil }
        let run = try? document.string("/*/@run")
        let pid = (try? document.string("/*/@owner-pid")).flatMap { $0.flatMap { Int32($0) } }
        let topology = try? document.string("/*/@topology")
        return Metadata(run: run ?? nil, pid: pid, topology: topology ?? nil)
    }

    public static func all(libvirt: Connection) throws -> [Listed] {
        try libvirt.allDomains().filter { $0.name.hasPrefix(LabNames.prefix) }.compactMap { domain in
            guard let meta = metadata(domain) else { return nil }
            let record = LabRecord.load(domainName: domain.name)
            return Listed(name: LabNames.labName(domain.name), domain: domain.name, state: (try? domain.state().description) ?? "unknown",
                          kind: meta.run == "up" ? "up" : "run", kernel: record?.kernelRelease, topology: meta.topology,
                          ownerPID: meta.pid, ownerAlive: ProcessLiveness.isAlive(meta.pid))
        }.sorted { $0.name < $1.name }
    }

    /// Destroys stray domains (cxllab's own: they carry its metadata) and removes lab folders
    /// with no domain and no live owner; returns what it did.
    public static func clean(includingUp: Bool, libvirt: Connection) throws -> [String] {
        var done: [String] = []
        var keep: Set<String> = []
        for domain in try libvirt.allDomains() where domain.name.hasPrefix(LabNames.prefix) {
            guard let meta = metadata(domain) else {
                keep.insert(domain.name)
                done.append("left \(domain.name) alone: it carries no cxllab metadata")
                continue
            }
            let stray = includingUp || (meta.run != "up" && !ProcessLiveness.isAlive(meta.pid))
            guard stray else { keep.insert(domain.name); continue }
            if (try? domain.isActive()) == true { try? domain.destroy() }
            try? domain.undefine()
            done.append("destroyed domain \(domain.name)")
        }
        let root = LabPaths.labsRoot
        let fm = FileManager.default
        for folder in (try? fm.contentsOfDirectory(atPath: root)) ?? [] where !keep.contains(folder) {
            let path = root + "/" + folder
            // Only folders cxllab made: a lab's name and its owner file.
            guard folder.hasPrefix(LabNames.prefix), fm.fileExists(atPath: path + "/" + LabPaths.ownerFile) else { continue }
            // A running cxllab may be preparing this lab, its domain not started yet.
            if let owner = LabPaths.liveOwner(ofFolder: path), owner != getpid() { continue }
            do {
                try LabPaths.removeStrayFolder(path)
                done.append("removed \(path)")
            } catch {
                done.append("could not remove \(path): \(error.localizedDescription)")
            }
        }
        return done
    }
}
