import Foundation
import Kernels
import HostSupport
import Libvirt
import XML

/// One thing the doctor looked at.
public struct DoctorCheck: Sendable, Codable, Hashable {
    public enum Status: String, Sendable, Codable { case ok, warning, failed }
    public let name: String
    public let status: Status
    /// What was found.
    public let detail: String
    /// What to do about it, for warnings and failures.
    public let fix: String?

    public init(_ name: String, _ status: Status, _ detail: String, fix: String? = nil) {
        self.name = name
        self.status = status
        self.detail = detail
        self.fix = fix
    }
}

/// Everything the doctor learned: the checks, and the facts later steps use.
public struct DoctorReport: Sendable, Codable {
    public var checks: [DoctorCheck] = []
    public var qemu: QEMUFeatures?
    public var accelerator: AcceleratorChoice?
    public var libvirtVersion: String?
    public var seconds: Double = 0

    public var blockers: [DoctorCheck] { checks.filter { $0.status == .failed } }
    public var isHealthy: Bool { blockers.isEmpty }
}

/// Checks that this host can run cxllab's labs, and says for each problem what to do.
public struct Doctor: Sendable {
    public let cache: CacheDirectory
    public let libvirtURI: String

    public init(cache: CacheDirectory, libvirtURI: String = "qemu:///system") {
        self.cache = cache
        self.libvirtURI = libvirtURI
    }

    static let hostTools = ["busybox", "ndctl", "daxctl", "cxl", "cpio", "depmod", "modprobe", "dpkg-deb", "apt-get", "xz", "zstd", "virsh"]
    static let setupFix = "run `make setup` as root (installs and starts everything cxllab needs)"

    public func run(progress: @Sendable (String) -> Void = { _ in }) async -> DoctorReport {
        let clock = ContinuousClock()
        let start = clock.now
        var report = DoctorReport()
        progress("asking QEMU, libvirt and Debian's archive")
        async let qemu = qemuChecks()
        async let libvirt = libvirtChecks()
        async let archive = archiveCheck()
        let (qemuResult, libvirtResult, archiveResult) = await (qemu, libvirt, archive)
        report.qemu = qemuResult.features
        report.checks += qemuResult.checks
        report.libvirtVersion = libvirtResult.version
        report.checks += libvirtResult.checks
        report.checks.append(toolsCheck())
        report.checks.append(archiveResult)
        report.checks.append(diskCheck())

        progress("booting a kernel under KVM and TCG to choose the accelerator")
        let (kernelImage, kernelNote) = await probeKernel()
        let choice = await AcceleratorProbe.choose(kernelImage: kernelImage)
        report.accelerator = choice
        let note = kernelNote.map { " (\($0))" } ?? ""
        switch choice.accelerator {
        case .kvm:
            report.checks.append(DoctorCheck("Accelerator", .ok, "KVM: \(choice.reason)\(note)"))
        case .tcg:
            report.checks.append(DoctorCheck(
                "Accelerator", .warning, "TCG: \(choice.reason)\(note)",
                fix: "guests run under TCG (software emulation): slower, but every lab works"
            ))
        }
        report.seconds = (clock.now - start).seconds
        return report
    }

    func qemuChecks() async -> (features: QEMUFeatures?, checks: [DoctorCheck]) {
        let features: QEMUFeatures
        do {
            features = try await QEMUProbe.probe()
        } catch {
            return (nil, [DoctorCheck("QEMU", .failed, "\(error)", fix: Self.setupFix)])
        }
        var checks: [DoctorCheck] = []
        if features.type3HasEventInterrupts {
            checks.append(DoctorCheck("QEMU", .ok, "\(features.version) at \(features.binary)"))
        } else {
            checks.append(DoctorCheck(
                "QEMU", .warning,
                "\(features.version) at \(features.binary): its cxl-type3 lacks event interrupts, so Debian's 6.12 and 7.x kernels create no CXL memory device",
                fix: "install QEMU 10 from bookworm-backports: \(Self.setupFix)"
            ))
        }
        let missing = features.missingCXLDevices
        var kinds: [String] = []
        if features.supportsPersistentType3 { kinds.append("persistent") }
        if features.supportsVolatileType3 { kinds.append("volatile") }
        if features.supportsDynamicCapacity { kinds.append("dynamic capacity") }
        if features.hasCXL {
            let partial = missing.isEmpty ? "" : "; missing \(missing.joined(separator: ", ")) (topologies using them are refused)"
            checks.append(DoctorCheck(
                "CXL emulation", missing.isEmpty ? .ok : .warning,
                "devices \(QEMUFeatures.cxlDevices.filter(features.devices.contains).joined(separator: ", ")); type3 memory: \(kinds.joined(separator: ", "))\(partial)",
                fix: missing.isEmpty ? nil : "a newer QEMU has them: \(Self.setupFix)"
            ))
        } else {
            checks.append(DoctorCheck("CXL emulation", .failed, "this QEMU cannot emulate CXL (no pxb-cxl, cxl-type3 or machine option cxl=on)", fix: Self.setupFix))
        }
        checks.append(features.hasNVDIMM
            ? DoctorCheck("NVDIMM emulation", .ok, "nvdimm device and machine option nvdimm=on")
            : DoctorCheck("NVDIMM emulation", .failed, "this QEMU has no nvdimm device or nvdimm=on machine option", fix: Self.setupFix))
        return (features, checks)
    }

    func libvirtChecks() async -> (version: String?, checks: [DoctorCheck]) {
        let connection: Connection
        do {
            connection = try await Connection.open(uri: libvirtURI)
        } catch {
            return (nil, [DoctorCheck(
                "libvirt", .failed, "cannot connect to \(libvirtURI): \(error)",
                fix: "start the daemons (`virtlogd -d; libvirtd -d` where no init system does), or \(Self.setupFix)"
            )])
        }
        var checks: [DoctorCheck] = []
        let library = (try? connection.libraryVersion())?.description ?? "unknown"
        let hypervisor = (try? connection.hypervisorVersion())?.description ?? "unknown"
        checks.append(DoctorCheck("libvirt", .ok, "daemon \(library) at \(libvirtURI), driving QEMU \(hypervisor)"))
        checks.append(capabilityCacheCheck(connection))
        return (library, checks)
    }

    /// libvirt re-probes QEMU whenever it finds its capability cache stale; with /dev/kvm not
    /// usable by the qemu user that is every call, and each domain start then takes about 70 s
    /// instead of 2 s. Two consecutive queries tell: the second must come from the cache.
    func capabilityCacheCheck(_ connection: Connection) -> DoctorCheck {
        let name = "libvirt QEMU cache"
        let clock = ContinuousClock()
        var timings: [Double] = []
        for _ in 0..<2 {
            let start = clock.now
            guard (try? connection.domainCapabilities(virtualizationType: "qemu")) != nil else {
                return DoctorCheck(name, .failed, "libvirt could not describe QEMU's capabilities", fix: Self.setupFix)
            }
            timings.append((clock.now - start).seconds)
        }
        var kvmNote = ""
        if let attributes = try? FileManager.default.attributesOfItem(atPath: "/dev/kvm") {
            let mode = (attributes[.posixPermissions] as? Int) ?? 0
            let group = (attributes[.groupOwnerAccountName] as? String) ?? "unknown"
            if group != "kvm" || mode & 0o060 != 0o060 {
                kvmNote = "; /dev/kvm is group \(group), mode \(String(mode, radix: 8))"
            }
        }
        let second = String(format: "%.2f s", timings[1])
        if timings[1] > 2 || !kvmNote.isEmpty {
            return DoctorCheck(
                name, .failed, "a repeated capability query took \(second)\(kvmNote): libvirt re-probes QEMU on every call",
                fix: "`chgrp kvm /dev/kvm && chmod 0660 /dev/kvm`, or \(Self.setupFix)"
            )
        }
        return DoctorCheck(name, .ok, "stable (a repeated capability query took \(second))")
    }

    func toolsCheck() -> DoctorCheck {
        let missing = Self.hostTools.filter { ExecutableLocator.find($0) == nil }
        if missing.isEmpty {
            return DoctorCheck("Host tools", .ok, Self.hostTools.joined(separator: ", "))
        }
        return DoctorCheck("Host tools", .failed, "missing \(missing.joined(separator: ", "))", fix: Self.setupFix)
    }

    func diskCheck() -> DoctorCheck {
        guard let free = cache.freeBytes() else {
            return DoctorCheck("Cache disk", .warning, "cannot read free space under \(cache.path)")
        }
        let gib = Double(free) / Double(1 << 30)
        let detail = String(format: "%.1f GiB free under %@", gib, cache.path)
        if gib < 1 { return DoctorCheck("Cache disk", .failed, detail, fix: "free space, or point --cache-dir / CXLLAB_CACHE elsewhere") }
        if gib < 5 { return DoctorCheck("Cache disk", .warning, detail + " (kernels take about 0.5 GiB each)", fix: "free space, or point --cache-dir / CXLLAB_CACHE elsewhere") }
        return DoctorCheck("Cache disk", .ok, detail)
    }

    func archiveCheck() async -> DoctorCheck {
        let name = "Debian kernels"
        do {
            let archive = try DebianArchive(cache: cache)
            try await archive.refresh()
            let rows = try await archive.versions(of: "linux-image-amd64")
            var found: [String] = []
            var missing: [String] = []
            for alias in ["bookworm", "bookworm-backports", "trixie-backports"] {
                let suites = KernelStore.suites(for: alias)
                if let row = rows.first(where: { suites.contains($0.suite) }) {
                    found.append("\(alias) \(row.version)")
                } else {
                    missing.append(alias)
                }
            }
            if missing.isEmpty { return DoctorCheck(name, .ok, found.joined(separator: ", ")) }
            return DoctorCheck(name, .warning, "none in \(missing.joined(separator: ", ")); found \(found.joined(separator: ", "))",
                               fix: "check that the host's Debian mirror carries those suites")
        } catch {
            return DoctorCheck(name, .failed, "\(error)", fix: "check the network path to the Debian mirror in /etc/apt")
        }
    }

    /// A cached kernel when there is one; otherwise the newest bookworm kernel, fetched into the
    /// cache (where the default matrix wants it anyway).
    func probeKernel() async -> (String?, String?) {
        guard let store = try? KernelStore(cache: cache) else { return (nil, "the kernel cache cannot be created") }
        if let kernel = store.list().first { return (kernel.imagePath, "probed with cached kernel \(kernel.release)") }
        do {
            let kernel = try await store.kernel(.debianSuite("bookworm"))
            return (kernel.imagePath, "probed with \(kernel.release), fetched into the cache")
        } catch {
            return (nil, "no kernel for the probe: \(error)")
        }
    }
}
