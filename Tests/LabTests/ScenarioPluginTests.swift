import Foundation
import HostSupport
import Kernels
import Testing
@testable import Matrix
@testable import Scenarios

/// Scenarios as plug-ins: cells made of common axes and a scenario's own settings keep the ids,
/// the stored form and the words they had when every scenario's settings were one struct.
@Suite struct ScenarioPluginTests {
    /// A cell id as it was computed before scenarios had their own settings.
    static func legacyID(_ inputs: [String], pinned: PinnedKernel) -> String {
        String(FileDigest.sha256(of: Data((inputs + [pinned.release, pinned.imageSHA256]).joined(separator: "\n").utf8)).prefix(12))
    }

    @Test func cellIdsAreThoseStoredRunsHave() {
        let pinned = Fixtures.pinned("debian:k")
        let driverOrder = MatrixCell(DriverOrderScenario.self, kernel: "debian:k", pinned: pinned, topology: "t.yaml", variant: "v",
                                     settings: .init(drivers: ["device_dax", "kmem"], modules: ["m:automatch=1"], orders: "3", seed: 7, repeats: 2))
        #expect(driverOrder.id == Self.legacyID(["debian:k", "t.yaml", "driver-order", "device_dax,kmem", "m:automatch=1", "3", "7", "2"], pinned: pinned))
        let race = MatrixCell(RaceScenario.self, kernel: "debian:k", pinned: pinned, topology: "t.yaml", variant: "v",
                              settings: .init(drivers: ["device_dax"], modules: [], seed: 1, repeats: 40, kinds: nil, workers: 3))
        #expect(race.id == Self.legacyID(["debian:k", "t.yaml", "race", "device_dax", "", "all", "1", "40", "", "3"], pinned: pinned))
        let suite = MatrixCell(NdctlSuiteScenario.self, kernel: "debian:k", pinned: pinned, topology: "t.yaml", variant: "suite",
                               settings: .init(modules: [], suites: ["dax"], suiteTests: nil, loadFirst: ["fsdev_dax"], timeoutMultiplier: 2))
        #expect(suite.id == Self.legacyID(["debian:k", "t.yaml", "ndctl-suite", "", "", "all", "1", "1", "dax", "", "fsdev_dax", "timeout x2"], pinned: pinned))
    }

    /// A cell stored with its settings beside the axes (every run before this change) reads
    /// back as the same cell; a new one stores them under `settings`.
    @Test func storedCellsOfEitherFormReadBack() throws {
        let pinned = try JSONEncoder().encode(Fixtures.pinned("debian:k"))
        let legacy = """
            {"kernel":"debian:k","pinned":\(String(decoding: pinned, as: UTF8.self)),"topology":"t.yaml","scenario":"race",
             "drivers":["device_dax","kmem"],"modules":[],"orders":"all","seed":5,"repeats":12,"variant":"real fsdev_dax",
             "kinds":["load"],"workers":2}
            """
        let cell = try JSONDecoder().decode(MatrixCell.self, from: Data(legacy.utf8))
        let race = try #require(cell.settings(as: RaceScenario.Settings.self))
        #expect(race.repeats == 12 && race.kinds == ["load"] && race.workers == 2 && race.seed == 5)
        let again = try JSONDecoder().decode(MatrixCell.self, from: try JSONEncoder().encode(cell))
        #expect(again == cell && again.id == cell.id)
        let stored = try #require(String(data: try JSONEncoder().encode(cell), encoding: .utf8))
        #expect(stored.contains("\"settings\":{"))
        #expect(cell.command.hasPrefix("cxllab race t.yaml --kernel debian:"))
    }

    @Test func aStoredCellOfAnUnknownScenarioSaysSo() throws {
        let pinned = String(decoding: try JSONEncoder().encode(Fixtures.pinned("debian:k")), as: UTF8.self)
        let text = "{\"kernel\":\"k\",\"pinned\":\(pinned),\"topology\":\"t\",\"scenario\":\"stampede\",\"variant\":\"v\",\"settings\":{}}"
        let error = #expect(throws: DecodingError.self) { try JSONDecoder().decode(MatrixCell.self, from: Data(text.utf8)) }
        #expect("\(String(describing: error))".contains("scenario 'stampede', which this cxllab does not have"))
    }

    /// Details keep the form results were always stored in, `{"driverOrder": {"_0": ...}}`.
    @Test func detailsKeepTheirStoredForm() throws {
        let outcome = Fixtures.outcome(drivers: ["device_dax"], rounds: [])
        let data = try JSONEncoder().encode(outcome.detail)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(Array(object.keys) == ["driverOrder"])
        #expect((object["driverOrder"] as? [String: Any])?.keys.contains("_0") == true)
        let back = try JSONDecoder().decode(ScenarioDetail.self, from: data)
        #expect(back.report(as: DriverOrderReport.self)?.drivers == ["device_dax"])
        let none = try JSONDecoder().decode(ScenarioDetail.self, from: Data("{\"none\":{}}".utf8))
        #expect(none.report == nil)
        #expect(String(decoding: try JSONEncoder().encode(ScenarioDetail.none), as: UTF8.self) == "{\"none\":{}}")
    }

    /// The registry names each scenario once, with its report's key and its own matrix keys.
    @Test func theRegistryKnowsEachScenarioOnce() {
        let names = ScenarioRegistry.plugins.map { $0.name }
        #expect(names == ["driver-order", "race", "ndctl-suite"])
        #expect(Set(ScenarioRegistry.plugins.map { $0.reportType.detailKey }).count == names.count)
        for plugin in ScenarioRegistry.plugins {
            #expect(ScenarioRegistry.plugin(named: plugin.name)?.name == plugin.name)
            #expect(!plugin.entryKeys.contains("name"))
        }
    }

    /// A key of another scenario is refused with the scenario it belongs to, the keys this one
    /// takes, at the key's line and column.
    @Test func aKeyOfAnotherScenarioIsRefusedAtItsPlace() throws {
        let path = NSTemporaryDirectory() + "plugin-\(UUID().uuidString.prefix(6)).yaml"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "name: m\nkernels: [debian:bookworm]\ntopologies: [t.yaml]\nscenarios:\n  - name: driver-order\n  - name: race\n    orders: all\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        let error = try #require(throws: MatrixError.self) { try MatrixFile.load(path: path) }
        #expect(error.message == "\(path):7:5: scenario race: `orders` belongs to the driver-order scenario; "
                + "fix: remove it, or give it to a scenario that takes it; race takes drivers, modules, stand_in, kinds, rounds, workers and seed")
    }
}
