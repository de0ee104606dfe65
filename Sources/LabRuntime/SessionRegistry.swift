import Foundation
import Synchronization

/// The labs a context is starting or running (not those handed over by `cxllab up`), so an
/// interrupt can tear them all down. One instance per `LabContext`: the command line gives the
/// same one to its signal handler.
public final class SessionRegistry: Sendable {
    private let labs = Mutex<[ObjectIdentifier: LabResources]>([:])

    public init() {}

    func add(_ lab: LabResources) { labs.withLock { $0[ObjectIdentifier(lab)] = lab } }
    func remove(_ lab: LabResources) { _ = labs.withLock { $0.removeValue(forKey: ObjectIdentifier(lab)) } }

    /// How many labs are registered now.
    public var count: Int { labs.withLock { $0.count } }

    /// Destroys every registered lab and removes its files, synchronously: for a signal
    /// handler, which has no async context. Returns how many there were.
    @discardableResult
    public func tearDownAll() -> Int {
        let all = labs.withLock { Array($0.values) }
        for lab in all { lab.teardownNow() }
        return all.count
    }
}
