import Foundation
import HostSupport

/// What the installed QEMU can emulate, as far as cxllab's machines are concerned.
public struct QEMUFeatures: Sendable, Codable, Hashable {
    public var binary: String
    public var version: String
    /// Device names QEMU offers (`-device help`).
    public var devices: Set<String>
    /// Properties of the cxl-type3 device (`-device cxl-type3,help`).
    public var type3Properties: Set<String>
    /// q35 machine options QEMU accepts, of those cxllab uses (`cxl`, `nvdimm`).
    public var machineOptions: Set<String>

    public static let cxlDevices = ["pxb-cxl", "cxl-rp", "cxl-upstream", "cxl-downstream", "cxl-switch-mailbox-cci", "cxl-type3"]

    public var versionNumbers: [Int] { version.split(separator: ".").compactMap { Int($0) } }

    public func isAtLeast(_ major: Int, _ minor: Int) -> Bool {
        let numbers = versionNumbers + [0, 0]
        return (numbers[0], numbers[1]) >= (major, minor)
    }

    public var missingCXLDevices: [String] { Self.cxlDevices.filter { !devices.contains($0) } }
    public var hasCXL: Bool { devices.contains("pxb-cxl") && devices.contains("cxl-type3") && machineOptions.contains("cxl") }
    public var hasNVDIMM: Bool { devices.contains("nvdimm") && machineOptions.contains("nvdimm") }
    public var supportsPersistentType3: Bool { type3Properties.contains("persistent-memdev") || type3Properties.contains("memdev") }
    public var supportsVolatileType3: Bool { type3Properties.contains("volatile-memdev") }
    public var supportsDynamicCapacity: Bool { type3Properties.contains("volatile-dc-memdev") }
    /// QEMU before 8.0's type3 device has no event interrupts, and cxl_pci of the 6.12 and 7.x
    /// kernels then creates no memory device at all.
    public var type3HasEventInterrupts: Bool { isAtLeast(8, 0) }
}

/// Asks the QEMU binary itself what it offers.
public enum QEMUProbe {
    public static let binaryName = "qemu-system-x86_64"

    /// The probe, once per memo and binary: every lab of a matrix needs it, and asking QEMU
    /// costs five QEMU starts (about a second), so a lab context keeps one memo for its labs. With a cache, the answer is also kept on
    /// disk for as long as the binary is the same file (path, size, change time), so later
    /// commands skip the starts too.
    public static func probe(binary: String = binaryName, cache: CacheDirectory? = nil, memo: QEMUProbeMemo = QEMUProbeMemo()) async throws -> QEMUFeatures {
        guard let cache else { return try await memo.features(binary: binary) }
        let path = try ExecutableLocator.require(binary)
        let stored = cache.path + "/qemu-features.json"
        let identity = fileIdentity(path)
        if let data = FileManager.default.contents(atPath: stored),
           let kept = try? JSONDecoder().decode(StoredFeatures.self, from: data), kept.identity == identity {
            return kept.features
        }
        let features = try await memo.features(binary: binary)
        if let data = try? JSONEncoder().encode(StoredFeatures(identity: identity, features: features)) {
            try? FileManager.default.createDirectory(atPath: cache.path, withIntermediateDirectories: true)
            // Written whole and renamed, so a concurrent reader sees the old file or the new one.
            let temporary = stored + ".\(getpid())"
            if FileManager.default.createFile(atPath: temporary, contents: data) { rename(temporary, stored) }
        }
        return features
    }

    struct StoredFeatures: Codable {
        let identity: String
        let features: QEMUFeatures
    }

    /// Path, size and change time: a package upgrade replaces the file and changes them.
    static func fileIdentity(_ path: String) -> String {
        var info = stat()
        guard stat(path, &info) == 0 else { return path }
        return "\(path):\(info.st_size):\(info.st_ino):\(info.st_ctim.tv_sec).\(info.st_ctim.tv_nsec)"
    }

    static func probeUncached(binary: String) async throws -> QEMUFeatures {
        let path = try ExecutableLocator.require(binary)
        let base = ["-nodefaults", "-machine", "none"]
        async let versionRun = ProcessRunner.check(path, ["--version"], timeout: .seconds(30), context: "QEMU did not report its version")
        async let devicesRun = ProcessRunner.check(path, base + ["-device", "help"], timeout: .seconds(30), context: "QEMU did not list its devices")
        async let type3Run = ProcessRunner.run(path, base + ["-device", "cxl-type3,help"], timeout: .seconds(30))
        async let cxlMachine = machineAccepts(path, option: "cxl=on")
        async let nvdimmMachine = machineAccepts(path, option: "nvdimm=on")
        let (version, devices, type3) = try await (versionRun, devicesRun, type3Run)
        let (cxl, nvdimm) = try await (cxlMachine, nvdimmMachine)
        let machine = [("cxl", cxl), ("nvdimm", nvdimm)].filter(\.1).map(\.0)
        return QEMUFeatures(
            binary: path,
            version: parseVersion(version.output) ?? "unknown",
            devices: parseDeviceNames(devices.output),
            type3Properties: type3.succeeded ? parseProperties(type3.output) : [],
            machineOptions: Set(machine)
        )
    }

    /// Some machine options are instance properties that `-machine q35,help` does not list, so
    /// this creates the machine paused and quits over QMP: an unknown option fails creation.
    static func machineAccepts(_ path: String, option: String) async throws -> Bool {
        let quit = Data(#"{"execute":"qmp_capabilities"}{"execute":"quit"}"#.utf8)
        let result = try await ProcessRunner.run(
            path, ["-nodefaults", "-display", "none", "-accel", "tcg", "-machine", "q35,\(option)", "-S", "-qmp", "stdio"],
            input: quit, timeout: .seconds(30)
        )
        return result.succeeded && !result.errorOutput.contains("not found")
    }

    /// "QEMU emulator version 10.0.2 (Debian ...)" -> "10.0.2".
    static func parseVersion(_ text: String) -> String? {
        guard let range = text.range(of: "version ") else { return nil }
        return text[range.upperBound...].split(whereSeparator: { $0 == " " || $0 == "\n" }).first.map(String.init)
    }

    /// Lines like `name "pxb-cxl", bus PCI, desc "CXL Host Bridge"`.
    static func parseDeviceNames(_ text: String) -> Set<String> {
        Set(text.split(separator: "\n").compactMap { line in
            guard let start = line.range(of: "name \"") else { return nil }
            let rest = line[start.upperBound...]
            return rest.firstIndex(of: "\"").map { String(rest[..<$0]) }
        })
    }

    /// Lines like `  persistent-memdev=<link<memory-backend>>` or `nvdimm=<bool>`.
    static func parseProperties(_ text: String) -> Set<String> {
        Set(text.split(separator: "\n").compactMap { line in
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard let equals = trimmed.firstIndex(of: "="), !trimmed.hasPrefix("-") else { return nil }
            let name = trimmed[..<equals]
            return name.contains(" ") ? nil : String(name)
        })
    }
}

/// QEMU's answers, by binary, for as long as its owner (a lab context) lives: concurrent
/// askers share one probe, and a failed probe is not remembered.
public actor QEMUProbeMemo {
    private var known: [String: Task<QEMUFeatures, Error>] = [:]

    public init() {}

    func features(binary: String) async throws -> QEMUFeatures {
        if let task = known[binary] { return try await task.value }
        let task = Task { try await QEMUProbe.probeUncached(binary: binary) }
        known[binary] = task
        do {
            return try await task.value
        } catch {
            known[binary] = nil
            throw error
        }
    }
}
