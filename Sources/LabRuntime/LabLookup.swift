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
    struct Metadata: Equatable {
        var run: String?
        var pid: Int32?
        var topology: String?

        /// The metadata element libvirt returns for cxllab's namespace, or nil when there is
        /// none or it is not XML.
        init?(xml: String?) {
            guard let xml, let document = try? XMLDocument(parsing: xml) else { return nil }
            run = (try? document.string("/*/@run")) ?? nil
            pid = (try? document.string("/*/@owner-pid")).flatMap { $0.flatMap { Int32($0) } }
            topology = (try? document.string("/*/@topology")) ?? nil
        }
    }

    /// The record of a running lab in `paths`, by the name the user gave.
    public static func record(_ name: String, paths: LabPaths) throws -> LabRecord {
        let domainName = try paths.domainName(ofLab: name)
        guard let record = LabRecord.load(domainName: domainName, paths: paths) else {
            throw LabError(.notFound, "no lab named \(name); `cxllab list` shows the running ones")
        }
        return record
    }

    static func metadataXML(_ domain: Domain) -> String? {
        (try? domain.metadata(namespace: DomainXMLNamespace.lab.uri)) ?? nil
    }

    static func metadata(_ domain: Domain) -> Metadata? { Metadata(xml: metadataXML(domain)) }

    /// Whether `cxllab down` may take a lab down; throws the refusal, with the fix, when not.
    /// `domain` is the lab's libvirt domain, nil when only its folder (in `paths`) is left.
    public static func checkDown(lab: String, domain: Domain?, force: Bool, paths: LabPaths) throws {
        let domainName = try paths.domainName(ofLab: lab)
        if let refusal = downRefusal(lab: lab, domain: domain.map { _ in domainName }, metadataXML: domain.flatMap(metadataXML),
                                     folderOwner: LabPaths.owner(ofFolder: paths.folder(ofDomain: domainName)), force: force,
                                     currentPID: getpid(), isAlive: { ProcessLiveness.isAlive($0) }) {
            throw refusal
        }
    }

    /// The decision of `down`, from facts alone: a domain (`domain`, its metadata as libvirt
    /// gave it) that does not carry cxllab's metadata is not cxllab's and is never touched; a
    /// lab whose owner (the domain's owner-pid, else the folder's owner file) is another
    /// process that lives is refused unless `force`. Nil when `down` may go ahead.
    static func downRefusal(lab: String, domain: String?, metadataXML: String?, folderOwner: Int32?, force: Bool,
                            currentPID: Int32, isAlive: (Int32) -> Bool) -> LabError? {
        let metadata = Metadata(xml: metadataXML)
        if let domain, metadata == nil {
            return LabError(.notFound, "the libvirt domain \(domain) carries no cxllab metadata, so cxllab did not start it: `cxllab down \(lab)` "
                + "leaves it alone (if it is yours, remove it with `virsh destroy \(domain)`)")
        }
        let owners = [metadata?.pid, folderOwner].compactMap { $0 }.filter { $0 > 0 && $0 != currentPID }
        guard !force, let owner = owners.first(where: isAlive) else { return nil }
        return LabError(.ownerAlive, "lab \(lab) belongs to a cxllab process that is still running (pid \(owner)): stop that process "
            + "(it tears the lab down itself), or give `cxllab down \(lab) --force` to take the lab down under it")
    }

    /// cxllab's labs that libvirt runs, with what their records in `paths` say.
    public static func all(libvirt: Connection, paths: LabPaths) throws -> [Listed] {
        try libvirt.allDomains().filter { $0.name.hasPrefix(LabNames.prefix) }.compactMap { domain in
            guard let meta = metadata(domain) else { return nil }
            let record = LabRecord.load(domainName: domain.name, paths: paths)
            // A restored lab runs under its saved copy's domain name; its record has the name it was given.
            return Listed(name: record?.name ?? LabNames.labName(domain.name), domain: domain.name, state: (try? domain.state().description) ?? "unknown",
                          kind: meta.run == "up" ? "up" : "run", kernel: record?.kernelRelease, topology: meta.topology,
                          ownerPID: meta.pid, ownerAlive: ProcessLiveness.isAlive(meta.pid))
        }.sorted { $0.name < $1.name }
    }

    /// Destroys stray domains (cxllab's own: they carry its metadata) and removes lab folders
    /// with no domain and no live owner in `paths`; returns what it did.
    public static func clean(includingUp: Bool, libvirt: Connection, paths: LabPaths) throws -> [String] {
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
        let root = paths.root
        let fm = FileManager.default
        for folder in (try? fm.contentsOfDirectory(atPath: root)) ?? [] where !keep.contains(folder) {
            let path = root + "/" + folder
            // Only folders cxllab made: a lab's name and its owner file.
            // A link is not a lab folder: what a name link leads to is judged under its own name.
            guard folder.hasPrefix(LabNames.prefix), !LabPaths.isSymbolicLink(path),
                  fm.fileExists(atPath: path + "/" + LabPaths.ownerFile) else { continue }
            // A running cxllab may be preparing this lab, its domain not started yet.
            if let owner = LabPaths.liveOwner(ofFolder: path), owner != getpid() { continue }
            do {
                try LabPaths.removeStrayFolder(path)
                done.append("removed \(path)")
            } catch {
                done.append("could not remove \(path): \(error.localizedDescription)")
            }
        }
        // Name links (`LabNameLink`) whose lab folder is gone, now or before.
        for name in (try? fm.contentsOfDirectory(atPath: root)) ?? [] where name.hasPrefix(LabNames.prefix) {
            let path = root + "/" + name
            if let target = LabPaths.nameLinkTarget(path), !fm.fileExists(atPath: root + "/" + target) {
                unlink(path)
                done.append("removed the name link \(path)")
            }
        }
        return done
    }
}
