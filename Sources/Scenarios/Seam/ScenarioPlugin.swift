import Foundation
import GuestImage
import HostSupport
import Kernels
import LabRuntime

/// A scenario as matrix files, the matrix, the result store and the reports know it: its name,
/// its matrix-file entry and the check of it, the cell variants an entry makes on a kernel, its
/// settings per cell, the command that runs one cell alone, and its report parts. Nothing
/// outside a scenario's own folder, the registry and the commands names a concrete scenario:
/// adding one is a folder, a line in `ScenarioRegistry.plugins` and a subcommand if it has one.
public protocol ScenarioPlugin: Scenario {
    /// What one cell runs with: its id is made of these (and the common axes).
    associatedtype Settings: ScenarioSettings
    /// The scenario's entry in a matrix file's `scenarios:`, as the user wrote it.
    associatedtype Entry: ScenarioEntry
    /// The scenario's own record of a run (`ScenarioOutcome.detail`).
    associatedtype Report: ScenarioReport

    /// The name in matrix files, the store and reports: driver-order, race, ndctl-suite.
    static var name: String { get }
    /// The keys its matrix-file entry takes besides `name`, in the order its help gives them.
    static var entryKeys: [String] { get }
    /// The image recipe (`images/NAME.yaml`) its cells boot with instead of the matrix's; nil:
    /// the matrix's.
    static var recipeName: String? { get }

    /// The cells one entry makes on a kernel: one per variant (which fsdev_dax, which
    /// automatch), each with its label and settings.
    static func variants(of entry: Entry, fsdev: FsdevAvailability, standInSource: String) -> [(label: String, settings: Settings)]
    /// The scenario that runs a cell with these settings on this topology (as the matrix names
    /// it); paths relative to the project root.
    init(settings: Settings, topology: String, project: ScenarioProject) throws
    /// The command that runs such a cell alone, quoted for a shell.
    static func command(_ settings: Settings, kernel: String, topology: String) -> String
}

extension ScenarioPlugin {
    public var name: String { Self.name }
    public static var recipeName: String? { nil }
}

/// A scenario's settings for one matrix cell.
public protocol ScenarioSettings: Codable, Hashable, Sendable {
    /// The cell id's inputs after the kernel, the topology and the scenario's name, in an
    /// order that never changes, so a stored cell keeps its id.
    var identityInputs: [String] { get }
    /// The seed its runs draw from (the store's seed column); nil: it draws none.
    var randomSeed: UInt64? { get }
    /// The drivers whose orders name its cases (`a < b < c`), when its cases are orders:
    /// what an expectation rule about one order is checked against.
    var orderedDrivers: [String]? { get }
}

extension ScenarioSettings {
    public var randomSeed: UInt64? { nil }
    public var orderedDrivers: [String]? { nil }
}

/// A scenario's entry in a matrix file, as written.
public protocol ScenarioEntry: Decodable, Sendable {
    /// Every problem of it, each with the key it is about, so a matrix file reports all of
    /// them at their places; empty when it can run. The words are those of the checks the
    /// command line runs on its options (`DriverOrders.problem`, ...).
    var problems: [EntryProblem] { get }
}

/// What is wrong with one setting of a scenario entry: the key (and the list item) it is
/// about, and the problem with its fix in words.
public struct EntryProblem: Sendable, Hashable {
    /// As matrix files spell it (`stand_in`); nil: the entry as a whole.
    public var key: String?
    /// The item of a list value the problem is about.
    public var item: Int?
    public var message: String
    /// How to put it right, when the message does not say it already (the command line's
    /// checks say both in one sentence).
    public var fix: String

    public init(key: String?, item: Int? = nil, _ message: String, fix: String = "") {
        self.key = key
        self.item = item
        self.message = message
        self.fix = fix
    }

    /// One problem from a check that answers in words or nil.
    public static func at(_ key: String, _ message: String?) -> [EntryProblem] {
        message.map { [EntryProblem(key: key, $0)] } ?? []
    }
}

/// What a scenario's cells take from the project: relative paths are the project root's, so
/// a cell's id is the same in every checkout.
public struct ScenarioProject: Sendable {
    public let root: String
    /// The stand-in fsdev_dax's source folder, as the matrix names it.
    public let standInSource: String

    public init(root: String, standInSource: String) {
        self.root = root
        self.standInSource = standInSource
    }

    /// A path from the project root when relative.
    public func path(_ path: String) -> String { path.hasPrefix("/") ? path : root + "/" + path }

    /// A `modules:` entry as a scenario takes it: a path (a slash before its parameters) taken
    /// from the project root when relative; a bare word names an in-tree module and stays a
    /// name, never a file under the project.
    public func moduleArgument(_ entry: String) -> String {
        let path = ModuleSpec(parsing: entry).path
        guard path.contains("/"), !path.hasPrefix("/") else { return entry }
        return root + "/" + entry
    }
}

/// The variants of a cell by what fsdev_dax is on its kernel: the user's module, the kernel's
/// own, none (dropped from the drivers), or cxllab's stand-in once per automatch value. The one
/// rule every scenario's cells follow.
public struct FsdevVariant: Sendable, Hashable {
    public let label: String
    /// A stand-in module argument to add (`SOURCE:automatch=N`).
    public let standInModule: String?
    /// fsdev_dax is not there to order or load first.
    public let dropsFsdev: Bool

    /// A driver list and module arguments as this variant has them.
    public func applied(drivers: [String], modules: [String]) -> (drivers: [String], modules: [String]) {
        (dropsFsdev ? drivers.filter { $0 != DriverOrderScenario.fsdev } : drivers, modules + (standInModule.map { [$0] } ?? []))
    }

    /// What is wrong with a `stand_in:` list: the stand-in's automatch is a bool parameter,
    /// and each value is a cell of its own (twice would be one lab name for two cells).
    public static func standInProblems(_ values: [Int]?) -> [EntryProblem] {
        guard let values else { return [] }
        if values.isEmpty {
            return [EntryProblem(key: "stand_in", "stand_in names no automatch value", fix: "give [1, 0] (both), [1] (fsdev V9) or [0] (the fix), or leave it out")]
        }
        var problems: [EntryProblem] = []
        for (index, value) in values.enumerated() {
            if ![0, 1].contains(value) {
                problems.append(EntryProblem(key: "stand_in", item: index, "stand_in value \(value) is not one of the stand-in's automatch values",
                                             fix: "give 1 (binds on its own, as fsdev V9) or 0 (the fix)"))
            } else if values[..<index].contains(value) {
                problems.append(EntryProblem(key: "stand_in", item: index, "stand_in gives \(value) twice", fix: "remove one: each value is a cell of its own"))
            }
        }
        return problems
    }

    public static func variants(modules: [String], standIn: [Int]?, fsdev: FsdevAvailability, standInSource: String) -> [FsdevVariant] {
        let userFsdev = modules.contains { ($0.split(separator: ":").first ?? "").contains("fsdev") }
        switch (userFsdev, fsdev) {
        case (true, _): return [FsdevVariant(label: "user fsdev_dax", standInModule: nil, dropsFsdev: false)]
        case (false, .real): return [FsdevVariant(label: "real fsdev_dax", standInModule: nil, dropsFsdev: false)]
        case (false, .none): return [FsdevVariant(label: "no fsdev_dax", standInModule: nil, dropsFsdev: true)]
        case (false, .standInPossible):
            return (standIn ?? [0]).map {
                FsdevVariant(label: "stand-in automatch=\($0)", standInModule: "\(standInSource):automatch=\($0)", dropsFsdev: false)
            }
        }
    }
}

extension ScenarioPlugin {
    // Entry points the matrix and the store call through `any ScenarioPlugin.Type`.

    /// The entry type, for a reader that decodes it from its own document (the matrix file's
    /// YAML node, with its places).
    public static var entryType: any ScenarioEntry.Type { Entry.self }

    public static func decodeSettings(from decoder: any Decoder) throws -> any ScenarioSettings { try Settings(from: decoder) }

    public static func decodeReport(from decoder: any Decoder) throws -> any ScenarioReport { try Report(from: decoder) }

    public static var reportType: any ScenarioReport.Type { Report.self }

    /// The cells of an entry made by `decodeEntry`; none for another scenario's entry.
    public static func cells(of entry: any ScenarioEntry, fsdev: FsdevAvailability, standInSource: String) -> [(label: String, settings: any ScenarioSettings)] {
        guard let entry = entry as? Entry else { return [] }
        return variants(of: entry, fsdev: fsdev, standInSource: standInSource).map { ($0.label, $0.settings as any ScenarioSettings) }
    }

    /// The command for settings of this scenario; nil for another's.
    public static func command(for settings: any ScenarioSettings, kernel: String, topology: String) -> String? {
        (settings as? Settings).map { command($0, kernel: kernel, topology: topology) }
    }

    /// One cell with these settings in its own lab, by the cell runner.
    public static func runCell(_ settings: any ScenarioSettings, _ request: CellRequest) async -> CellOutcome {
        do {
            guard let settings = settings as? Settings else {
                throw OutcomeError.input("the cell's settings are not \(name)'s")
            }
            let scenario = try Self(settings: settings, topology: request.topology, project: request.project)
            let recipe = try recipeName.map { try ImageRecipe.load(path: request.project.path("images/\($0).yaml")) } ?? request.recipe
            var cell = ScenarioCell(kernel: request.pinned.exactReference, topology: request.project.path(request.topology), recipe: recipe,
                                    scenario: scenario, runID: request.runID, cellID: request.cellID, pinned: request.pinned)
            cell.keep = request.keep
            cell.resolved = request.kernel
            return await cell.run(context: request.context, progress: request.progress)
        } catch {
            return .couldNotRun(name, failure: OutcomeError(error), kernel: request.pinned, topology: request.topology)
        }
    }
}

/// What a matrix cell hands the cell runner besides its scenario's settings.
public struct CellRequest: Sendable {
    public var pinned: PinnedKernel
    /// The pinned kernel as the run resolved it; nil: resolved from the pin's exact reference.
    public var kernel: Kernel?
    /// As the matrix names it; taken from the project root when relative.
    public var topology: String
    /// The matrix's recipe (a scenario may name its own).
    public var recipe: ImageRecipe
    public var project: ScenarioProject
    public var runID: String
    public var cellID: String
    public var keep: Bool
    public var context: LabContext
    public var progress: @Sendable (String) -> Void

    public init(pinned: PinnedKernel, kernel: Kernel? = nil, topology: String, recipe: ImageRecipe, project: ScenarioProject, runID: String, cellID: String,
                keep: Bool = false, context: LabContext, progress: @escaping @Sendable (String) -> Void = { _ in }) {
        self.pinned = pinned
        self.kernel = kernel
        self.topology = topology
        self.recipe = recipe
        self.project = project
        self.runID = runID
        self.cellID = cellID
        self.keep = keep
        self.context = context
        self.progress = progress
    }
}
