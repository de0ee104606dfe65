import Foundation
import GuestImage
import HostSupport
import Libvirt
import Kernels
import TestSupport

/// Boots a kernel and image through the real qemu:///system daemon until the guest powers
/// off, and returns its console. Files go in a lab folder the qemu user can reach, removed
/// afterwards; the domain is transient and autodestroyed with its connection.
enum BootHarness {
    static let labsRoot = "/var/lib/cxllab/labs"

    static func boot(kernel: Kernel, image: BuiltImage, extraCommandLine: String = "cxllab.init=report",
                     deadline: Duration = .seconds(90)) async throws -> String {
        await TestGuestSlots.shared.acquire()
        defer { TestGuestSlots.shared.release() }
        let name = "cxllab-imgtest-\(UUID().uuidString.prefix(8).lowercased())"
        let folder = labsRoot + "/" + name
        let fm = FileManager.default
        try fm.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        defer { try? fm.removeItem(atPath: folder) }
        try fm.copyItem(atPath: kernel.imagePath, toPath: folder + "/vmlinuz")
        try fm.copyItem(atPath: image.path, toPath: folder + "/initramfs.cpio")
        let console = folder + "/console.log"
        let xml = """
            <domain type='qemu'>
              <name>\(name)</name>
              <memory unit='MiB'>1024</memory>
              <vcpu>1</vcpu>
              <os><type arch='x86_64' machine='q35'>hvm</type>
                <kernel>\(folder)/vmlinuz</kernel><initrd>\(folder)/initramfs.cpio</initrd>
                <cmdline>\(GuestCommandLine.base.joined(separator: " ")) \(extraCommandLine)</cmdline></os>
              <features><acpi/></features>
              <on_poweroff>destroy</on_poweroff><on_reboot>destroy</on_reboot><on_crash>destroy</on_crash>
              <devices>
                <serial type='file'><source path='\(console)'/><target port='0'/></serial>
                <console type='file'><source path='\(console)'/><target type='serial' port='0'/></console>
                <memballoon model='none'/>
              </devices>
            </domain>
            """
        let connection = try Connection()
        let events = try connection.lifecycleEvents()
        let domain = try connection.createDomain(xml: xml, flags: [.autodestroy])
        do {
            try await withDeadline(deadline, what: "guest \(name) powering off") {
                for await event in events where event.domainName == name && event.kind == .stopped { return }
            }
        } catch {
            try? domain.destroy()
            throw error
        }
        return (try? String(contentsOfFile: console, encoding: .utf8)) ?? ""
    }
}
