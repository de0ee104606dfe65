import Foundation

/// A kernel's .config, as far as checks need it.
public struct KernelConfig: Sendable, Hashable {
    public let values: [String: String]

    public init(text: String) {
        var values: [String: String] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("CONFIG_") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            values[String(line[line.index(line.startIndex, offsetBy: 7)..<equals])] = String(line[line.index(after: equals)...])
        }
        self.values = values
    }

    public init?(contentsOf path: String) {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        self.init(text: text)
    }

    /// y or m.
    public func isEnabled(_ option: String) -> Bool {
        values[option] == "y" || values[option] == "m"
    }
}

/// One option a lab needs, and what goes wrong without it.
public struct ConfigRequirement: Sendable, Hashable, Codable {
    public enum Effect: String, Sendable, Codable {
        /// The lab cannot work: the feature's devices or the agent would be missing.
        case blocks
        /// The lab boots, but part of a scenario is not applicable (reported, not failed).
        case limits
    }

    public let option: String
    public let feature: String
    public let effect: Effect
    public let why: String
}

/// What each feature of a topology or scenario needs from the kernel's config, checked
/// before any boot.
public enum KernelRequirements {
    /// Every feature a lab can ask for. `kernel show` checks a kernel against all of them but
    /// `hypervisorBit`, and docs/KERNEL-CONFIG.md lists what each needs (a test holds the two
    /// to this list).
    public static let features: Set<String> = ["nvdimm", "legacy-pmem", "cxl", "kmem", "fsdev", hypervisorBit]

    /// Only a topology that keeps the CPUID hypervisor bit (`hypervisor_bit: true`) has it:
    /// cxllab's guests have the bit off.
    public static let hypervisorBit = "hypervisor-bit"

    public static func requirements(for features: Set<String>, release: String) -> [ConfigRequirement] {
        func need(_ feature: String, _ options: [String], _ why: String, _ effect: ConfigRequirement.Effect = .blocks) -> [ConfigRequirement] {
            options.map { ConfigRequirement(option: $0, feature: feature, effect: effect, why: why) }
        }
        var result = need("boot", ["BLK_DEV_INITRD", "DEVTMPFS", "SERIAL_8250_CONSOLE"], "the guest boots from an initramfs with a serial console")
            + need("boot", ["VIRTIO_PCI", "VIRTIO_CONSOLE"], "the agent talks to the host over virtio-serial")
            + need("boot", ["MODULES", "MODULE_UNLOAD"], "scenarios load and unload the dax drivers")
            + need("boot", ["DAX", "DEV_DAX"], "every scenario works on dax devices")
        if features.contains("nvdimm") || features.contains("legacy-pmem") {
            result += need("nvdimm", ["LIBNVDIMM", "BLK_DEV_PMEM", "NVDIMM_DAX", "NVDIMM_PFN", "DEV_DAX_PMEM"], "NVDIMM namespaces in devdax mode")
        }
        if features.contains("nvdimm") { result += need("nvdimm", ["ACPI_NFIT"], "QEMU's NVDIMMs are described by the ACPI NFIT") }
        if features.contains("legacy-pmem") { result += need("legacy-pmem", ["X86_PMEM_LEGACY"], "memmap= pmem is an e820 type-12 range") }
        if features.contains("cxl") {
            result += need("cxl", ["CXL_BUS", "CXL_PCI", "CXL_ACPI", "CXL_MEM", "CXL_PORT"], "CXL memory devices behind QEMU's host bridges")
            result += need("cxl", ["CXL_REGION"], "dax devices on CXL memory come from CXL regions", .limits)
            result += need("cxl", ["CXL_PMEM"], "persistent CXL regions", .limits)
            // Only a guest that sees the CPUID hypervisor bit needs it: cxllab's guests have the
            // bit off unless a topology keeps it (feature "hypervisor-bit").
            if features.contains(hypervisorBit), !releaseBefore(release, 6, 2) {
                result += need("cxl", ["CXL_REGION_INVALIDATION_TEST"],
                               "from 6.2 on a kernel that sees the CPUID hypervisor bit refuses to commit a CXL region "
                                   + "(\"Failed to synchronize CPU cache state\") without it; the topology keeps the bit (hypervisor_bit: true)", .limits)
            }
        }
        if features.contains("kmem") { result += need("kmem", ["DEV_DAX_KMEM", "MEMORY_HOTPLUG"], "system-ram dax devices on kmem") }
        if features.contains("fsdev") {
            result += need("fsdev", ["DEV_DAX_FSDEV"], "the real fsdev_dax driver (without it a stand-in module is used where the kernel allows)", .limits)
        }
        return result
    }

    /// The requirements the config does not meet.
    public static func missing(in config: KernelConfig, features: Set<String>, release: String) -> [ConfigRequirement] {
        requirements(for: features, release: release).filter { !config.isEnabled($0.option) }
    }

    /// True when `release` (e.g. 6.1.0-56-amd64) is older than major.minor.
    public static func releaseBefore(_ release: String, _ major: Int, _ minor: Int) -> Bool {
        let numbers = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        guard numbers.count == 2 else { return false }
        return (numbers[0], numbers[1]) < (major, minor)
    }
}
