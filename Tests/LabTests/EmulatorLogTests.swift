@testable import LabRuntime
import Testing

/// QEMU's last words from libvirt's log of a domain: the lines below are as libvirt 11.3 and
/// QEMU 10.0 wrote them here (the assertion from CI on 2026-12-01).
@Suite struct EmulatorLogTests {
    static let header = """
        2026-12-01 02:33:17.128+0000: starting up libvirt version: 11.3.0, package: 11.3.0-2~bpo12+1 (Debian), qemu version: 10.0.2
        LC_ALL=C \\
        /usr/bin/qemu-system-x86_64 \\
        -name guest=cxllab-ram,debug-threads=on \\
        -msg timestamp=on
        2026-12-01 02:33:17.128+0000: Domain id=10 is tainted: custom-argv
        2026-11-30T19:08:42.790134Z qemu-system-x86_64: warning: Using non DAX backing file with 'pmem=on' option is deprecated

        """

    @Test func anAssertionIsQEMUsLastWord() {
        let log = Self.header + """
            qemu-system-x86_64: system/physmem.c:2678: iotlb_to_section: Assertion `section_index < d->map.sections_nb' failed.
            2026-12-01 02:33:40.715+0000: shutting down, reason=crashed

            """
        #expect(EmulatorLog.lastComplaint(inLog: log)
                == "qemu-system-x86_64: system/physmem.c:2678: iotlb_to_section: Assertion `section_index < d->map.sections_nb' failed.")
    }

    @Test func onlyTheLatestStartCounts() {
        let earlier = Self.header + "qemu-system-x86_64: an old failure\n2026-12-01 02:00:00.000+0000: shutting down, reason=crashed\n"
        let latest = Self.header + "2026-12-01 02:40:00.000+0000: shutting down, reason=crashed\n"
        #expect(EmulatorLog.lastComplaint(inLog: earlier + latest) == nil)
    }

    @Test func warningsDestroysAndTheCommandLineAreNoComplaint() {
        let log = Self.header + "2026-12-01T02:52:05.431608Z qemu-system-x86_64: terminating on signal 15 from pid 1891 (libvirtd)\n"
            + "2026-12-01 02:52:05.600+0000: shutting down, reason=destroyed\n"
        #expect(EmulatorLog.lastComplaint(inLog: log) == nil)
    }

    @Test func aMissingLogIsNoComplaint() {
        #expect(EmulatorLog.lastComplaint(domainName: "cxllab-none", folder: "/nonexistent") == nil)
    }
}
