import AgentProtocol
import Foundation
@testable import Matrix
@testable import Scenarios
import Testing
import Topology

/// The race scenario's pure parts: delays, judgement, the report's rates and orders, the
/// replay command, and races in matrix files.
@Suite struct RaceLogicTests {
    @Test func delaysAreSeededPerKindAndRound() {
        let a = RaceScenario.delays(count: 5, seed: 7, kind: .load, round: 3, maximum: 20_000)
        #expect(a == RaceScenario.delays(count: 5, seed: 7, kind: .load, round: 3, maximum: 20_000))
        #expect(a != RaceScenario.delays(count: 5, seed: 7, kind: .load, round: 4, maximum: 20_000))
        #expect(a != RaceScenario.delays(count: 5, seed: 7, kind: .create, round: 3, maximum: 20_000))
        #expect(a != RaceScenario.delays(count: 5, seed: 8, kind: .load, round: 3, maximum: 20_000))
        let many = (0..<200).flatMap { RaceScenario.delays(count: 3, seed: 1, kind: .load, round: $0, maximum: 20_000) }
        #expect(many.allSatisfy { (0...20_000).contains($0) })
        // Either of two operations goes first about as often.
        let firstWins = (0..<400).filter { round in
            let pair = RaceScenario.delays(count: 2, seed: 1, kind: .load, round: round, maximum: 20_000)
            return pair[0] < pair[1]
        }.count
        #expect((140...260).contains(firstWins))
    }

    static let devices = [
        ScenarioDevice(name: "dax0.0", role: .devdax, parent: "namespace0.0", source: "nvdimm"),
        ScenarioDevice(name: "dax0.1", role: .systemRAM, parent: "namespace0.1", source: "nvdimm"),
        ScenarioDevice(name: "dax2.0", role: .kmemType, parent: "region2", source: "cxl-ram"),
    ]

    @Test func judgesEveryDeviceAsProbedAutomatically() {
        let drivers = DriverOrderScenario.defaultDrivers
        let all = Set(Self.devices.map(\.name))
        let good = ["dax0.0": "device_dax", "dax0.1": "device_dax", "dax2.0": "kmem"]
        #expect(RaceJudge.judge(devices: Self.devices, present: all, bound: good, drivers: drivers, kind: .load).0 == .pass)
        var bad = good
        bad["dax0.0"] = "fsdev_dax"
        let (verdict, problems, bindings) = RaceJudge.judge(devices: Self.devices, present: all, bound: bad, drivers: drivers, kind: .create)
        #expect(verdict == .fail)
        #expect(problems == ["dax0.0: fsdev_dax bound on its own (race create); it must bind only when asked"])
        #expect(bindings.first { $0.device == "dax0.0" }?.expected == "device_dax")
        var unbound = good
        unbound["dax2.0"] = nil
        #expect(RaceJudge.judge(devices: Self.devices, present: all, bound: unbound, drivers: drivers, kind: .load).0 == .fail)
        #expect(RaceJudge.judge(devices: Self.devices, present: ["dax0.0", "dax0.1"], bound: good, drivers: drivers, kind: .create).0 == .error)
    }

    @Test func aFailingRoundReplaysAsTheOrderItRegisteredIn() {
        let drivers = DriverOrderScenario.defaultDrivers
        #expect(RaceJudge.replayOrder(registered: ["fsdev_dax", "device_dax", "kmem"], drivers: drivers) == ["fsdev_dax", "device_dax", "kmem"])
        // What did not register goes last; what is not in the set is left out.
        #expect(RaceJudge.replayOrder(registered: ["cxl_foo", "fsdev_dax"], drivers: drivers) == ["fsdev_dax", "device_dax", "kmem"])
        #expect(OrderSelection(argument: "fsdev_dax,device_dax,kmem") == .exact(["fsdev_dax", "device_dax", "kmem"]))
        #expect(DriverOrders.orders(drivers, selection: .exact(["kmem", "fsdev_dax", "device_dax"]), seed: 1, round: 0) == [["kmem", "fsdev_dax", "device_dax"]])
        #expect(DriverOrders.problem(orders: "fsdev_dax,device_dax", drivers: drivers)?.contains("nor an order of the drivers") == true)
        #expect(DriverOrders.problem(orders: "fsdev_dax,device_dax,kmem", drivers: drivers) == nil)
        #expect(OrderSelection(argument: "all") == .all && OrderSelection(argument: "3") == .sample(3))
        #expect(OrderSelection(argument: "0") == nil && OrderSelection(argument: "a b") == nil)
    }

    static func round(_ kind: RaceKind, _ index: Int, _ order: [String], _ verdict: Verdict) -> RaceRoundResult {
        RaceRoundResult(kind: kind, round: index, operations: [], results: [],
                        registered: order.enumerated().map { DriverRegistration(driver: $1, time: Double($0) / 100) },
                        registrationSource: "kprobe on bus_add_driver", bindings: [], verdict: verdict,
                        problem: verdict == .pass ? nil : "dax0.0: fsdev_dax bound on its own", evidence: [], seconds: 1, guestStoppedAnswering: false)
    }

    static func report(_ rounds: [RaceRoundResult]) -> RaceReport {
        RaceReport(drivers: DriverOrderScenario.defaultDrivers, fsdev: .standIn(automatch: true), devices: Array(devices.prefix(1)),
                   kinds: [.load, .coldplug], seed: 1, maximumDelayMicroseconds: 20_000, vcpus: 2, rounds: rounds,
                   reproBase: ["cxllab", "run", "topologies/nvdimm-single.yaml", "--kernel", "debian:6.12.95+deb12-amd64",
                               "--module", "images/modules/fsdev_dax:automatch=1", "--drivers", "device_dax,kmem,fsdev_dax"])
    }

    @Test func reportsRatesOrdersAndReplays() {
        let fsdevFirst = ["fsdev_dax", "device_dax", "kmem"]
        let deviceFirst = ["device_dax", "kmem", "fsdev_dax"]
        let report = Self.report([
            Self.round(.load, 0, fsdevFirst, .fail), Self.round(.coldplug, 0, deviceFirst, .pass),
            Self.round(.load, 1, deviceFirst, .pass), Self.round(.coldplug, 1, deviceFirst, .pass),
            Self.round(.load, 2, fsdevFirst, .fail), Self.round(.coldplug, 2, [], .error),
        ])
        let load = report.summaries[0]
        #expect(load.rate.failures == 2 && load.rate.trials == 3)
        #expect(load.orders == [RaceReport.OrderSeen(order: fsdevFirst, rounds: 2, failures: 2), RaceReport.OrderSeen(order: deviceFirst, rounds: 1, failures: 0)])
        let coldplug = report.summaries[1]
        #expect(coldplug.rate.failures == 0 && coldplug.rate.trials == 2 && coldplug.errors == 1)
        #expect(coldplug.rate.upper > 0.5, "two rounds prove little: the interval says so")
        #expect(report.cases.count == 6 && report.cases.filter(\.failed).count == 3)
        #expect(report.cases[0].name == RaceKind.load.caseName)
        let text = report.summary().joined(separator: "\n")
        #expect(text.contains("2 of 3 failed"))
        #expect(text.contains("replay fsdev_dax < device_dax < kmem in order: cxllab run topologies/nvdimm-single.yaml --kernel debian:6.12.95+deb12-amd64 "
                              + "--module images/modules/fsdev_dax:automatch=1 --drivers device_dax,kmem,fsdev_dax --orders fsdev_dax,device_dax,kmem"))
        #expect(!text.contains("replay device_dax"))
    }

    @Test func diffComparesRatesPerKindWithTheirIntervals() {
        let before = Self.report((0..<20).map { Self.round(.load, $0, ["device_dax"], $0 < 10 ? .fail : .pass) })
        let after = Self.report((0..<20).map { Self.round(.load, $0, ["device_dax"], .pass) })
        let lines = after.diffLines(label: "cell", earlier: before, verdicts: (.fail, .pass)) ?? []
        #expect(lines.first?.hasPrefix("FIXED") == true)
        #expect(lines.contains { $0.contains("load: 50% [30–70] -> 0% [0–16] failed (significant") })
        let close = Self.report((0..<20).map { Self.round(.load, $0, ["device_dax"], $0 < 9 ? .fail : .pass) })
        #expect((close.diffLines(label: "cell", earlier: before, verdicts: (.fail, .fail)) ?? []).contains { $0.contains("(within the 95% intervals)") })
    }

    @Test func aRaceNeedsTwoVCPUsAndGetsThem() throws {
        let text = "name: t\nmachine:\n  vcpus: 1\n  memory: 2G\nnvdimms:\n  - id: pmem0\n    size: 1G\n"
        let topology = try Topology.load(yaml: text, file: "t.yaml", capabilities: .qemu10)
        let raised = topology.withVCPUs(atLeast: 2)
        #expect(raised.machine.vcpus == 2 && raised.machine.numaNodes[0].cpus == [0, 1])
        #expect(topology.withVCPUs(atLeast: 1).machine.vcpus == 1)
        #expect(RaceScenario.Plan(base: .init(fsdev: .real, drivers: []), kernelReference: "k").minimumVCPUs == 2)
    }

    @Test func matrixFilesTakeRacesWithTheirOwnSettings() throws {
        func load(_ scenario: String) throws -> MatrixFile {
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("race-\(UUID().uuidString).yaml").path
            try "name: m\nkernels: [debian:bookworm-backports]\ntopologies: [topologies/nvdimm-single.yaml]\nscenarios:\n\(scenario)"
                .write(toFile: path, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(atPath: path) }
            return try MatrixFile.load(path: path)
        }
        let matrix = try load("  - name: race\n    kinds: [load, create]\n    rounds: 12\n    workers: 3\n")
        #expect(matrix.scenarios[0].race?.kinds == ["load", "create"] && matrix.scenarios[0].race?.rounds == 12)
        #expect(throws: MatrixError.self) { try load("  - name: race\n    kinds: [load, stampede]\n") }
        #expect(throws: MatrixError.self) { try load("  - name: race\n    orders: all\n") }
        #expect(throws: MatrixError.self) { try load("  - name: race\n    rounds: 0\n") }
        #expect(throws: MatrixError.self) { try load("  - name: driver-order\n    rounds: 3\n") }
        let error = #expect(throws: MatrixError.self) { try load("  - name: ndctl\n") }
        #expect(error?.description.contains("driver-order, race and ndctl-suite") == true)
    }
}

@Suite struct ShippedRaceMatrixTests {
    @Test func theRaceMatrixLoadsWithItsExpectation() throws {
        let matrix = try MatrixFile.load(path: LabSessionTests.root + "/matrices/race.yaml")
        #expect(matrix.scenarios.map(\.name) == ["race"])
        #expect(matrix.scenarios[0].race?.rounds == 10 && matrix.scenarios[0].race?.kinds == ["load", "coldplug", "create"])
        #expect(matrix.expect.count == 1 && matrix.expect[0].rate == 0.2...0.9)
    }
}
