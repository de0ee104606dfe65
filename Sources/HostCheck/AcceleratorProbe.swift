import Foundation
import Kernels
import HostSupport

/// Which accelerator guests get, and why.
public struct AcceleratorChoice: Sendable, Codable, Hashable {
    public enum Accelerator: String, Sendable, Codable { case kvm, tcg }
    public let accelerator: Accelerator
    public let reason: String

    public init(accelerator: Accelerator, reason: String) {
        self.accelerator = accelerator
        self.reason = reason
    }
}

/// Decides between KVM and TCG by booting a real kernel under KVM with a deadline: on nested
/// hosts /dev/kvm can exist and open while a Linux guest under it never prints a line, so
/// only a boot tells. TCG boots the same kernel as the control, so a broken kernel is not
/// mistaken for a broken KVM.
public enum AcceleratorProbe {
    public static let bootMarker = "Linux version"

    public static func choose(kernelImage: String?, deadline: Duration = .seconds(8)) async -> AcceleratorChoice {
        let device = "/dev/kvm"
        guard FileManager.default.fileExists(atPath: device) else {
            return AcceleratorChoice(accelerator: .tcg, reason: "\(device) does not exist (no hardware virtualization here)")
        }
        guard access(device, R_OK | W_OK) == 0 else {
            return AcceleratorChoice(accelerator: .tcg, reason: "\(device) exists but this user cannot open it")
        }
        guard let kernelImage else {
            return AcceleratorChoice(accelerator: .tcg, reason: "\(device) exists, but no kernel was at hand to prove a guest boots under it")
        }
        async let kvm = boots(kernelImage: kernelImage, accelerator: "kvm", deadline: deadline)
        async let tcg = boots(kernelImage: kernelImage, accelerator: "tcg", deadline: deadline * 3)
        let (kvmSeconds, tcgSeconds) = await (kvm, tcg)
        let limit = "\(deadline.components.seconds) s"
        switch (kvmSeconds, tcgSeconds) {
        case (let kvm?, _):
            return AcceleratorChoice(accelerator: .kvm, reason: "a kernel printed its banner under KVM in \(format(kvm))")
        case (nil, let tcg?):
            return AcceleratorChoice(
                accelerator: .tcg,
                reason: "\(device) exists, but a guest under KVM printed nothing within \(limit) while TCG booted the same kernel in \(format(tcg)) (nested virtualization without support?)"
            )
        case (nil, nil):
            return AcceleratorChoice(accelerator: .tcg, reason: "the probe kernel printed nothing under KVM or TCG; KVM could not be proven")
        }
    }

    /// Seconds the boot took when the kernel's banner reached the serial console in time, else nil.
    /// The kernel has no root file system: it panics right after its banner and, with
    /// `panic=-1` and `-no-reboot`, QEMU exits by itself, so a working accelerator ends the
    /// run early and a hung one runs into the deadline.
    static func boots(kernelImage: String, accelerator: String, deadline: Duration) async -> Double? {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("cxllab-accel-\(UUID().uuidString)").path
        guard (try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)) != nil else { return nil }
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let console = folder + "/console.log"
        let result = try? await ProcessRunner.run(
            QEMUProbe.binaryName,
            ["-accel", accelerator, "-nodefaults", "-no-user-config", "-display", "none", "-m", "256",
             "-serial", "file:\(console)", "-kernel", kernelImage,
             "-append", GuestCommandLine.base.joined(separator: " "), "-no-reboot"],
            timeout: deadline
        )
        guard let result, let text = try? String(contentsOfFile: console, encoding: .utf8), text.contains(bootMarker) else {
            return nil
        }
        return result.duration.seconds
    }

    static func format(_ seconds: Double) -> String { String(format: "%.1f s", seconds) }
}
