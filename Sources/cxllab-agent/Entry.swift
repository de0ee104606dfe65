import Agent
import AgentProtocol
#if canImport(Glibc)
import Glibc
#endif

/// The guest agent: started by the image's init after /proc, /sys and /dev are mounted and the
/// virtio modules are loaded. It is not PID 1 (init's shell is), so it reaps only its own
/// children, which `Spawn` waits for.
@main
enum AgentEntry {
    static func main() {
        let arguments = CommandLine.arguments
        if arguments.count == 3, arguments[1] == "--replay" { replay(path: arguments[2]) }
        guard let port = AgentServer.findPort(named: AgentProtocol.channelName) else {
            print("cxllab-agent: no virtio-serial port named \(AgentProtocol.channelName)")
            exit(2)
        }
        let descriptor = open(port, O_RDWR | O_CLOEXEC)
        guard descriptor >= 0 else {
            print("cxllab-agent: cannot open \(port): \(String(cString: strerror(errno)))")
            exit(2)
        }
        let handler = AgentHandler(shellEnabled: AgentHandler.shellFlagSet())
        print("cxllab-agent: serving on \(port)\(handler.shellEnabled ? " (shell enabled)" : "")")
        AgentServer(descriptor: descriptor, handler: handler).serve()
    }

    /// `--replay FILE`: the recorded requests of a cell, run here with no host (cxllab bench).
    static func replay(path: String) -> Never {
        let files = GuestFiles()
        guard let text = files.read(path) else {
            print("cxllab-agent: cannot read \(path)")
            exit(2)
        }
        let summary = AgentReplay.run(text, handler: AgentHandler(files: files, shellEnabled: true))
        print(summary.line)
        exit(0)
    }
}
