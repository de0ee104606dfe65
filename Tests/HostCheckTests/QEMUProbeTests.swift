@testable import HostCheck
import Testing

@Suite struct QEMUProbeParsingTests {
    @Test func version() {
        #expect(QEMUProbe.parseVersion("QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2)\nCopyright") == "10.0.2")
        #expect(QEMUProbe.parseVersion("nonsense") == nil)
    }

    @Test func deviceNames() {
        let names = QEMUProbe.parseDeviceNames("""
            Controller/Bridge/Hub devices:
            name "pxb-cxl", bus PCI, desc "CXL Host Bridge"
            name "cxl-rp", bus PCI, desc "CXL Root Port"
            Misc devices:
            name "nvdimm", desc "DIMM memory module"
            """)
        #expect(names == ["pxb-cxl", "cxl-rp", "nvdimm"])
    }

    @Test func properties() {
        let properties = QEMUProbe.parseProperties("""
            cxl-type3 options:
              lsa=<link<memory-backend>>
              persistent-memdev=<link<memory-backend>>
              volatile-dc-memdev=<link<memory-backend>>
              x-speed=<PCIELinkSpeed> - 2_5/5/8/16/32/64 (default: 32)
            """)
        #expect(properties == ["lsa", "persistent-memdev", "volatile-dc-memdev", "x-speed"])
    }

    @Test func featureQueries() {
        let old = QEMUFeatures(binary: "q", version: "7.2.0", devices: ["pxb-cxl", "cxl-type3", "nvdimm"],
                               type3Properties: ["memdev", "lsa"], machineOptions: ["cxl", "nvdimm"])
        #expect(old.hasCXL && old.hasNVDIMM && old.supportsPersistentType3)
        #expect(!old.type3HasEventInterrupts && !old.supportsVolatileType3 && !old.supportsDynamicCapacity)
        #expect(old.missingCXLDevices == ["cxl-rp", "cxl-upstream", "cxl-downstream", "cxl-switch-mailbox-cci"])
        let new = QEMUFeatures(binary: "q", version: "10.0.2", devices: [], type3Properties: [], machineOptions: [])
        #expect(new.type3HasEventInterrupts && !new.hasCXL)
    }

    /// The installed QEMU, as `make setup` leaves it.
    @Test func installedQEMUHasWhatLabsNeed() async throws {
        let features = try await QEMUProbe.probe()
        #expect(features.hasCXL)
        #expect(features.hasNVDIMM)
        #expect(features.missingCXLDevices.isEmpty)
        #expect(features.supportsPersistentType3 && features.supportsVolatileType3)
        #expect(features.type3HasEventInterrupts)
    }
}
