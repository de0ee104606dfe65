import AgentProtocol
import Foundation
import GuestImage
import HostSupport
import LabRuntime
import Libvirt
import Topology

/// A QEMU command line that runs a lab's machine without libvirt: libvirt's own translation
/// of the domain XML (`qemu-argv`), less what only libvirt uses (its monitor socket, its
/// secret key, a paused start, staying alive after power-off). `cxllab bench` runs it to
/// measure what libvirt and the agent add.
public enum DirectQEMU {
    public struct ParseError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Splits a POSIX shell line into words (single and double quotes, backslashes).
    public static func words(_ line: String) throws -> [String] {
        var words: [String] = []
        var current = ""
        var inWord = false
        var iterator = Array(line).makeIterator()
        while let character = iterator.next() {
            switch character {
            case " ", "\t", "\n":
                if inWord { words.append(current); current = ""; inWord = false }
            case "'":
                inWord = true
                var closed = false
                while let next = iterator.next() {
                    if next == "'" { closed = true; break }
                    current.append(next)
                }
                if !closed { throw ParseError(description: "unterminated single quote in the QEMU command line") }
            case "\"":
                inWord = true
                var closed = false
                while let next = iterator.next() {
                    if next == "\"" { closed = true; break }
                    if next == "\\", let escaped = iterator.next() { current.append(escaped); continue }
                    current.append(next)
                }
                if !closed { throw ParseError(description: "unterminated double quote in the QEMU command line") }
            case "\\":
                inWord = true
                if let escaped = iterator.next() { current.append(escaped) }
            default:
                inWord = true
                current.append(character)
            }
        }
        if inWord { words.append(current) }
        return words
    }

    /// The emulator and its arguments from libvirt's line, ready to run directly.
    public static func command(fromLibvirtLine line: String) throws -> (executable: String, arguments: [String]) {
        var words = try words(line)[...]
        // libvirt puts the environment first: NAME=value words.
        while let first = words.first, !first.hasPrefix("/"), first.contains("=") { words.removeFirst() }
        guard let executable = words.popFirst() else { throw ParseError(description: "libvirt's QEMU command line has no emulator") }
        var arguments: [String] = []
        while let word = words.popFirst() {
            switch word {
            case "-S", "-no-shutdown":
                continue
            case "-object" where words.first?.contains("\"qom-type\":\"secret\"") == true:
                words.removeFirst()
            case "-mon":
                words.removeFirst()
            case "-chardev" where words.first.flatMap { option("id", in: $0) }.map { $0.hasPrefix("charmonitor") } == true:
                words.removeFirst()
            default:
                arguments.append(word)
            }
        }
        return (executable, arguments + ["-no-reboot"])
    }

    /// QEMU's seccomp filter, as libvirt sets it for its guests: no obsolete system calls, no
    /// set*id, no fork or exec, no scheduler or affinity changes.
    public static let sandbox = "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"

    /// The command confined as libvirt confines its QEMU: setpriv drops to `user` (its uid,
    /// primary group and groups, no capabilities, no new privileges) before QEMU starts, and
    /// QEMU runs under `sandbox`. QEMU's own `-run-with user=` is not used: it changes uid
    /// after the filter is in place, which `elevateprivileges=deny` kills (SIGSYS, QEMU 10).
    /// A sandbox or a user the line already names gives way to these.
    public static func confined(_ command: (executable: String, arguments: [String]), user: UnprivilegedUser,
                                setpriv: String = "setpriv") -> (executable: String, arguments: [String]) {
        var arguments: [String] = []
        var words = command.arguments[...]
        while let word = words.popFirst() {
            switch word {
            case "-sandbox", "-runas", "-chroot":
                _ = words.popFirst()
            case "-run-with":
                // Keeps what is not about who QEMU runs as (async-teardown).
                let kept = (words.popFirst() ?? "").split(separator: ",").filter { !$0.hasPrefix("user=") && !$0.hasPrefix("chroot=") }
                if !kept.isEmpty { arguments += ["-run-with", kept.joined(separator: ",")] }
            default:
                arguments.append(word)
            }
        }
        let drop = ["--reuid=\(user.uid)", "--regid=\(user.gid)", "--init-groups", "--inh-caps=-all", "--no-new-privs", "--"]
        return (setpriv, drop + [command.executable] + arguments + ["-sandbox", sandbox])
    }

    /// The first of `candidates` that is a user here: libvirt's QEMU user where libvirt is
    /// installed (it is in the kvm group), else nobody.
    public static func unprivilegedUser(candidates: [String] = ["libvirt-qemu", "nobody"]) -> UnprivilegedUser? {
        for name in candidates {
            guard let entry = getpwnam(name), entry.pointee.pw_uid != 0 else { continue }
            return UnprivilegedUser(name: name, uid: entry.pointee.pw_uid, gid: entry.pointee.pw_gid)
        }
        return nil
    }

    /// Gives the lab folder and what is in it to `user`, so the QEMU running as that user
    /// can read the kernel and initramfs copied there, write its backing files, and make its
    /// console log, agent socket and pid file there.
    public static func handOver(folder: String, to user: UnprivilegedUser) throws {
        var paths = [folder]
        if let enumerator = FileManager.default.enumerator(atPath: folder) {
            while let relative = enumerator.nextObject() as? String { paths.append(folder + "/" + relative) }
        }
        for path in paths where lchown(path, user.uid, user.gid) != 0 {
            throw BenchError("cannot give \(path) to \(user.name), the user QEMU runs as: \(String(cString: strerror(errno)))")
        }
    }

    /// The value of `key=` in a QEMU `a=b,c=d` option string.
    static func option(_ key: String, in value: String) -> String? {
        value.split(separator: ",").first { $0.hasPrefix(key + "=") }.map { String($0.dropFirst(key.count + 1)) }
    }
}

/// Who a QEMU run outside libvirt runs as.
public struct UnprivilegedUser: Sendable, Hashable {
    public let name: String
    public let uid: uid_t
    public let gid: gid_t

    public init(name: String, uid: uid_t, gid: gid_t) {
        self.name = name
        self.uid = uid
        self.gid = gid
    }
}

/// A recorded session's guest work, run again by QEMU alone: the same kernel, image and
/// devices (libvirt's own command line for the same topology), with the recorded requests
/// appended to the initramfs and replayed by the agent in place of serving the host.
public struct DirectReplay: Sendable {
    public struct Outcome: Sendable {
        /// From starting QEMU to its exit after the guest powered off.
        public let seconds: Double
        public let requests: Int
        public let errorReplies: Int
        /// The replay itself, as the agent in the guest timed it.
        public let replaySeconds: Double
        public let commandLine: [String]
    }

    public static let replayPath = "/cxllab/replay.jsonl"
    static let donePrefix = "cxllab-replay: done: "

    public let transcript: SessionTranscript
    public init(transcript: SessionTranscript) { self.transcript = transcript }

    /// The lab folder, slot and interrupt teardown are the context's.
    public func run(context: LabContext, libvirt: Connection, deadline: Duration = .seconds(300)) async throws -> Outcome {
        guard let launch = transcript.launch else { throw BenchError("the transcript has no launch: no session was started with it") }
        let name = "cxllab-direct-\(UUID().uuidString.prefix(8).lowercased())"
        // As for a lab: an interrupt kills this QEMU (by its pid file) and removes the folder.
        let scratch = try await ScratchLab.make(domainName: name, context: context)
        do {
            let outcome = try await replay(launch, in: scratch, libvirt: libvirt, deadline: deadline)
            await scratch.remove()
            return outcome
        } catch {
            await scratch.remove()
            throw error
        }
    }

    private func replay(_ launch: SessionTranscript.Launch, in scratch: ScratchLab, libvirt: Connection, deadline: Duration) async throws -> Outcome {
        let fm = FileManager.default
        let folder = scratch.folder

        var extra = CPIOArchive()
        extra.add(Self.replayPath, .bytes(Data(transcript.requests.joined().utf8)))
        try extra.write(to: folder + "/replay.cpio")
        // The kernel unpacks concatenated archives in order, so the image stays as it is.
        let initrd = folder + "/initramfs.cpio"
        try fm.copyItem(atPath: launch.image.path, toPath: initrd)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: initrd))
        try handle.seekToEnd()
        try handle.write(contentsOf: try Data(contentsOf: URL(fileURLWithPath: folder + "/replay.cpio")))
        try handle.close()

        // QEMU runs as an unprivileged user, who may not read the cache: the kernel is copied
        // beside the initramfs, into the folder handed over to that user.
        guard let user = DirectQEMU.unprivilegedUser() else {
            throw BenchError("neither libvirt-qemu nor nobody is a user on this host: QEMU run directly needs an unprivileged user to run as")
        }
        let kernel = folder + "/bzImage"
        try fm.copyItem(atPath: launch.kernel.imagePath, toPath: kernel)
        let files = scratch.files(domainType: .qemu, kernel: kernel, initrd: initrd,
                                  kernelArguments: launch.kernelArguments + ["cxllab.replay=\(Self.replayPath)"], runID: "direct", cellID: "direct")
        let spec = try launch.topology.render(files)
        try scratch.createBackingFiles(spec.backingFiles)
        try DirectQEMU.handOver(folder: folder, to: user)
        let command = DirectQEMU.confined(try DirectQEMU.command(fromLibvirtLine: try libvirt.nativeCommandLine(forDomainXML: spec.xml)),
                                          user: user)
        let result = try await ProcessRunner.run(command.executable, command.arguments + ["-pidfile", folder + "/" + QEMUPidFile.name],
                                                 timeout: deadline)
        let console = (try? String(contentsOfFile: files.consoleLog, encoding: .utf8)) ?? ""
        guard !result.timedOut else {
            throw BenchError("QEMU run directly did not finish within \(Int(deadline.seconds)) s; console ends:\n\(console.suffix(2000))")
        }
        guard let done = console.split(separator: "\n").last(where: { $0.contains(Self.donePrefix) }) else {
            throw BenchError("QEMU run directly exited (status \(result.status)) before the replay finished: \(result.errorOutput.suffix(500))\nconsole ends:\n\(console.suffix(2000))")
        }
        // "cxllab-replay: done: N requests, E error replies, T ms"
        let numbers = done.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .punctuationCharacters)) }
        return Outcome(seconds: result.duration.seconds, requests: numbers.first ?? 0, errorReplies: numbers.dropFirst().first ?? 0,
                       replaySeconds: Double(numbers.dropFirst(2).first ?? 0) / 1000, commandLine: [command.executable] + command.arguments)
    }
}

/// A step of the bench that could not be measured, and why.
public struct BenchError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
