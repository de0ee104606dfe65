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

    /// The value of `key=` in a QEMU `a=b,c=d` option string.
    static func option(_ key: String, in value: String) -> String? {
        value.split(separator: ",").first { $0.hasPrefix(key + "=") }.map { String($0.dropFirst(key.count + 1)) }
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

    public func run(libvirt: Connection, deadline: Duration = .seconds(300)) async throws -> Outcome {
        guard let launch = transcript.launch else { throw BenchError("the transcript has no launch: no session was started with it") }
        let name = "cxllab-direct-\(UUID().uuidString.prefix(8).lowercased())"
        let fm = FileManager.default
        // As for a lab: an interrupt kills this QEMU (by its pid file) and removes the folder.
        let scratch = try await ScratchLab.make(domainName: name)
        defer { scratch.remove() }
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

        let files = scratch.files(domainType: .qemu, kernel: launch.kernel.imagePath, initrd: initrd,
                                  kernelArguments: launch.kernelArguments + ["cxllab.replay=\(Self.replayPath)"], runID: "direct", cellID: "direct")
        let spec = try launch.topology.render(files)
        try scratch.createBackingFiles(spec.backingFiles)
        let command = try DirectQEMU.command(fromLibvirtLine: try libvirt.nativeCommandLine(forDomainXML: spec.xml))
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
