import AgentProtocol
import Foundation
import HostSupport
import Libvirt

extension LabSession {
    /// Starts a lab from a saved machine instead of booting it: the lab folder laid out with
    /// the kernel, the image and the saved backing files, the save image restored under the
    /// domain name it holds (`request.domainName`) with its paths moved to the folder and its
    /// metadata naming this lab, and the agent's handshake (it answers at once: the guest was
    /// saved settled). The saved copy's `claim` is let go with the lab. As a boot, any failure
    /// removes everything and throws.
    static func restore(_ request: LabRequest, from store: SavedMachines, key: String, index: Int, record: SavedMachineRecord,
                        claim: FileLock.Held, context: LabContext, libvirt: Connection, started: ContinuousClock.Instant,
                        progress: @escaping @Sendable (String) -> Void) async throws -> LabSession {
        let domainName = try request.validatedDomainName()
        let paths = context.paths
        let folder = paths.folder(ofDomain: domainName)
        if try libvirt.lookupDomain(named: domainName) != nil {
            throw LabError(.labExists, "the saved machine's domain \(domainName) is running already; `cxllab down \(LabNames.labName(domainName))`")
        }
        try await paths.claim(folder, labName: request.name)
        await context.guestSlots.acquire()
        let cleanup = LabResources(folder: folder, guestSlots: context.guestSlots, sessions: context.sessions)
        cleanup.savedCopyClaim = claim
        do {
            // A kept lab is found by the name it was given: `exec`, `console` and `down` follow the link.
            if request.persistent { cleanup.nameLink = try paths.linkName(request.name, to: domainName) }
            progress("restoring \(domainName) from its saved machine")
            let fm = FileManager.default
            // QEMU opens -kernel and -initrd again at restore: they must be where the XML says.
            try fm.copyItem(atPath: request.kernel.imagePath, toPath: folder + "/vmlinuz")
            try fm.copyItem(atPath: request.image.path, toPath: folder + "/initramfs.cpio")
            for file in record.files {
                try await SavedMachines.copySparse(store.storedFile(file.name, key: key, index: index), to: folder + "/" + file.name)
            }
            let files = request.labFiles(in: folder, domainName: domainName)
            let labRecord = LabRecord(name: request.name, domainName: domainName, folder: folder, topology: request.topology.file,
                                   kernel: request.kernel.origin, kernelRelease: request.kernel.release, image: request.image.key,
                                   shell: request.shell, created: Date(), ownerPID: getpid())
            try labRecord.save()
            let filesSeconds = context.seconds(since: started)
            let image = store.saveImage(key: key, index: index)
            let savedXML = try await offThePool { try libvirt.saveImageXML(path: image) }
            let xml = SavedMachineXML.restoreXML(savedXML, from: record.savedFolder, to: folder, metadata: files.metadata)

            let events = try libvirt.lifecycleEvents()
            cleanup.beginCreate(libvirt: libvirt, domainName: domainName)
            let domain: Domain
            let restoring = context.now()
            do {
                domain = try await offThePool { try libvirt.restoreDomain(from: image, xml: xml, flags: [.running]) }
            } catch {
                cleanup.endCreate(nil)
                throw LabError(.bootFailed, "lab \(request.name): libvirt could not restore the saved machine \(image): \(error)", cause: error)
            }
            cleanup.endCreate(domain)
            let restoreSeconds = context.seconds(since: restoring)
            let console = ConsoleWatcher(path: files.consoleLog)
            cleanup.console = console
            let agent = try AgentConnection(socketPath: files.agentSocket, heartbeatTimeout: request.heartbeatTimeout)
            cleanup.agent = agent
            let session = LabSession(name: request.name, domainName: domainName, folder: folder, libvirt: libvirt, domain: domain,
                                     agent: agent, console: console, persistent: request.persistent, resources: cleanup)
            session.watch(events: events)
            do {
                // The guest was saved with its agent settled and serving: it answers at once.
                session.recordHello(try await agent.handshake(deadline: .seconds(30), waitingForLife: false))
                if let transcript = request.transcript { agent.observer = transcript }
            } catch {
                let died = await session.emulatorDeath(after: error)
                await session.teardown()
                throw AgentFailure.bootFailure(error, lab: request.name, console: console, died: died)
            }
            session.recordStart(.restored(seconds: context.seconds(since: started)))
            progress(String(format: "restored %@ in %.1f s (to its files laid out %.1f s, libvirt's restore %.1f s)", domainName,
                            session.start.seconds, filesSeconds, restoreSeconds))
            return session
        } catch {
            await offThePool { cleanup.teardownNow() }
            if LabError.isOutOfSpace(error) {
                throw LabError(.diskFull, "cannot make lab \(request.name): \(LabPaths.diskFullAdvice(paths.root))", cause: error)
            }
            throw error
        }
    }
}
