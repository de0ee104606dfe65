import Foundation
import HostSupport
import Libvirt
import Topology

/// A lab folder for work that is not a session (the bench's timed domain starts): it holds a guest slot, names its owner, and an interrupt removes it and whatever
/// runs in it, like any lab. `remove()` is idempotent.
public final class ScratchLab: Sendable {
    public let domainName: String
    public let folder: String
    let resources: LabResources

    private init(domainName: String, folder: String, resources: LabResources) {
        self.domainName = domainName
        self.folder = folder
        self.resources = resources
    }

    public static func make(domainName: String) async throws -> ScratchLab {
        let name = try LabNames.validated(domainName)
        let folder = LabPaths.folder(ofDomain: name)
        await GuestSlots.shared.acquire()
        let resources = LabResources(folder: folder)
        SessionRegistry.shared.add(resources)
        do {
            try LabPaths.makeLabFolder(folder)
        } catch {
            resources.teardownNow()
            throw error
        }
        return ScratchLab(domainName: name, folder: folder, resources: resources)
    }

    /// The lab's files in its folder, with this process as their owner.
    public func files(domainType: LabFiles.DomainType, kernel: String, initrd: String, kernelArguments: [String],
                      runID: String, cellID: String) -> LabFiles {
        LabPaths.files(in: folder, domainName: domainName, domainType: domainType, kernel: kernel, initrd: initrd,
                       kernelArguments: kernelArguments, runID: runID, cellID: cellID)
    }

    public func createBackingFiles(_ files: [BackingFile]) throws { try BackingFiles.create(files) }

    /// Starts a domain that an interrupt, or `remove()`, destroys.
    public func createDomain(xml: String, libvirt: Connection) throws {
        resources.beginCreate(libvirt: libvirt, domainName: domainName)
        do {
            resources.endCreate(try libvirt.createDomain(xml: xml, flags: [.autodestroy]))
        } catch {
            resources.endCreate(nil)
            throw error
        }
    }

    /// Destroys its domain, stops a QEMU run in it, removes the folder, gives the slot back.
    public func remove() { resources.teardownNow() }
}
