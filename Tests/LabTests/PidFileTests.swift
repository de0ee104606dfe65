import Foundation
@testable import LabRuntime
import Testing

/// Killing a QEMU by a pid file: only the process that file's QEMU is (its command line names
/// the file, or exactly the guest), never a pid the system has given to another process.
@Suite(.serialized) struct PidFileTests {
    /// `tail -f /dev/null` copied under a QEMU-like name, so it stays until killed; `extra`
    /// appear on its command line (as files tail cannot open and skips).
    final class FakeQEMU {
        let process = Process()
        let folder: String
        init(folder: String, extra: [String]) throws {
            self.folder = folder
            let binary = folder + "/qemu-system-x86_64"
            if !FileManager.default.fileExists(atPath: binary) { try FileManager.default.copyItem(atPath: URL(fileURLWithPath: "/usr/bin/tail").resolvingSymlinksInPath().path, toPath: binary) }
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = ["-f", "--", "/dev/null"] + extra
            process.standardError = FileHandle.nullDevice
            try process.run()
        }
        var pid: Int32 { process.processIdentifier }
        var alive: Bool { kill(pid, 0) == 0 && !isZombie }
        var isZombie: Bool { ((try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? "").contains(") Z ") }
        func stop() { kill(pid, SIGKILL); process.waitUntilExit() }
    }

    func scratch() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("cxllab-pid-\(UUID().uuidString.prefix(6))").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Until the process exits (its reaping, waited for on a thread of its own), for at most
    /// 30 s: a SIGKILLed process on a host busy with guests has taken over 2 s to be reaped.
    func waitUntilGone(_ fake: FakeQEMU) {
        let exited = DispatchSemaphore(value: 0)
        let process = fake.process
        Thread.detachNewThread {
            process.waitUntilExit()
            exited.signal()
        }
        _ = exited.wait(timeout: .now() + 30)
    }

    @Test func aLabPidFileKillsOnlyTheQEMUThatNamesIt() throws {
        let folder = try scratch()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // A reused pid: a QEMU-named process that does not name this lab's pid file.
        let other = try FakeQEMU(folder: folder, extra: ["-pidfile", "/elsewhere/qemu.pid"])
        defer { other.stop() }
        try "\(other.pid)\n".write(toFile: folder + "/qemu.pid", atomically: true, encoding: .utf8)
        QEMUPidFile.kill(inFolder: folder)
        usleep(200_000)
        #expect(other.alive, "another VM's QEMU was killed")
        // Not a QEMU at all.
        let sleeper = Process()
        sleeper.executableURL = URL(fileURLWithPath: "/bin/sleep")
        sleeper.arguments = ["60"]
        try sleeper.run()
        defer { kill(sleeper.processIdentifier, SIGKILL); sleeper.waitUntilExit() }
        try "\(sleeper.processIdentifier)\n".write(toFile: folder + "/qemu.pid", atomically: true, encoding: .utf8)
        QEMUPidFile.kill(inFolder: folder)
        usleep(200_000)
        #expect(kill(sleeper.processIdentifier, 0) == 0)
        // The lab's own QEMU.
        let mine = try FakeQEMU(folder: folder, extra: ["-pidfile", folder + "/qemu.pid"])
        defer { mine.stop() }
        try "\(mine.pid)\n".write(toFile: folder + "/qemu.pid", atomically: true, encoding: .utf8)
        QEMUPidFile.kill(inFolder: folder)
        waitUntilGone(mine)
        #expect(!mine.alive)
    }

    @Test func libvirtsPidFileKillsOnlyExactlyThatGuest() throws {
        let folder = try scratch()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let longer = try FakeQEMU(folder: folder, extra: ["-name", "guest=cxllab-lab2,debug-threads=on"])
        defer { longer.stop() }
        try "\(longer.pid)\n".write(toFile: folder + "/cxllab-lab.pid", atomically: true, encoding: .utf8)
        #expect(!QEMUPidFile.killLibvirtGuest(named: "cxllab-lab", runDirectory: folder))
        #expect(longer.alive, "cxllab-lab2 is not cxllab-lab")
        let exact = try FakeQEMU(folder: folder, extra: ["-name", "guest=cxllab-lab,debug-threads=on"])
        defer { exact.stop() }
        try "\(exact.pid)\n".write(toFile: folder + "/cxllab-lab.pid", atomically: true, encoding: .utf8)
        #expect(QEMUPidFile.killLibvirtGuest(named: "cxllab-lab", runDirectory: folder))
        waitUntilGone(exact)
        #expect(!exact.alive)
        #expect(!QEMUPidFile.killLibvirtGuest(named: "cxllab-none", runDirectory: folder), "no pid file, nothing killed")
    }
}
