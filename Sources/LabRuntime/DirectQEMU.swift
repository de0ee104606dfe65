import Foundation

/// A QEMU command line that runs a lab's machine without libvirt: libvirt's own translation
/// of the domain XML (`qemu-argv`), less what only libvirt uses (its monitor socket, its
/// secret key, a paused start, staying alive after power-off). `DirectQEMUBackend` runs it
/// (`cxllab bench` measures what libvirt adds with it).
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
            throw LabError(.host, "cannot give \(path) to \(user.name), the user QEMU runs as: \(String(cString: strerror(errno)))")
        }
    }

    /// The agent's channel turned round: QEMU connects to the socket the host listens on
    /// (`AgentListener`) instead of listening itself, so the host learns that QEMU is up by
    /// QEMU connecting, an event, rather than by trying to connect until it works. Only the
    /// socket chardev at `socketPath` changes.
    public static func connectingAgentChannel(_ arguments: [String], socketPath: String) -> [String] {
        var result = arguments
        for index in result.indices.dropFirst() where result[index - 1] == "-chardev" {
            let parts = result[index].split(separator: ",", omittingEmptySubsequences: false)
            guard parts.first == "socket", parts.contains(where: { $0 == "path=" + socketPath }) else { continue }
            result[index] = parts.filter { !$0.hasPrefix("server=") && !$0.hasPrefix("wait=") }.joined(separator: ",")
        }
        return result
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
