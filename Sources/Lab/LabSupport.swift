import AgentProtocol
import Foundation
import Synchronization
import Topology

public enum LabPaths {
    /// Lab folders must be reachable by the QEMU user, so they are not under root's home:
    /// `$CXLLAB_LABS_DIR`, else /var/lib/cxllab/labs.
    public static var labsRoot: String {
        ProcessInfo.processInfo.environment["CXLLAB_LABS_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/var/lib/cxllab/labs"
    }

    static let ownerFile = "owner.pid"

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
    public static func makeLabFolder(_ folder: String) throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        try "\(getpid())\n".write(toFile: folder + "/" + ownerFile, atomically: false, encoding: .utf8)
    }

    /// Free bytes on the file system that holds the labs, or nil when it cannot be read.
    public static func freeBytes(at path: String = labsRoot) -> UInt64? {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return nil }
        return UInt64(info.f_bavail) * UInt64(info.f_frsize)
    }

    /// What to tell a user whose labs disk is full.
    static func diskFullAdvice(_ folder: String) -> String {
        "the disk holding \(folder) is full (a lab copies its kernel and image there, and its memory backing files grow "
            + "as the guest writes them): free space there, or set CXLLAB_LABS_DIR to a folder on a larger disk"
    }

    static func isOutOfSpace(_ error: Error) -> Bool {
        if let cocoa = error as? CocoaError, cocoa.code == .fileWriteOutOfSpace { return true }
        let text = "\(error)"
        return text.contains("No space left on device") || text.contains("ENOSPC") || (error as NSError).code == Int(ENOSPC)
            || ((error as NSError).userInfo[NSUnderlyingErrorKey] as? NSError)?.code == Int(ENOSPC)
    }

    /// Removes a lab folder left behind, stopping a QEMU that cxllab ran in it directly.
    public static func removeStrayFolder(_ folder: String) throws {
        DirectQEMUProcess.kill(inFolder: folder)
        try FileManager.default.removeItem(atPath: folder)
    }

    /// The pid in a lab folder's owner file, when it names a process that is running.
    public static func liveOwner(ofFolder folder: String) -> Int32? {
        guard let text = try? String(contentsOfFile: folder + "/" + ownerFile, encoding: .utf8),
              let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0 else { return nil }
        return kill(pid, 0) == 0 || errno == EPERM ? pid : nil
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
        !name.isEmpty && name.count <= 64 && name.allSatisfy { $0.isLetter || $0.isNumber || "-_.".contains($0) } && !name.hasPrefix(".")
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

    public static func load(domainName: String) -> LabRecord? {
        let path = LabPaths.labsRoot + "/" + domainName + "/lab.json"
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .utcISO8601
        return try? decoder.decode(LabRecord.self, from: data)
    }
}

/// The sessions this process runs, so SIGINT and SIGTERM can tear them all down.
final class SessionRegistry: @unchecked Sendable {
    static let shared = SessionRegistry()
    private let lock = NSLock()
    private var labs: [ObjectIdentifier: LabResources] = [:]

    func add(_ lab: LabResources) { lock.withLock { labs[ObjectIdentifier(lab)] = lab } }
    func remove(_ lab: LabResources) { _ = lock.withLock { labs.removeValue(forKey: ObjectIdentifier(lab)) } }
    var all: [LabResources] { lock.withLock { Array(labs.values) } }
}

/// On SIGINT or SIGTERM: every lab this process is starting or running (not those handed
/// over by `cxllab up`) is destroyed and its files removed, then cxllab exits 130 or 143.
public enum InterruptTeardown {
    nonisolated(unsafe) private static var sources: [DispatchSourceSignal] = []
    private static let interrupted = Mutex(false)
    private static let installed: Bool = {
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler {
                interrupted.withLock { $0 = true }
                let labs = SessionRegistry.shared.all
                if !labs.isEmpty {
                    FileHandle.standardError.write(Data("\ncxllab: interrupted; removing \(labs.count) lab(s)\n".utf8))
                }
                for lab in labs { lab.teardownNow() }
                // _exit, not exit: other threads are still running tasks, and the process's
                // exit handlers and global destructors must not run under them.
                fflush(nil)
                _exit(128 + signalNumber)
            }
            source.resume()
            sources.append(source)
        }
        return true
    }()

    public static func install() { _ = installed }

    /// Called before cxllab exits on its own: while an interrupt's teardown runs, the process
    /// must not end under it (the handler exits with 130 or 143 when it is done).
    public static func waitIfInterrupted() {
        guard interrupted.withLock({ $0 }) else { return }
        while true { pause() }
    }
}
