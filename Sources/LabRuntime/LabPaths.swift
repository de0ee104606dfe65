import AgentProtocol
import Foundation
import Synchronization
import HostSupport
import Topology

/// A labs folder (`LabSettings.labsRoot`, given by the context) and the lab folders in it.
public struct LabPaths: Sendable, Hashable {
    /// Where lab folders live.
    public let root: String

    public init(root: String) { self.root = root }

    static let ownerFile = "owner.pid"

    /// A lab's folder, for a name already checked by `LabNames.validated`.
    public func folder(ofDomain domainName: String) -> String { root + "/" + domainName }

    /// The files of a lab kept in `folder`: its console log and agent socket there, and this
    /// process, now, as its owner in the domain's metadata.
    static func files(in folder: String, domainName: String, domainType: LabFiles.DomainType, kernel: String, initrd: String,
                      kernelArguments: [String], runID: String, cellID: String) -> LabFiles {
        LabFiles(domainName: domainName, domainType: domainType, kernel: kernel, initrd: initrd, kernelArguments: kernelArguments,
                 labDirectory: folder, consoleLog: folder + "/console.log", agentSocket: folder + "/agent.sock",
                 agentChannel: AgentProtocol.channelName,
                 metadata: .init(runID: runID, cellID: cellID, ownerPID: getpid(), created: Date()))
    }

    /// Makes a lab folder whose first file names the process that owns it, so `cxllab clean`
    /// leaves alone the folders of a cxllab that is still running.
    public func makeLabFolder(_ folder: String) throws {
        do {
            let fm = FileManager.default
            try fm.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
            try "\(getpid())\n".write(toFile: folder + "/" + Self.ownerFile, atomically: false, encoding: .utf8)
        } catch {
            if LabError.isOutOfSpace(error) { throw diskFull(cause: error) }
            throw LabError(.host, "cannot make the lab folder \(folder): \(error.localizedDescription)", cause: error)
        }
    }

    /// Lab folders this process has claimed and not yet torn down: of the process, not of a
    /// context, as the owner file that guards a folder across processes names the process.
    private static let claimed = Mutex<Set<String>>([])

    /// Claims a lab's folder for this process, atomically across processes (a lock on the
    /// labs folder itself, held only while the owner is checked and the folder made: no lock
    /// file is left among the labs) and within it (a set of claims): of two `up --name X` at
    /// once, the second fails here and removes nothing, so its teardown can never delete the
    /// first one's folder. A folder whose owner is gone is taken over. `release` gives the
    /// claim back once the folder is removed.
    public func claim(_ folder: String, labName: String) async throws {
        do {
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        } catch {
            throw LabError(.host, "cannot make the labs folder \(root): \(error.localizedDescription)", cause: error)
        }
        // A claim holds the lock for a moment: a minute's wait is a stuck holder.
        try await FileLock.withLock(onFolder: root, deadline: .seconds(60)) {
            let fresh = Self.claimed.withLock { $0.insert(folder).inserted }
            guard fresh else {
                throw LabError(.labExists, "a lab named \(labName) is being made by this cxllab already (\(folder)); pick another --name")
            }
            do {
                if let owner = Self.liveOwner(ofFolder: folder), owner != getpid() {
                    throw LabError(.labExists, "a lab named \(labName) is being made by process \(owner) (\(folder)); pick another --name")
                }
                try? FileManager.default.removeItem(atPath: folder)
                try makeLabFolder(folder)
            } catch {
                Self.claimed.withLock { _ = $0.remove(folder) }
                throw error
            }
        }
    }

    /// Gives back this process's claim on a folder it has removed.
    static func release(_ folder: String) {
        claimed.withLock { _ = $0.remove(folder) }
    }

    /// Free bytes on the file system that holds the labs folder, or nil when it cannot be read.
    public func freeBytes() -> UInt64? { DiskSpace.free(at: root) }

    /// What to tell a user whose labs disk is full.
    static func diskFullAdvice(_ folder: String) -> String {
        "the disk holding \(folder) is full (a lab copies its kernel and image there, and its memory backing files grow "
            + "as the guest writes them): free space there, or set CXLLAB_LABS_DIR to a folder on a larger disk"
    }

    public func diskFull(cause: (any Error)? = nil) -> LabError {
        LabError(.diskFull, Self.diskFullAdvice(root), cause: cause)
    }

    /// Removes a lab folder left behind, stopping a QEMU that cxllab ran in it directly.
    public static func removeStrayFolder(_ folder: String) throws {
        QEMUPidFile.kill(inFolder: folder)
        try FileManager.default.removeItem(atPath: folder)
    }

    /// The pid in a lab folder's owner file, when it names a process that is running.
    public static func liveOwner(ofFolder folder: String) -> Int32? {
        guard let pid = owner(ofFolder: folder) else { return nil }
        return ProcessLiveness.isAlive(pid) ? pid : nil
    }

    /// The pid in a lab folder's owner file, alive or not.
    public static func owner(ofFolder folder: String) -> Int32? {
        guard let text = try? String(contentsOfFile: folder + "/" + ownerFile, encoding: .utf8) else { return nil }
        return Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}

public enum ProcessLiveness {
    /// Whether a process of that pid exists (another user's counts).
    public static func isAlive(_ pid: Int32?) -> Bool {
        guard let pid, pid > 0 else { return false }
        return kill(pid, 0) == 0 || errno == EPERM
    }
}

/// The pid file of a QEMU that cxllab started itself (not through libvirt), so whoever tears
/// the folder down, this process or a later `cxllab clean`, stops that QEMU first.
public enum QEMUPidFile {
    public static let name = "qemu.pid"

    static func kill(inFolder folder: String) {
        guard let text = try? String(contentsOfFile: folder + "/" + name, encoding: .utf8),
              let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0,
              let command = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return }
        // Only the QEMU that wrote this pid file (its command line names it): a pid the system
        // gave to another process since, another VM included, is left alone.
        let arguments = command.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        guard arguments.first.map({ ($0 as NSString).lastPathComponent.hasPrefix("qemu") }) == true,
              arguments.contains(where: { $0.contains(folder + "/" + name) }) else { return }
        Glibc.kill(pid, SIGKILL)
    }

    /// The QEMU of a libvirt domain, killed through libvirt's own pid file when libvirtd cannot
    /// destroy it (stopped, wedged, gone): only a process whose command line names exactly this
    /// guest. libvirtd, once it answers again, finds its QEMU gone and forgets the domain.
    static func killLibvirtGuest(named domain: String, runDirectory: String = "/run/libvirt/qemu") -> Bool {
        guard let text = try? String(contentsOfFile: runDirectory + "/" + domain + ".pid", encoding: .utf8),
              let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0,
              let command = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
        let arguments = command.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        guard arguments.first.map({ ($0 as NSString).lastPathComponent.hasPrefix("qemu") }) == true,
              arguments.contains(where: { $0 == "guest=" + domain || $0.hasPrefix("guest=" + domain + ",") }) else { return false }
        return Glibc.kill(pid, SIGKILL) == 0
    }
}

public enum LabNames {
    public static let prefix = "cxllab-"

    public static func domainName(_ lab: String) -> String {
        lab.hasPrefix(prefix) ? lab : prefix + lab
    }

    public static func labName(_ domain: String) -> String {
        domain.hasPrefix(prefix) ? String(domain.dropFirst(prefix.count)) : domain
    }

    /// Lab names become domain and file names: letters, digits, dash, underscore, dot.
    public static func isValid(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 64 && name.allSatisfy { ($0.isASCII && ($0.isLetter || $0.isNumber)) || "-_.".contains($0) }
            && !name.hasPrefix(".") && !name.hasPrefix("-")
    }

    /// The domain name of a lab the user named, or an error that says what a name may be.
    public static func validated(_ name: String) throws -> String {
        let bare = name.hasSuffix("/") ? String(name.dropLast()) : name
        guard isValid(labName(bare)) else {
            throw LabError(.invalidName, "'\(name)' is not a lab name: use up to 64 letters, digits, '-', '_' and '.', not starting with '.' or '-'")
        }
        return domainName(bare)
    }
}

/// What `cxllab up` leaves on disk about a lab, for `list`, `exec`, `console` and `down`.
public struct LabRecord: Sendable, Codable, Hashable {
    public var name: String
    public var domainName: String
    public var folder: String
    public var topology: String
    public var kernel: String
    public var kernelRelease: String
    public var image: String
    public var shell: Bool
    public var created: Date
    public var ownerPID: Int32

    public var agentSocket: String { folder + "/agent.sock" }
    public var consoleLog: String { folder + "/console.log" }

    func save() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .utcISO8601
        try encoder.encode(self).write(to: URL(fileURLWithPath: folder + "/lab.json"))
    }

    /// The record of a lab by its domain name (checked by `LabNames.validated`).
    public static func load(domainName: String, paths: LabPaths) -> LabRecord? {
        guard let data = FileManager.default.contents(atPath: paths.folder(ofDomain: domainName) + "/lab.json") else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .utcISO8601
        return try? decoder.decode(LabRecord.self, from: data)
    }
}
