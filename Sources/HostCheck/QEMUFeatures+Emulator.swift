import Topology

extension QEMUFeatures {
    /// What topology validation needs to know of this QEMU.
    public var emulatorCapabilities: EmulatorCapabilities {
        EmulatorCapabilities(version: version, devices: devices, type3Properties: type3Properties, machineOptions: machineOptions)
    }
}
