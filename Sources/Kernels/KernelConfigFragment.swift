/// The config a kernel tree needs for every lab cxllab makes, as `make:<dir>` merges it into the
/// tree's .config before `make olddefconfig`. It is `KernelRequirements`' own list, so what a
/// lab checks before it boots and what a built tree gets cannot drift apart; the README prints
/// it, and a test holds the two to the same text.
public enum KernelConfigFragment {
    /// Every feature a topology can have; not `fsdev` (whether a tree builds its own fsdev_dax
    /// is the developer's choice, and the stand-in covers kernels without one) nor
    /// `hypervisor-bit` (a test option for the few topologies that keep the bit).
    public static let features: Set<String> = ["nvdimm", "legacy-pmem", "cxl", "kmem"]

    /// The drivers the scenarios unload and load again in every order: modules, never built in.
    public static let modular: Set<String> = ["DEV_DAX", "DEV_DAX_PMEM", "DEV_DAX_KMEM"]

    /// Each option once, in the requirements' order.
    public static var requirements: [ConfigRequirement] {
        var seen: Set<String> = []
        // The release only matters for hypervisor-bit, which the fragment leaves out.
        return KernelRequirements.requirements(for: features, release: "").filter { seen.insert($0.option).inserted }
    }

    /// `CONFIG_X=y` (or `=m`), one line per option.
    public static var lines: [String] {
        requirements.map { "CONFIG_\($0.option)=\(modular.contains($0.option) ? "m" : "y")" }
    }

    /// The fragment as a file: a comment saying where it comes from, then its lines.
    public static var text: String {
        (["# What cxllab's labs need (make:<dir> merges it before `make olddefconfig`)"] + lines).joined(separator: "\n") + "\n"
    }

    /// `config` with every option of the fragment set to the fragment's value: earlier lines of
    /// those options (`=n`, `is not set`, another value) removed, the fragment appended.
    public static func merged(into config: String) -> String {
        let options = Set(requirements.map { "CONFIG_" + $0.option })
        let kept = config.split(separator: "\n", omittingEmptySubsequences: false).filter { line in
            guard let name = optionName(of: line) else { return true }
            return !options.contains(name)
        }
        var head = kept.joined(separator: "\n")
        if !head.isEmpty, !head.hasSuffix("\n") { head += "\n" }
        return head + text
    }

    /// `CONFIG_X` from `CONFIG_X=...` or `# CONFIG_X is not set`; nil for any other line.
    static func optionName(of line: Substring) -> String? {
        if line.hasPrefix("CONFIG_"), let equals = line.firstIndex(of: "=") { return String(line[..<equals]) }
        if line.hasPrefix("# CONFIG_"), line.hasSuffix(" is not set") {
            return String(line.dropFirst(2).dropLast(" is not set".count))
        }
        return nil
    }
}
