import Foundation
import LabRuntime
import Synchronization

/// On SIGINT or SIGTERM: every lab of the command's context (its session registry) is destroyed
/// and its files removed, then cxllab exits 130 or 143. Process-wide, as signals are: installed
/// here at the command line's edge, with the registry of the one context the command made.
enum InterruptTeardown {
    private static let interrupted = Mutex(false)
    /// The registry whose labs an interrupt removes, and the signal sources, kept alive for
    /// the life of the process once installed.
    private static let installed = Mutex<(sessions: SessionRegistry, sources: [any DispatchSourceSignal])?>(nil)

    private static func makeSources(_ sessions: SessionRegistry) -> [any DispatchSourceSignal] {
        [SIGINT, SIGTERM].map { signalNumber in
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler {
                interrupted.withLock { $0 = true }
                let count = sessions.count
                if count > 0 {
                    FileHandle.standardError.write(Data("\ncxllab: interrupted; removing \(count) lab(s)\n".utf8))
                }
                sessions.tearDownAll()
                // _exit, not exit: other threads are still running tasks, and the process's
                // exit handlers and global destructors must not run under them.
                fflush(nil)
                _exit(128 + signalNumber)
            }
            source.resume()
            return source
        }
    }

    /// Arms the handler for the labs of `sessions`; a second call changes nothing.
    static func install(sessions: SessionRegistry) {
        installed.withLock { installed in
            if installed == nil { installed = (sessions, makeSources(sessions)) }
        }
    }

    /// Called before cxllab exits on its own: while an interrupt's teardown runs, the process
    /// must not end under it (the handler exits with 130 or 143 when it is done).
    static func waitIfInterrupted() {
        guard interrupted.withLock({ $0 }) else { return }
        while true { pause() }
    }
}
