import Foundation
import Kernels
import HostSupport
import LabRuntime
import Libvirt
import Topology

/// How long libvirt takes to start a lab's domain: from `virDomainCreateXML` to its return
/// with QEMU running, for the real rendered topology. Each domain is destroyed at once; an
/// interrupt removes whatever exists, as for any lab.
public enum DomainStartLatency {
    public static func measure(_ prepared: PreparedLab, runs: Int, context: LabContext, libvirt: Connection) async throws -> [Double] {
        var seconds: [Double] = []
        for _ in 0..<max(1, runs) {
            let scratch = try await ScratchLab.make(domainName: "cxllab-bench-start-\(UUID().uuidString.prefix(6).lowercased())", context: context)
            do {
                seconds.append(try await measureOnce(prepared, in: scratch, context: context, libvirt: libvirt))
                await scratch.remove()
            } catch {
                await scratch.remove()
                throw error
            }
        }
        return seconds
    }

    /// One start in `scratch`, in seconds.
    private static func measureOnce(_ prepared: PreparedLab, in scratch: ScratchLab, context: LabContext, libvirt: Connection) async throws -> Double {
        let fm = FileManager.default
        // Copies, as a lab makes: the cache may be private to its owner, and QEMU runs as its own user.
        try fm.copyItem(atPath: prepared.kernel.imagePath, toPath: scratch.folder + "/vmlinuz")
        try fm.copyItem(atPath: prepared.image.path, toPath: scratch.folder + "/initramfs.cpio")
        let files = scratch.files(domainType: prepared.domainType, kernel: scratch.folder + "/vmlinuz", initrd: scratch.folder + "/initramfs.cpio",
                                  kernelArguments: GuestCommandLine.quiet, runID: "bench", cellID: "domain-start")
        let spec = try prepared.topology.render(files)
        try scratch.createBackingFiles(spec.backingFiles)
        let start = context.now()
        try await scratch.createDomain(xml: spec.xml, libvirt: libvirt)
        return context.seconds(since: start)
    }
}
