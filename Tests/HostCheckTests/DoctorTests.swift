@testable import CXLLabCommands
import Foundation
@testable import HostCheck
import HostSupport
import Testing
import TestSupport

@Suite(.serialized, .tags(.vm, .network), .needsHost) struct DoctorTests {
    /// The whole doctor on this host, as `make setup` leaves it: healthy, with an accelerator
    /// chosen by booting a kernel and the reason given.
    @Test func reportsAHealthyHostAndItsAccelerator() async throws {
        let report = await Doctor(cache: CacheDirectory.resolve(environment: ProcessInfo.processInfo.environment)).run()
        #expect(report.isHealthy, "blockers: \(report.blockers)")
        let accelerator = try #require(report.accelerator)
        #expect(!accelerator.reason.isEmpty)
        let names = Set(report.checks.map(\.name))
        #expect(names.isSuperset(of: ["QEMU", "CXL emulation", "NVDIMM emulation", "libvirt", "libvirt QEMU cache",
                                      "Host tools", "Debian kernels", "Cache disk", "Accelerator"]))
        if accelerator.accelerator == .tcg, FileManager.default.fileExists(atPath: "/dev/kvm") {
            // This is the nested-virtualization case the doctor exists for: it must say why.
            #expect(accelerator.reason.contains("KVM") || accelerator.reason.contains("/dev/kvm"))
        }
        let rendered = CXLLab.Doctor.render(report)
        #expect(rendered.contains("Ready: guests run under \(accelerator.accelerator.rawValue.uppercased())"))
    }

    @Test func renderingIsAlignedAndNamesFixes() {
        var report = DoctorReport()
        report.checks = [
            DoctorCheck("QEMU", .ok, "10.0.2"),
            DoctorCheck("libvirt", .failed, "cannot connect", fix: "start libvirtd"),
        ]
        let lines = CXLLab.Doctor.render(report).split(separator: "\n").map(String.init)
        #expect(lines[1] == "  ok    QEMU     10.0.2")
        #expect(lines[2] == "  FAIL  libvirt  cannot connect")
        #expect(lines[3].hasSuffix("-> start libvirtd"))
        #expect(lines.last == "Not ready, 1 blocker(s): libvirt.")
    }

    @Test func missingKVMDeviceMeansTCG() async {
        // A kernel image that does not exist: with /dev/kvm absent or unusable the probe must
        // not even try; with it present, neither accelerator boots a missing file.
        let choice = await AcceleratorProbe.choose(kernelImage: "/nonexistent/vmlinuz", deadline: .seconds(3))
        #expect(choice.accelerator == .tcg)
        #expect(!choice.reason.isEmpty)
    }
}
