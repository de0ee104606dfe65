/// What an emulator offers, as far as topologies care: checked before a machine is rendered,
/// so a topology asking for something the installed QEMU lacks fails with a clear message
/// instead of a QEMU error at boot.
public struct EmulatorCapabilities: Sendable, Hashable {
    /// QEMU's version, e.g. "10.0.2".
    public var version: String
    /// Device names (`-device help`).
    public var devices: Set<String>
    /// Properties of the cxl-type3 device (`-device cxl-type3,help`).
    public var type3Properties: Set<String>
    /// Machine options cxllab uses that the q35 machine accepts: "cxl", "nvdimm".
    public var machineOptions: Set<String>

    public init(version: String, devices: Set<String>, type3Properties: Set<String>, machineOptions: Set<String>) {
        self.version = version
        self.devices = devices
        self.type3Properties = type3Properties
        self.machineOptions = machineOptions
    }

    /// QEMU 10.0.2 as Debian's bookworm-backports builds it, the QEMU cxllab's hosts run.
    public static let qemu10 = EmulatorCapabilities(
        version: "10.0.2",
        devices: ["pxb-cxl", "cxl-rp", "cxl-upstream", "cxl-downstream", "cxl-switch-mailbox-cci", "cxl-type3", "nvdimm"],
        type3Properties: ["persistent-memdev", "volatile-memdev", "volatile-dc-memdev", "num-dc-regions", "lsa", "memdev"],
        machineOptions: ["cxl", "nvdimm"]
    )

    public var hasNVDIMM: Bool { devices.contains("nvdimm") && machineOptions.contains("nvdimm") }
    public var hasCXL: Bool { devices.contains("pxb-cxl") && machineOptions.contains("cxl") }
    public var hasSwitchMailbox: Bool { devices.contains("cxl-switch-mailbox-cci") }
    public var hasDynamicCapacity: Bool {
        type3Properties.contains("volatile-dc-memdev") && type3Properties.contains("num-dc-regions")
    }
}
