// Validation of one CXL memory device's capacity: persistent and volatile memory, label
// storage area, dynamic capacity and serial number.

import Foundation
import YAMLGuard

extension Validator {
    struct CheckedCapacity {
        var persistent: UInt64?
        var lsa: UInt64?
        var volatile: UInt64?
        var dynamic: Topology.DynamicCapacity?
        var serial: UInt64?
    }

    func checkMemoryDevice(_ device: MemoryDeviceDraft, what: String) -> CheckedCapacity? {
        var valid = true
        var result = CheckedCapacity()
        func property(_ name: String, at location: SourcePosition, for feature: String) {
            if !capabilities.type3Properties.contains(name) {
                error(location, "QEMU \(capabilities.version)'s cxl-type3 has no \(name) property, so it cannot give \(what) \(feature)",
                      fix: "remove it from the device, or install a newer QEMU (`make setup` installs QEMU 10)")
                valid = false
            }
        }
        func capacity(_ size: Located<UInt64>?, _ name: String) -> UInt64? {
            guard let size else { return nil }
            if size.value == 0 || size.value % Topology.cxlCapacityUnit != 0 {
                let suggestion = ByteSize.qemu(max(1, (size.value + Topology.cxlCapacityUnit - 1) / Topology.cxlCapacityUnit) * Topology.cxlCapacityUnit)
                error(size.location, "\(what)'s \(name) size \(ByteSize.describe(size.value)) is not a positive multiple of 256 MiB",
                      fix: "CXL counts capacity in 256 MiB units: use e.g. \(suggestion)")
                valid = false
                return nil
            }
            if size.value > ByteSize.tib {
                // QEMU maps each backing file whole: past a TiB no host has the room.
                error(size.location, "\(what)'s \(name) size \(ByteSize.describe(size.value)) is more than 1 TiB",
                      fix: "use at most 1T; a few 256 MiB units are plenty for dax tests under TCG")
                valid = false
                return nil
            }
            return size.value
        }
        if device.persistent == nil, device.volatile == nil, device.dynamicCapacity == nil {
            error(device.location, "\(what) has no memory", fix: "give it `persistent: 256M`, `volatile: 256M` or `dynamic_capacity: {size: 512M}`")
            valid = false
        }
        if let persistent = device.persistent {
            property("persistent-memdev", at: persistent.location, for: "persistent memory")
            result.persistent = capacity(persistent, "persistent")
            if device.lsa == nil { result.lsa = 256 * ByteSize.mib }
        }
        if let volatile = device.volatile {
            property("volatile-memdev", at: volatile.location, for: "volatile memory")
            result.volatile = capacity(volatile, "volatile")
        }
        if let lsa = device.lsa {
            property("lsa", at: lsa.location, for: "a label storage area")
            if lsa.value < Topology.minimumLabelSize || lsa.value % (4 * ByteSize.kib) != 0 || lsa.value > ByteSize.gib {
                error(lsa.location, "\(what)'s lsa \(ByteSize.describe(lsa.value)) is not a label storage area size",
                      fix: "use a multiple of 4 KiB from 128K to 1G, e.g. 256M")
                valid = false
            }
            result.lsa = lsa.value
        }
        if let dynamic = device.dynamicCapacity {
            if !capabilities.hasDynamicCapacity {
                error(dynamic.location, "QEMU \(capabilities.version) cannot give \(what) dynamic capacity (its cxl-type3 lacks volatile-dc-memdev and num-dc-regions)",
                      fix: "remove `dynamic_capacity`, or install a newer QEMU (`make setup` installs QEMU 10, which has it)")
                valid = false
            }
            var regions = 1
            if let given = dynamic.regions {
                if !(1...8).contains(given.value) {
                    error(given.location, "\(what) has \(given.value) dynamic capacity regions", fix: "use 1 to 8 regions")
                    valid = false
                } else {
                    regions = given.value
                }
            }
            if let size = dynamic.size {
                let unit = Topology.cxlCapacityUnit * UInt64(regions)
                if size.value == 0 || size.value % unit != 0 {
                    error(size.location, "\(what)'s dynamic capacity \(ByteSize.describe(size.value)) does not split into \(regions) region\(regions == 1 ? "" : "s") of whole 256 MiB units",
                          fix: "use a multiple of \(ByteSize.qemu(unit)) (\(regions) × 256M)")
                    valid = false
                } else if size.value > ByteSize.tib {
                    error(size.location, "\(what)'s dynamic capacity \(ByteSize.describe(size.value)) is more than 1 TiB",
                          fix: "use at most 1T; a few 256 MiB units are plenty for dax tests under TCG")
                    valid = false
                } else {
                    result.dynamic = Topology.DynamicCapacity(size: size.value, regions: regions)
                }
            } else { valid = false }
        }
        if let serial = device.serial {
            if serial.value < 0 {
                error(serial.location, "\(what)'s serial \(serial.value) is negative", fix: "use a serial number of 0 or more")
                valid = false
            } else {
                result.serial = UInt64(serial.value)
            }
        }
        return valid ? result : nil
    }

    /// Every memory device gets a serial number: the kernel refuses an nvdimm bridge (so any
    /// devdax namespace) on a CXL pmem region whose devices have none ("invalid or missing
    /// serial number"), and QEMU gives none by default. A serial the file leaves out is
    /// derived from the device's id, so it stays the same when other devices come and go;
    /// serials the file sets must differ.
    func assignSerials(_ devices: [Topology.MemoryDevice], drafts: [MemoryDeviceDraft]) -> [Topology.MemoryDevice] {
        var taken: [UInt64: String] = [:]
        for device in devices {
            guard let serial = device.serial else { continue }
            if let other = taken[serial] {
                let location = drafts.first { $0.id?.value == device.id }?.serial?.location ?? .start
                error(location, "memory device `\(device.id)` has serial \(serial), as `\(other)` does",
                      fix: "give each memory device its own serial, or leave `serial` out and cxllab derives one from the id")
            }
            taken[serial] = device.id
        }
        return devices.map { device in
            guard device.serial == nil else { return device }
            var serial = Self.derivedSerial(device.id)
            while taken[serial] != nil { serial = serial &+ 1 == 0 ? 1 : serial &+ 1 }
            taken[serial] = device.id
            var assigned = device
            assigned.serial = serial
            return assigned
        }
    }

    /// FNV-1a of the id, kept to 32 bits so it reads well in `cxl list` (never 0: the kernel
    /// counts 0 as missing).
    static func derivedSerial(_ id: String) -> UInt64 {
        var hash: UInt32 = 0x811c_9dc5
        for byte in id.utf8 { hash = (hash ^ UInt32(byte)) &* 0x0100_0193 }
        return hash == 0 ? 1 : UInt64(hash)
    }

    /// The guest's physical address space: QEMU's qemu64 CPU has 40 physical address bits
    /// under TCG (1 TiB), and RAM, the NVDIMMs' hot-plug area, 4 GiB of PCI hole and every
    /// CXL window must fit in it. Without this check a file of a few lines asks for a machine
    /// QEMU cannot build (a 1023 TiB window passed before), or for backing files no host has.
    func checkAddressSpace(machine: Topology.Machine, hotplug: Topology.MemoryHotplug?, cxl: Topology.CXL) {
        let limit = ByteSize.tib
        let memory = hotplug?.maxMemory ?? machine.memory
        let windows = cxl.windows.map(\.size)
        let total = ([memory, 4 * ByteSize.gib] + windows).checkedSum ?? UInt64.max
        guard total > limit else { return }
        let location = draft.cxl.windows.first?.size?.location ?? draft.machine.location ?? .start
        error(location, "the machine needs \(ByteSize.describe(total)) of guest physical address space (memory \(ByteSize.describe(memory)), "
                  + "4 GiB of PCI hole, CXL windows \(ByteSize.describe(windows.checkedSum ?? UInt64.max))), more than the 1 TiB a qemu64 CPU addresses",
              fix: "make the windows and the memory smaller: a window needs only 256 MiB per way for each region it will hold (4G is plenty for the shipped topologies)")
    }
}
