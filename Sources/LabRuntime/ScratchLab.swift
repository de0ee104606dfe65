import Foundation
import HostSupport
import Libvirt
import Topology

/// A lab folder for work that is not a session (the bench's timed domain starts): it holds a
/// guest slot, names its owner, and an interrupt removes it and whatever runs in it, like any
/// lab. Its folder, slot and registration are its context's. `remove()` is idempotent.
public final class ScratchLab: Sendable {
    public let domainName: String
    public let folder: String
    let resources: LabResources
    let paths: LabPaths

    private init(domainName: String, folder: String, resources: LabResources, paths: LabPaths) {
        self.domainName = domainName
        self.folder = folder
        self.resources = resources
        self.paths = paths
    }

    public static func make(domainName: String, context: LabContext) async throws -> ScratchLab {
        let name = try LabNames.validated(domainName)
        let paths = context.paths
        let folder = paths.folder(ofDomain: name)
        await context.guestSlots.acquire()
        let resources = LabResources(folder: folder, guestSlots: context.guestSlots, sessions: context.sessions)
        do {
            try paths.makeLabFolder(folder)
        } catch {
            await offThePool { resources.teardownNow() }
            throw error
        }
        return ScratchLab(domainName: name, folder: folder, resources: resources, paths: paths)
    }

    /// The lab's files in its folder, with this process as their owner.
    public func files(domainType: LabFiles.DomainType, kernel: String, initrd: String, kernelArguments: [String],
                      runID: String, cellID: String) -> LabFiles {
        LabPaths.files(in: folder, domainName: domainName, domainType: domainType, kernel: kernel, initrd: initrd,
                       kernelArguments: kernelArguments, runID: runID, cellID: cellID)
    }

    public func createBackingFiles(_ files: [BackingFile]) throws { try BackingFiles.create(files, paths: paths) }

    /// Starts a domain that an interrupt, or `remove()`, destroys. libvirt's start waits for
    /// QEMU's monitor: on a thread of its own, off the pool.
    public func createDomain(xml: String, libvirt: Connection) async throws {
        resources.beginCreate(libvirt: libvirt, domainName: domainName)
        do {
            let flags: DomainCreateFlags = [.autodestroy]
            resources.endCreate(try await offThePool { try libvirt.createDomain(xml: xml, flags: flags) })
        } catch {
            resources.endCreate(nil)
            throw error
        }
    }

    /// Destroys its domain, stops a QEMU run in it, removes the folder, gives the slot back.
    /// It waits for a start in flight and for libvirt's destroy: off the pool.
    public func remove() async {
        let resources = resources
        await offThePool { resources.teardownNow() }
    }
}
