import Foundation
import HostCheck
import HostSupport
import Libvirt

/// What the libraries that make labs need from the process, made once where a command starts
/// and passed down: the settings, the cache, the guest slots, session registry and QEMU probe
/// labs share, how to reach libvirt, where progress goes, and the clock. No library reads a global or the
/// environment instead; a test makes a context of its own.
public struct LabContext: Sendable {
    public var settings: LabSettings
    public var cache: CacheDirectory
    /// Shared by every lab made with this context (and its copies).
    public let guestSlots: GuestSlots
    /// Every live lab of this context, for an interrupt's teardown.
    public let sessions: SessionRegistry
    /// What QEMU offers, asked once for all the labs of this context.
    public let qemuProbes: QEMUProbeMemo
    /// A connection to the libvirt daemon labs run under.
    public var connect: @Sendable () async throws -> Connection
    /// Where long steps say what they do (a terminal's status line).
    public var progress: @Sendable (String) -> Void
    /// The clock durations are measured on.
    public var now: @Sendable () -> ContinuousClock.Instant

    public init(settings: LabSettings, cache: CacheDirectory, guestSlots: GuestSlots? = nil, sessions: SessionRegistry = SessionRegistry(),
                qemuProbes: QEMUProbeMemo = QEMUProbeMemo(),
                connect: @escaping @Sendable () async throws -> Connection = { try await Connection.open() },
                progress: @escaping @Sendable (String) -> Void = { _ in },
                now: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }) {
        self.settings = settings
        self.cache = cache
        self.guestSlots = guestSlots ?? GuestSlots(limit: settings.maxGuests ?? GuestSlots.defaultLimit)
        self.sessions = sessions
        self.qemuProbes = qemuProbes
        self.connect = connect
        self.progress = progress
        self.now = now
    }

    /// The labs folder of these settings and the lab folders in it.
    public var paths: LabPaths { LabPaths(root: settings.labsRoot) }

    /// Seconds since `start`, on this context's clock.
    public func seconds(since start: ContinuousClock.Instant) -> Double { (now() - start).seconds }
}
