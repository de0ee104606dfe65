import AgentProtocol
import Foundation
import GuestImage
import HostSupport
import Libvirt
import Synchronization
import Topology
import Kernels

/// What to boot.
public struct LabRequest: Sendable {
    public var name: String
    public var topology: Topology
    public var kernel: Kernel
    public var image: BuiltImage
    public var domainType: LabFiles.DomainType
    /// Lets the agent run shell commands (interactive labs, script scenarios).
    public var shell: Bool
    public var kernelArguments: [String]
    public var runID: String
    public var cellID: String
    /// A lab that outlives this process (`cxllab up`); others are destroyed by libvirt when
    /// their connection closes, so a killed cxllab leaves no running guest.
    public var persistent: Bool
    public var bootDeadline: Duration
    /// Seconds without a heartbeat after which the guest counts as hung.
    public var heartbeatTimeout: Double
    /// Records the launch and every agent request and reply, when set.
    public var transcript: SessionTranscript?
    /// The libvirt domain (and lab folder) name, when not the one `name` gives: a saved
    /// machine's copy runs under the fixed name its save image holds (libvirt refuses a
    /// restore under another). `list`, `down` and `clean` find the lab by it.
    public var domainName: String?

    public init(name: String, topology: Topology, kernel: Kernel, image: BuiltImage, domainType: LabFiles.DomainType = .qemu,
                shell: Bool = false, kernelArguments: [String] = [], runID: String = "adhoc", cellID: String = "adhoc",
                persistent: Bool = false, bootDeadline: Duration = .seconds(120), heartbeatTimeout: Double = 10) {
        self.heartbeatTimeout = heartbeatTimeout
        self.name = name
        self.topology = topology
        self.kernel = kernel
        self.image = image
        self.domainType = domainType
        self.shell = shell
        self.kernelArguments = kernelArguments
        self.runID = runID
        self.cellID = cellID
        self.persistent = persistent
        self.bootDeadline = bootDeadline
    }
}

/// One running guest: its domain, console and agent. Whatever happens, `teardown()` leaves
/// no domain and no files; a fatal console line or the domain stopping fails pending agent
/// calls at once with the reason.
public final class LabSession: GuestAgent {
    public let name: String
    public let domainName: String
    public let folder: String
    public let libvirt: Connection
    public let domain: Domain
    public let agent: AgentConnection
    public let console: ConsoleWatcher
    public let persistent: Bool
    private let helloReply = Mutex<HelloReply?>(nil)
    private let startReport = Mutex<LabStart>(.booted(seconds: 0))
    private let monitors = Mutex<[Task<Void, Never>]>([])
    /// The domain's stop, once libvirt has told of it: kept, and yielded once to a waiter.
    private let stopEvent = Mutex<DomainEvent?>(nil)
    private let stops: AsyncStream<DomainEvent>
    private let stopsContinuation: AsyncStream<DomainEvent>.Continuation

    let resources: LabResources

    init(name: String, domainName: String, folder: String, libvirt: Connection, domain: Domain, agent: AgentConnection,
         console: ConsoleWatcher, persistent: Bool, resources: LabResources) {
        self.resources = resources
        self.name = name
        self.domainName = domainName
        self.folder = folder
        self.libvirt = libvirt
        self.domain = domain
        self.agent = agent
        self.console = console
        self.persistent = persistent
        (stops, stopsContinuation) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// The agent's handshake reply.
    public var hello: HelloReply? { helloReply.withLock { $0 } }
    func recordHello(_ hello: HelloReply) { helloReply.withLock { $0 = hello } }
    /// How the machine came up.
    public var start: LabStart { startReport.withLock { $0 } }
    func recordStart(_ start: LabStart) { startReport.withLock { $0 = start } }

    /// Boots the lab and shakes hands with its agent; on any failure everything is removed
    /// and the error carries the console's last lines. QEMU 10 under TCG here very rarely
    /// dies by itself while a guest boots (an assertion in `iotlb_to_section` once in CI on
    /// 2026-12-01, at 1.4 s into the guest's boot): the host's fault, not the kernel's, so a
    /// boot that QEMU's death ended is made once more. A second death is the error.
    /// The lab's folder, guest slot and registration are the context's.
    public static func start(_ request: LabRequest, context: LabContext, libvirt: Connection,
                             progress: @escaping @Sendable (String) -> Void = { _ in }) async throws -> LabSession {
        do {
            return try await boot(request, context: context, libvirt: libvirt, progress: progress)
        } catch let error as LabError where error.code == .emulatorDied {
            progress("\(error.message); booting it once more")
            return try await boot(request, context: context, libvirt: libvirt, progress: progress)
        }
    }

    private static func boot(_ request: LabRequest, context: LabContext, libvirt: Connection,
                             progress: @escaping @Sendable (String) -> Void) async throws -> LabSession {
        let started = context.now()
        let domainName = try request.validatedDomainName()
        let paths = context.paths
        let folder = paths.folder(ofDomain: domainName)
        if try libvirt.lookupDomain(named: domainName) != nil {
            throw LabError(.labExists, "a lab named \(request.name) is running already (domain \(domainName)); pick another --name or `cxllab down \(request.name)`")
        }
        // A kept lab restored under this name runs under its copy's domain, found by its link.
        if request.persistent { try paths.checkNameFree(request.name, libvirt: libvirt) }
        // Claimed before anything is made: a second lab of this name fails here, touching nothing.
        try await paths.claim(folder, labName: request.name)
        // Every connection keeps alive (Connection.keepAliveInterval): a daemon that stops
        // answering closes it within about 70 s, and cells then say libvirtd went away.
        await context.guestSlots.acquire()
        // Registered before anything exists, so SIGINT at any point below removes what exists.
        let cleanup = LabResources(folder: folder, guestSlots: context.guestSlots, sessions: context.sessions)
        do {
            progress("preparing \(domainName)")
            let (files, spec) = try request.layOut(in: folder, domainName: domainName, paths: paths)
            let record = LabRecord(name: request.name, domainName: domainName, folder: folder, topology: request.topology.file,
                                   kernel: request.kernel.origin, kernelRelease: request.kernel.release, image: request.image.key,
                                   shell: request.shell, created: Date(), ownerPID: getpid())
            try record.save()

            let events = try libvirt.lifecycleEvents()
            progress("starting \(domainName)")
            cleanup.beginCreate(libvirt: libvirt, domainName: domainName)
            let domain: Domain
            do {
                // libvirt's start waits for QEMU's monitor: on a thread of its own, off the pool.
                let xml = spec.xml, persistent = request.persistent
                domain = try await offThePool { try createDomain(xml, persistent: persistent, libvirt: libvirt, progress: progress) }
            } catch {
                cleanup.endCreate(nil)
                throw error
            }
            cleanup.endCreate(domain)
            let console = ConsoleWatcher(path: files.consoleLog)
            cleanup.console = console
            let agent = try AgentConnection(socketPath: files.agentSocket, heartbeatTimeout: request.heartbeatTimeout)
            cleanup.agent = agent
            let session = LabSession(name: request.name, domainName: domainName, folder: folder, libvirt: libvirt, domain: domain,
                                     agent: agent, console: console, persistent: request.persistent, resources: cleanup)
            session.watch(events: events)
            try await session.completeBoot(request, agent: agent, domainName: domainName, progress: progress)
            session.recordStart(.booted(seconds: context.seconds(since: started)))
            return session
        } catch {
            // Waits for a start in flight and for libvirt's destroy: off the pool.
            await offThePool { cleanup.teardownNow() }
            if LabError.isOutOfSpace(error) {
                throw LabError(.diskFull, "cannot make lab \(request.name): \(LabPaths.diskFullAdvice(paths.root))", cause: error)
            }
            throw error
        }
    }

    /// Starts the domain, once more if QEMU died while starting: QEMU 10 here very rarely
    /// segfaults in its RCU thread at start-up (seen 3 times in some hundreds of starts, the
    /// kernel logging "call_rcu ... segfault", once more in CI on 2026-11-30), which libvirt
    /// reports as the process exiting while connecting to the monitor, or the monitor closing.
    /// A second failure is the error.
    static func createDomain(_ xml: String, persistent: Bool, libvirt: Connection, progress: @Sendable (String) -> Void) throws -> Domain {
        let flags: DomainCreateFlags = persistent ? [] : [.autodestroy]
        do {
            return try libvirt.createDomain(xml: xml, flags: flags)
        } catch let error as LibvirtError where error.kind == .qemuClosedMonitor {
            progress("QEMU died while starting (\(error.message.prefix(80))...); starting it once more")
            return try libvirt.createDomain(xml: xml, flags: flags)
        }
    }

    /// Fails agent calls at once when the guest panics or its domain stops.
    func watch(events: AsyncStream<DomainEvent>) {
        let name = domainName
        let agent = agent
        let console = console
        let tasks = [
            AgentFailure.watchConsole(console, closing: agent),
            Task { [weak self] in
                for await event in events where event.domainName == name && event.kind == .stopped {
                    self?.recordStop(event)
                    let why = event.emulatorFailed ? "QEMU itself died"
                        : event.stoppedAbnormally ? "the guest crashed" : "the guest powered off or was destroyed"
                    agent.close(reason: "the domain stopped: \(why)")
                    return
                }
            },
        ]
        monitors.withLock { $0 += tasks }
    }

    private func recordStop(_ event: DomainEvent) {
        stopEvent.withLock { $0 = event }
        stopsContinuation.yield(event)
        stopsContinuation.finish()
    }

    /// When the agent's channel closed because QEMU itself died (libvirt tells of the stop
    /// within moments of the channel closing), the error that says so with QEMU's last words.
    /// Any other failure is not the emulator's: nil at once.
    func emulatorDeath(after error: any Error) async -> LabError? {
        guard case AgentConnectionError.closed = error else { return nil }
        if stopEvent.withLock({ $0 }) == nil {
            let stops = stops
            _ = try? await withDeadline(.seconds(10), what: "libvirt's word that \(domainName) stopped") {
                for await _ in stops { return }
                throw CancellationError()
            }
        }
        guard let stop = stopEvent.withLock({ $0 }), stop.emulatorFailed else { return nil }
        let words = EmulatorLog.lastComplaint(domainName: domainName)
            .map { "it said: \($0)" } ?? "it left no message (the host's kernel log may show a segfault)"
        return LabError(.emulatorDied, "lab \(name): QEMU itself died, not the guest; \(words)", console: console.tail(), cause: error)
    }

    /// A typed agent call, with the console's evidence when the guest died under it.
    public func send<Call: AgentCall>(_ call: Call, timeout: Duration) async throws -> Call.Reply {
        do {
            return try await agent.send(call, timeout: timeout)
        } catch let error as AgentConnectionError {
            throw await AgentFailure.explained(error, lab: name, console: console) { await emulatorDeath(after: $0) }
        }
    }

    /// Asks the guest to power off and waits for its domain to stop; destroys it past the deadline.
    public func powerOff(deadline: Duration = .seconds(20)) async {
        let events = try? libvirt.lifecycleEvents()
        _ = try? await agent.send(AgentCalls.PowerOff(), timeout: .seconds(10))
        if let events, (try? domain.isActive()) == true {
            let name = domainName
            _ = try? await withDeadline(deadline, what: "power-off") {
                for await event in events where event.domainName == name && event.kind == .stopped { return }
            }
        }
        await teardown()
    }

    /// Destroys the domain (when it still runs) and removes every file of the lab. Idempotent.
    /// The evidence: the console's tail, and QEMU's last complaint from libvirt's log of it.
    @discardableResult
    public func teardown() async -> LabLeftovers {
        // Cancelling twice is harmless, and the resources remember what they removed.
        for monitor in monitors.withLock({ $0 }) { monitor.cancel() }
        // A teardown waits for a start still under way and for libvirt's destroy: off the pool.
        let resources = resources
        await offThePool { resources.teardownNow() }
        return LabLeftovers(consoleTail: console.tail(), emulatorComplaint: EmulatorLog.lastComplaint(domainName: domainName))
    }

    /// Leaves the lab running after this process ends (`cxllab up`): an interrupt no longer
    /// removes it; `cxllab down` does.
    public func detach() {
        resources.handOver()
        agent.close(reason: "the lab was handed over")
        console.stop()
    }
}
