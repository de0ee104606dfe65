import Foundation
import Synchronization

/// The labs this process runs, so SIGINT and SIGTERM can tear them all down.
final class SessionRegistry: Sendable {
    static let shared = SessionRegistry()
    private let labs = Mutex<[ObjectIdentifier: LabResources]>([:])

    func add(_ lab: LabResources) { labs.withLock { $0[ObjectIdentifier(lab)] = lab } }
    func remove(_ lab: LabResources) { _ = labs.withLock { $0.removeValue(forKey: ObjectIdentifier(lab)) } }
    var all: [LabResources] { labs.withLock { Array($0.values) } }
}

/// On SIGINT or SIGTERM: every lab this process is starting or running (not those handed
/// over by `cxllab up`) is destroyed and its files removed, then cxllab exits 130 or 143.
public enum InterruptTeardown {
    private static let interrupted = Mutex(false)
    /// The signal sources, kept alive for the life of the process.
    private static let sources: Mutex<[any DispatchSourceSignal]> = Mutex(makeSources())

    private static func makeSources() -> [any DispatchSourceSignal] {
        [SIGINT, SIGTERM].map { signalNumber in
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
            return source
        }
    }

    public static func install() { _ = sources.withLock { $0.count } }

    /// Called before cxllab exits on its own: while an interrupt's teardown runs, the process
    /// must not end under it (the handler exits with 130 or 143 when it is done).
    public static func waitIfInterrupted() {
        guard interrupted.withLock({ $0 }) else { return }
        while true { pause() }
    }
}
