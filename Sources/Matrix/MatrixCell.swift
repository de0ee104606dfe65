import Foundation
import HostSupport
import Kernels
import Scenarios

/// One cell: the common axes (a kernel, a topology, a scenario and a variant of it), and the
/// scenario's own settings, run in one guest. The store keeps the settings as the scenario
/// encodes them, under `settings`.
public struct MatrixCell: Sendable, Codable, Hashable {
    /// As the matrix file names it (`debian:bookworm-backports`).
    public var kernel: String
    /// What that named when the run started: every cell of a run uses this kernel.
    public var pinned: PinnedKernel
    public var topology: String
    /// The scenario's registered name.
    public var scenario: String
    /// A short label of the variant for people: "stand-in automatch=1", "real fsdev_dax", ...
    public var variant: String
    /// The scenario's settings for this cell.
    public var settings: any ScenarioSettings

    public init(kernel: String, pinned: PinnedKernel, topology: String, variant: String, settings: some ScenarioSettings, scenario: String) {
        self.kernel = kernel
        self.pinned = pinned
        self.topology = topology
        self.scenario = scenario
        self.variant = variant
        self.settings = settings
    }

    /// A cell of a registered scenario.
    public init<P: ScenarioPlugin>(_ plugin: P.Type, kernel: String, pinned: PinnedKernel, topology: String, variant: String, settings: P.Settings) {
        self.init(kernel: kernel, pinned: pinned, topology: topology, variant: variant, settings: settings, scenario: P.name)
    }

    /// The settings as their scenario's own type.
    public func settings<S: ScenarioSettings>(as type: S.Type) -> S? { settings as? S }

    var plugin: (any ScenarioPlugin.Type)? { ScenarioRegistry.plugin(named: scenario) }

    private var inputs: [String] { [kernel, topology, scenario] + settings.identityInputs }

    /// A stable hash of the cell's inputs, the pinned kernel included: the same cell on the
    /// same kernel has the same id in every run, on every host, in every shard.
    public var id: String {
        let canonical = (inputs + [pinned.release, pinned.imageSHA256]).joined(separator: "\n")
        return String(FileDigest.sha256(of: Data(canonical.utf8)).prefix(12))
    }

    /// The same hash without the pinned kernel: the cell across runs whose alias moved
    /// (`cxllab diff` pairs cells by it).
    public var key: String {
        String(FileDigest.sha256(of: Data(inputs.joined(separator: "\n").utf8)).prefix(12))
    }

    public var label: String { "\(kernel) \((topology as NSString).lastPathComponent) \(scenario) [\(variant)]" }

    /// The command that runs this cell alone, on exactly its kernel.
    public var command: String {
        plugin?.command(for: settings, kernel: pinned.exactReference, topology: topology)
            ?? "# scenario '\(scenario)' is not one this cxllab has"
    }

    // MARK: - Equality and storage

    public static func == (a: MatrixCell, b: MatrixCell) -> Bool {
        a.kernel == b.kernel && a.pinned == b.pinned && a.topology == b.topology && a.scenario == b.scenario && a.variant == b.variant
            && a.settings.identityInputs == b.settings.identityInputs
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(id)
        hasher.combine(variant)
    }

    enum CodingKeys: String, CodingKey {
        case kernel, pinned, topology, scenario, variant, settings
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        kernel = try container.decode(String.self, forKey: .kernel)
        pinned = try container.decode(PinnedKernel.self, forKey: .pinned)
        topology = try container.decode(String.self, forKey: .topology)
        scenario = try container.decode(String.self, forKey: .scenario)
        variant = try container.decode(String.self, forKey: .variant)
        guard let plugin = ScenarioRegistry.plugin(named: scenario) else {
            throw DecodingError.dataCorruptedError(forKey: .scenario, in: container,
                                                   debugDescription: "a cell of scenario '\(scenario)', which this cxllab does not have")
        }
        // Cells stored before scenarios had their own settings keep them beside the axes, under
        // the same names.
        settings = container.contains(.settings)
            ? try plugin.decodeSettings(from: try container.superDecoder(forKey: .settings))
            : try plugin.decodeSettings(from: decoder)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(kernel, forKey: .kernel)
        try container.encode(pinned, forKey: .pinned)
        try container.encode(topology, forKey: .topology)
        try container.encode(scenario, forKey: .scenario)
        try container.encode(variant, forKey: .variant)
        try settings.encode(to: container.superEncoder(forKey: .settings))
    }
}
