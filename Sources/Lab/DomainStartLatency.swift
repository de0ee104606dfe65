import Foundation
import GuestImage
import HostSupport
import Libvirt
import Topology

/// How long libvirt takes to start a lab's domain: from `virDomainCreateXML` to its return
/// with QEMU running, for the real rendered topology. Each domain is destroyed at once; an
/// interrupt removes whatever exists, as for any lab.
public enum DomainStartLatency {
    public static func measure(_ prepared: PreparedLab, runs: Int, libvirt: Connection) async throws -> [Double] {
        var seconds: [Double] = []
        for _ in 0..<max(1, runs) {
            let domainName = "cxllab-bench-start-\(UUID().uuidString.prefix(6).lowercased())"
            let folder = LabPaths.labsRoot + "/" + domainName
            await GuestSlots.shared.acquire()
            let resources = LabResources(folder: folder)
            SessionRegistry.shared.add(resources)
            defer { resources.teardownNow() }
            let fm = FileManager.default
            try LabPaths.makeLabFolder(folder)
            // Copies, as a lab makes: the cache may be private to its owner, and QEMU runs as its own user.
            try fm.copyItem(atPath: prepared.kernel.imagePath, toPath: folder + "/vmlinuz")
            try fm.copyItem(atPath: prepared.image.path, toPath: folder + "/initramfs.cpio")
            let files = LabPaths.files(in: folder, domainName: domainName, domainType: prepared.domainType, kernel: folder + "/vmlinuz",
                                       initrd: folder + "/initramfs.cpio", kernelArguments: GuestCommandLine.quiet, runID: "bench", cellID: "domain-start")
            let spec = try prepared.topology.render(files)
            try BackingFiles.create(spec.backingFiles)
            let clock = ContinuousClock()
            let start = clock.now
            resources.beginCreate(libvirt: libvirt, domainName: domainName)
            do {
                resources.endCreate(try libvirt.createDomain(xml: spec.xml, flags: [.autodestroy]))
            } catch {
                resources.endCreate(nil)
                throw error
            }
            seconds.append((clock.now - start).seconds)
        }
        return seconds
    }
}
