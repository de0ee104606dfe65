import AgentProtocol
import Foundation
import HostSupport
import Kernels
import Libvirt
import Synchronization
import Topology

/// Labs run by QEMU directly, without a domain: the machine libvirt would start for the same
/// rendered topology (its own `qemu-argv` translation, `DirectQEMU`), less its monitor, as
/// libvirt's QEMU user under QEMU's seccomp sandbox. libvirtd is asked only for that
/// translation. The agent's channel and the console work as in a libvirt lab, so a scenario
/// runs the same; `cxllab bench` measures what libvirt adds with it. A lab of this backend
/// cannot outlive cxllab (`cxllab up`): nothing but this process knows its QEMU.
public struct DirectQEMUBackend: LabBackend {
    public init() {}

    public var name: String { "QEMU directly" }

    /// The same once-more as `LabSession.start`: QEMU 10 under TCG very rarely dies by itself
    /// while a guest boots; a second death is the error.
    public func start(_ request: LabRequest, context: LabContext, progress: @escaping @Sendable (String) -> Void) async throws -> any RunningLab {
        do {
            return try await DirectQEMULab.boot(request, context: context, backendName: name, progress: progress)
        } catch let error as LabError where error.code == .emulatorDied {
            progress("\(error.message); booting it once more")
            return try await DirectQEMULab.boot(request, context: context, backendName: name, progress: progress)
        }
    }
}

/// One guest whose QEMU is this process's child.
final class DirectQEMULab: BootingLab {
    let name: String
    let domainName: String
    let folder: String
    let backendName: String
    let agent: AgentConnection
    let console: ConsoleWatcher
    let emulator: EmulatorProcess
    private let resources: LabResources
    private let helloReply = Mutex<HelloReply?>(nil)
    private let startReport = Mutex<LabStart>(.booted(seconds: 0))
    private let monitors = Mutex<[Task<Void, Never>]>([])

    private init(name: String, domainName: String, folder: String, backendName: String, agent: AgentConnection, console: ConsoleWatcher,
                 emulator: EmulatorProcess, resources: LabResources) {
        self.name = name
        self.domainName = domainName
        self.folder = folder
        self.backendName = backendName
        self.agent = agent
        self.console = console
        self.emulator = emulator
        self.resources = resources
    }

    var hello: HelloReply? { helloReply.withLock { $0 } }
    func recordHello(_ hello: HelloReply) { helloReply.withLock { $0 = hello } }
    var start: LabStart { startReport.withLock { $0 } }
    /// Nothing stands between this process and its child QEMU.
    var connectionLost: String? { nil }

    static func boot(_ request: LabRequest, context: LabContext, backendName: String, progress: @escaping @Sendable (String) -> Void) async throws -> DirectQEMULab {
        let started = context.now()
        let domainName = try request.validatedDomainName()
        guard !request.persistent else {
            throw LabError(.input, "lab \(request.name): a lab run by QEMU directly cannot outlive cxllab; run it through libvirt")
        }
        let paths = context.paths
        let folder = paths.folder(ofDomain: domainName)
        // As for a libvirt lab: the name claimed before anything is made, a guest slot held,
        // and everything made removable by an interrupt from here on.
        try await paths.claim(folder, labName: request.name)
        await context.guestSlots.acquire()
        let cleanup = LabResources(folder: folder, guestSlots: context.guestSlots, sessions: context.sessions)
        do {
            progress("preparing \(domainName)")
            guard let user = DirectQEMU.unprivilegedUser() else {
                throw LabError(.host, "neither libvirt-qemu nor nobody is a user on this host: QEMU run directly needs an unprivileged user to run as")
            }
            // Copies in the folder given to QEMU's user, who may not read the cache.
            let (files, spec) = try request.layOut(in: folder, domainName: domainName, paths: paths)
            let command = try await commandLine(for: spec.xml, files: files, folder: folder, user: user)
            // Made before the folder is handed over, so QEMU's user may connect to it.
            let listener = try AgentListener(path: files.agentSocket)
            try DirectQEMU.handOver(folder: folder, to: user)

            progress("starting \(domainName) with QEMU directly")
            let emulator = try EmulatorProcess(executable: try ExecutableLocator.require(command.executable), arguments: command.arguments,
                                               logPath: folder + "/qemu.log")
            cleanup.emulator = emulator
            let console = ConsoleWatcher(path: files.consoleLog)
            cleanup.console = console
            let agent: AgentConnection
            do {
                let deadline = request.bootDeadline, heartbeatTimeout = request.heartbeatTimeout
                agent = try await offThePool {
                    try listener.accept(deadline: deadline, exitSignal: emulator.exitSignal, heartbeatTimeout: heartbeatTimeout)
                }
            } catch {
                let died = await emulatorDeath(emulator, lab: request.name, console: console, after: .closed("QEMU did not connect"))
                throw died ?? LabError(.bootFailed, "lab \(request.name): QEMU did not start: \(error)", console: console.tail(), cause: error)
            }
            cleanup.agent = agent
            let lab = DirectQEMULab(name: request.name, domainName: domainName, folder: folder, backendName: backendName, agent: agent,
                                    console: console, emulator: emulator, resources: cleanup)
            lab.watch()
            try await lab.completeBoot(request, agent: agent, domainName: domainName, progress: progress)
            lab.startReport.withLock { $0 = .booted(seconds: context.seconds(since: started)) }
            return lab
        } catch {
            cleanup.teardownNow()
            if LabError.isOutOfSpace(error) {
                throw LabError(.diskFull, "cannot make lab \(request.name): \(LabPaths.diskFullAdvice(paths.root))", cause: error)
            }
            throw error
        }
    }

    /// libvirt's command line for the machine, run directly: confined as libvirt confines its
    /// QEMU, its agent channel connecting to the host, its pid in the folder (so a teardown,
    /// or a later `cxllab clean`, stops it).
    private static func commandLine(for xml: String, files: LabFiles, folder: String,
                                    user: UnprivilegedUser) async throws -> (executable: String, arguments: [String]) {
        // The translation is a call to libvirtd, which may wait: off the pool.
        let line = try await offThePool { () throws -> String in
            try Connection().nativeCommandLine(forDomainXML: xml)
        }
        let direct = try DirectQEMU.command(fromLibvirtLine: line)
        let arguments = DirectQEMU.connectingAgentChannel(direct.arguments, socketPath: files.agentSocket)
            + ["-pidfile", folder + "/" + QEMUPidFile.name]
        return DirectQEMU.confined((direct.executable, arguments), user: user)
    }

    /// Fails agent calls at once when the guest panics or crashes, or QEMU exits.
    private func watch() {
        let agent = agent
        let tasks = [
            AgentFailure.watchConsole(console, closing: agent),
            Task { [emulator] in
                for await exit in emulator.exits {
                    let why = exit.emulatorFailed(killed: emulator.wasKilled) ? "QEMU itself died (\(exit.description))"
                        : "the guest powered off, rebooted or was stopped"
                    agent.close(reason: "QEMU exited: \(why)")
                    return
                }
            },
        ]
        monitors.withLock { $0 += tasks }
    }

    func emulatorDeath(after error: any Error) async -> LabError? {
        guard let error = error as? AgentConnectionError else { return nil }
        return await Self.emulatorDeath(emulator, lab: name, console: console, after: error)
    }

    /// When the agent's channel closed because QEMU itself died (its exit follows the channel
    /// closing within moments), the error that says so with QEMU's last words. Any other
    /// failure is not the emulator's: nil.
    private static func emulatorDeath(_ emulator: EmulatorProcess, lab: String, console: ConsoleWatcher,
                                      after error: AgentConnectionError) async -> LabError? {
        guard case .closed = error, let exit = await emulator.waitForExit(deadline: .seconds(10)),
              exit.emulatorFailed(killed: emulator.wasKilled) else { return nil }
        let words = complaint(emulator).map { "it said: \($0)" } ?? "it left no message (the host's kernel log may show a segfault)"
        return LabError(.emulatorDied, "lab \(lab): QEMU itself died (\(exit.description)), not the guest; \(words)",
                        console: console.tail(), cause: error)
    }

    private static func complaint(_ emulator: EmulatorProcess) -> String? {
        (try? String(contentsOfFile: emulator.logPath, encoding: .utf8)).flatMap { EmulatorLog.lastComplaint(inLog: $0) }
    }

    func send<Call: AgentCall>(_ call: Call, timeout: Duration) async throws -> Call.Reply {
        do {
            return try await agent.send(call, timeout: timeout)
        } catch let error as AgentConnectionError {
            throw await AgentFailure.explained(error, lab: name, console: console) { await emulatorDeath(after: $0) }
        }
    }

    /// Kills QEMU, waits for its exit, removes the folder. The evidence is read first: QEMU's
    /// log is in the folder.
    @discardableResult
    func teardown() async -> LabLeftovers {
        for monitor in monitors.withLock({ $0 }) { monitor.cancel() }
        let complaint = emulator.exit.map { $0.emulatorFailed(killed: emulator.wasKilled) } == true ? Self.complaint(emulator) : nil
        let resources = resources
        await offThePool { resources.teardownNow() }
        // Reaped before returning, so no QEMU of this lab outlives its teardown.
        _ = await emulator.waitForExit(deadline: .seconds(10))
        return LabLeftovers(consoleTail: console.tail(), emulatorComplaint: complaint)
    }

    /// QEMU keeps running without this process's watch; its pid file lets `cxllab clean`
    /// stop it. (The backend refuses persistent labs, so `cxllab up` never gets here.)
    func detach() {
        resources.handOver()
        agent.close(reason: "the lab was handed over")
        console.stop()
    }
}
