import AgentProtocol
import Foundation
import Kernels
import Libvirt
import Topology

/// What runs a lab's machine: libvirt on this host (`LibvirtBackend`), QEMU run directly
/// (`DirectQEMUBackend`); later a remote libvirt, or a saved machine restored. A backend
/// boots the machine a `LabRequest` describes and hands back a `RunningLab` whose agent has
/// answered its handshake; a boot that fails leaves nothing behind and throws a `LabError`
/// with the console's last lines.
public protocol LabBackend: Sendable {
    /// What runs the labs, for reports and progress ("libvirt qemu:///system").
    var name: String { get }

    /// Boots the machine: its folder, guest slot and interrupt teardown are `context`'s.
    func start(_ request: LabRequest, context: LabContext, progress: @escaping @Sendable (String) -> Void) async throws -> any RunningLab
}

extension LabBackend {
    public func start(_ request: LabRequest, context: LabContext) async throws -> any RunningLab {
        try await start(request, context: context, progress: { _ in })
    }
}

/// A booted lab, whatever runs it: the agent's typed calls (a fatal console line or the
/// machine stopping fails pending calls at once, with the reason), its console, and the way
/// out. `teardown()` leaves no machine and no files and hands back the evidence.
public protocol RunningLab: GuestAgent {
    /// The lab's name, as the request gave it.
    var name: String { get }
    /// What runs it (the backend's name), for reports.
    var backendName: String { get }
    /// The agent's handshake reply.
    var hello: HelloReply? { get }
    /// How the machine came up: booted, or restored from a saved machine, and how long it took.
    var start: LabStart { get }
    /// The guest's serial console, followed as it grows.
    var console: ConsoleWatcher { get }
    /// Why this process can no longer reach the machine's keeper, when it cannot (libvirtd
    /// closed the connection, taking a transient domain with it); nil while it can.
    var connectionLost: String? { get }
    /// Stops the machine when it still runs and removes every file of the lab. Idempotent.
    @discardableResult func teardown() async -> LabLeftovers
    /// Leaves the lab running after this process ends (`cxllab up`): an interrupt no longer
    /// removes it.
    func detach()
}

/// How a lab's machine came up, with the seconds from the backend's start to a settled lab
/// (agent answering, CXL memory devices settled): for results (`labStart`) and progress.
public enum LabStart: Sendable, Hashable, Codable, CustomStringConvertible {
    case booted(seconds: Double)
    case restored(seconds: Double)

    public var seconds: Double {
        switch self {
        case .booted(let seconds), .restored(let seconds): seconds
        }
    }

    /// "booted" or "restored": the word reports and JSON use.
    public var how: String {
        switch self {
        case .booted: "booted"
        case .restored: "restored"
        }
    }

    /// "booted in 9.8 s".
    public var description: String { "\(how) in \(String(format: "%.1f", seconds)) s" }

    enum CodingKeys: String, CodingKey { case how, seconds }

    /// Stored as `{"how": "restored", "seconds": 2.5}`.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let seconds = try container.decode(Double.self, forKey: .seconds)
        switch try container.decode(String.self, forKey: .how) {
        case "booted": self = .booted(seconds: seconds)
        case "restored": self = .restored(seconds: seconds)
        case let other:
            throw DecodingError.dataCorruptedError(forKey: .how, in: container, debugDescription: "a lab start '\(other)': booted or restored")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(how, forKey: .how)
        try container.encode(seconds, forKey: .seconds)
    }
}

/// What a lab leaves as evidence once it is gone.
public struct LabLeftovers: Sendable {
    /// The console's last lines.
    public var consoleTail: String
    /// The emulator's last complaint (an assertion, a signal), when it said one.
    public var emulatorComplaint: String?

    public init(consoleTail: String, emulatorComplaint: String?) {
        self.consoleTail = consoleTail
        self.emulatorComplaint = emulatorComplaint
    }
}

/// Labs through libvirt on this host (`qemu:///system`, by the context's connection factory),
/// one connection per lab: what every command runs by default.
public struct LibvirtBackend: LabBackend {
    public init() {}

    public var name: String { "libvirt qemu:///system" }

    public func start(_ request: LabRequest, context: LabContext, progress: @escaping @Sendable (String) -> Void) async throws -> any RunningLab {
        try await LabSession.start(request, context: context, libvirt: try await context.connect(), progress: progress)
    }
}

extension LabSession: BootingLab {
    public var backendName: String { LibvirtBackend().name }

    public var connectionLost: String? {
        libvirt.isAlive ? nil
            : "libvirtd closed cxllab's connection meanwhile (it was stopped or restarted), "
                + "and libvirt destroys a lab's domain together with the connection that started it"
    }
}

enum AgentFailure {
    /// The error a scenario sees when an agent call failed because the guest or its machine
    /// went away: the emulator's death (`emulatorDeath`, nil when it was not that), or a panic
    /// with the console's evidence, or the channel's own error.
    static func explained(_ error: AgentConnectionError, lab: String, console: ConsoleWatcher,
                          emulatorDeath: (AgentConnectionError) async -> LabError?) async -> any Error {
        if console.alertsSoFar.allSatisfy({ !$0.kind.isFatal }), let died = await emulatorDeath(error) { return died }
        // A dying guest closes its channel before QEMU has written the panic to the
        // console: give the console the time to show one (it ends the wait at once).
        // One that an oops or BUG closed has its evidence already.
        if case .closed = error, !console.alertsSoFar.contains(where: { $0.kind.endsSession }),
           await console.waitForFatal(deadline: .seconds(30)) == nil {
            console.catchUp()
        }
        if let panic = console.alertsSoFar.first(where: { $0.kind.isFatal }) {
            return LabError(.guestPanicked, "lab \(lab): the guest kernel panicked: \(panic.line)", console: console.tail(), cause: error)
        }
        return error
    }

    /// The error of a boot whose handshake failed, once the lab is torn down: a panic, the
    /// emulator's death (`died`), or the guest not coming up.
    static func bootFailure(_ error: any Error, lab: String, console: ConsoleWatcher, died: LabError?) -> LabError {
        if let panic = console.alertsSoFar.first(where: { $0.kind.isFatal }) {
            return LabError(.guestPanicked, "lab \(lab): the guest kernel panicked: \(panic.line)", console: console.tail(), cause: error)
        }
        if let died { return died }
        return LabError(.bootFailed, "lab \(lab) did not come up: \(error)", console: console.tail(), cause: error)
    }

    /// The alerts that fail the agent's calls at once: a panic, or an oops or BUG after the
    /// grace that lets the kernel finish printing the trace (the evidence) and any reply still
    /// coming arrive. The task that hit it is dead, maybe holding locks: a call it was
    /// answering would never return.
    static func watchConsole(_ console: ConsoleWatcher, closing agent: AgentConnection) -> Task<Void, Never> {
        Task {
            for await alert in console.alerts {
                if alert.kind.isFatal {
                    agent.close(reason: "the guest kernel panicked: \(alert.line)")
                    return
                }
                if alert.kind.endsSession {
                    try? await Task.sleep(for: ConsoleAlert.crashGrace)
                    agent.close(reason: "the guest kernel crashed (\(alert.kind.rawValue)): \(alert.line)")
                    return
                }
            }
        }
    }
}

/// What both backends do once the agent's channel is open: the handshake under the boot's
/// deadline, the CXL memory devices settled, the transcript from there on; a boot that fails
/// here is torn down and explained (a panic, the emulator's death, or the guest not coming up).
protocol BootingLab: RunningLab {
    func recordHello(_ hello: HelloReply)
    func emulatorDeath(after error: any Error) async -> LabError?
}

extension BootingLab {
    func completeBoot(_ request: LabRequest, agent: AgentConnection, domainName: String, progress: @Sendable (String) -> Void) async throws {
        progress("waiting for the agent in \(domainName)")
        do {
            recordHello(try await agent.handshake(deadline: request.bootDeadline))
            if !request.topology.cxl.memoryDevices.isEmpty {
                progress("waiting for the guest's CXL memory devices in \(domainName)")
                await waitForCXLDevices(count: request.topology.cxl.memoryDevices.count)
            }
            // What a transcript records starts here: the scenario's own requests.
            if let transcript = request.transcript { agent.observer = transcript }
        } catch {
            let died = console.alertsSoFar.contains { $0.kind.isFatal } ? nil : await emulatorDeath(after: error)
            await teardown()
            throw AgentFailure.bootFailure(error, lab: request.name, console: console, died: died)
        }
    }
}

extension LabRequest {
    /// The lab's folder as every backend lays it out: the kernel and image copied in (QEMU's
    /// user may not read the cache), the machine rendered with its kernel command line, the
    /// launch recorded, the backing files made.
    func layOut(in folder: String, domainName: String, paths: LabPaths) throws -> (files: LabFiles, spec: DomainSpec) {
        let fm = FileManager.default
        try fm.copyItem(atPath: kernel.imagePath, toPath: folder + "/vmlinuz")
        try fm.copyItem(atPath: image.path, toPath: folder + "/initramfs.cpio")
        let files = labFiles(in: folder, domainName: domainName)
        let spec = try topology.render(files)
        transcript?.recordLaunch(.init(topology: topology, kernel: kernel, image: image, kernelArguments: files.kernelArguments))
        try BackingFiles.create(spec.backingFiles, paths: paths)
        return (files, spec)
    }

    /// The guest's kernel command line: the quiet base, the shell flag, the request's own.
    var guestKernelArguments: [String] { GuestCommandLine.quiet + (shell ? [AgentProtocol.shellFlag] : []) + kernelArguments }

    /// The files of this lab in `folder`, as the machine is rendered with them.
    func labFiles(in folder: String, domainName: String) -> LabFiles {
        LabPaths.files(in: folder, domainName: domainName, domainType: domainType, kernel: folder + "/vmlinuz",
                       initrd: folder + "/initramfs.cpio", kernelArguments: guestKernelArguments, runID: runID, cellID: cellID)
    }

    /// The domain name the lab runs under: the request's override (a saved machine's copy),
    /// else the one its name gives; checked either way.
    func validatedDomainName() throws -> String {
        try LabNames.validated(domainName ?? name)
    }
}
