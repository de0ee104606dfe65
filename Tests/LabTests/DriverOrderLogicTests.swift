import Foundation
import Synchronization
@testable import LabRuntime
@testable import Scenarios
@testable import Matrix
@testable import Bench
import Testing

/// Orders drawn on another thread.
final class DrawnOrders: Sendable {
    let orders = Mutex<[[String]]?>(nil)
}

@Suite struct DriverOrderLogicTests {
    @Test func allOrdersOfThreeDrivers() {
        let orders = DriverOrders.all(["device_dax", "kmem", "fsdev_dax"])
        #expect(orders.count == 6)
        #expect(Set(orders.map { $0.joined(separator: ",") }).count == 6)
        #expect(orders.first == ["device_dax", "kmem", "fsdev_dax"])
        #expect(DriverOrders.all(["a"]) == [["a"]])
    }

    @Test func samplesAreSeededAndDistinctPerRound() {
        let drivers = ["a", "b", "c", "d"]
        let first = DriverOrders.orders(drivers, selection: .sample(5), seed: 42, round: 0)
        #expect(first == DriverOrders.orders(drivers, selection: .sample(5), seed: 42, round: 0))
        #expect(first.count == 5)
        #expect(Set(first.map { $0.joined() }).count == 5)
        #expect(first != DriverOrders.orders(drivers, selection: .sample(5), seed: 42, round: 1))
        #expect(DriverOrders.orders(drivers, selection: .sample(100), seed: 1, round: 0).count == 24)
        #expect(OrderSelection(argument: "all") == .all)
        #expect(OrderSelection(argument: "3") == .sample(3))
        #expect(OrderSelection(argument: "0") == nil)
    }

    /// Ten drivers have 3,628,800 orders: sampling one must not list them all, and listing
    /// them all is refused with the fix.
    @Test func manyDriversAreSampledNotListed() {
        let drivers = (0..<10).map { "d\($0)" }
        let clock = ContinuousClock()
        let start = clock.now
        let sample = DriverOrders.orders(drivers, selection: .sample(3), seed: 7, round: 0)
        #expect(clock.now - start < .seconds(1))
        #expect(sample.count == 3 && Set(sample).count == 3 && sample.allSatisfy { Set($0) == Set(drivers) })
        #expect(sample == DriverOrders.orders(drivers, selection: .sample(3), seed: 7, round: 0))
        #expect(DriverOrders.problem(orders: "all", drivers: drivers)?.contains("sample some with orders: N") == true)
        #expect(DriverOrders.problem(orders: "1", drivers: drivers) == nil)
        #expect(DriverOrders.problem(orders: "zero", drivers: ["a"])?.contains("neither 'all', a positive number of orders to sample, nor an order of the drivers a") == true)
        #expect(DriverOrders.problem(orders: "-3", drivers: ["a"])?.contains("neither 'all'") == true)
        #expect(DriverOrders.problem(orders: "all", drivers: ["a", "a"])?.contains("twice") == true)
    }

    /// Drawing a sample is bounded for any number of drivers and any N: many drivers draw
    /// fast, N past what a sample holds is capped (and refused with the fix), and a list that
    /// names a driver twice, fewer distinct orders than N, still ends.
    @Test func samplingIsBoundedForAnyDriverCount() throws {
        let clock = ContinuousClock()
        for size in [25, 200] {
            let drivers = (0..<size).map { "d\($0)" }
            let start = clock.now
            let sample = DriverOrders.orders(drivers, selection: .sample(50), seed: 3, round: 0)
            #expect(clock.now - start < .seconds(2), "\(size) drivers")
            #expect(sample.count == 50 && Set(sample).count == 50 && sample.allSatisfy { Set($0) == Set(drivers) })
            #expect(sample == DriverOrders.orders(drivers, selection: .sample(50), seed: 3, round: 0))
        }
        let drivers = (0..<25).map { "d\($0)" }
        let start = clock.now
        let huge = DriverOrders.orders(drivers, selection: .sample(200_000), seed: 3, round: 0)
        #expect(huge.count == DriverOrders.maximumSample)
        #expect(clock.now - start < .seconds(20))
        #expect(DriverOrders.problem(orders: "200000", drivers: drivers)?.contains("give orders: 40320 or fewer") == true)
        #expect(DriverOrders.problem(orders: "40320", drivers: drivers) == nil)
        // Nine names, eight of them the same: nine distinct orders, not 9! of them. Drawn on
        // another thread, so that an endless draw fails the test instead of hanging it.
        let repeated = Array(repeating: "a", count: 8) + ["b"]
        let ended = DispatchSemaphore(value: 0)
        let result = DrawnOrders()
        DispatchQueue.global().async {
            let orders = DriverOrders.orders(repeated, selection: .sample(20), seed: 1, round: 0)
            result.orders.withLock { $0 = orders }
            ended.signal()
        }
        #expect(ended.wait(timeout: .now() + 10) == .success, "the draw did not end")
        let drawn = result.orders.withLock { $0 }
        #expect(drawn.map { Set($0).count } == 9, "the draw did not end")
    }

    /// Names typed by people become domain and folder names: nothing that climbs out of the
    /// labs folder, nothing that is an option.
    @Test func labNamesAreCheckedBeforeTheyBecomePaths() throws {
        for bad in ["foo/../../victim", "../x", ".hidden", "-rf", "a b", "", String(repeating: "x", count: 65), "é"] {
            #expect(throws: LabError.self) { try LabNames.validated(bad) }
        }
        #expect(try LabNames.validated("cxllab-foo/") == "cxllab-foo")
        #expect(try LabNames.validated("lab-1.2_b") == "cxllab-lab-1.2_b")
    }

    /// Reference values of the Wilson score interval (z = 1.96).
    @Test func wilsonInterval() {
        let none = FailureRate(failures: 0, trials: 10)
        #expect(none.rate == 0)
        #expect(none.lower == 0)
        #expect(abs(none.upper - 0.2775) < 0.001)
        let half = FailureRate(failures: 5, trials: 10)
        #expect(abs(half.lower - 0.2366) < 0.001)
        #expect(abs(half.upper - 0.7634) < 0.001)
        let all = FailureRate(failures: 20, trials: 20)
        #expect(abs(all.lower - 0.8389) < 0.001)
        #expect(all.upper == 1)
        #expect(FailureRate(failures: 0, trials: 0).upper == 1)
    }

    @Test func invariants() {
        // fsdev on its own is the V9 bug, whatever was expected.
        #expect(DriverOrderScenario.judge(step: .load, expected: "device_dax", actual: "fsdev_dax", refusal: nil).0 == .fail)
        #expect(DriverOrderScenario.judge(step: .recreate, expected: nil, actual: "fsdev_dax", refusal: nil).0 == .fail)
        // Asked for, fsdev is right.
        #expect(DriverOrderScenario.judge(step: .explicitFsdev, expected: "fsdev_dax", actual: "fsdev_dax", refusal: nil).0 == .pass)
        let refused = DriverOrderScenario.judge(step: .explicitFsdev, expected: "fsdev_dax", actual: nil, refusal: "No such device")
        #expect(refused.0 == .fail)
        #expect(refused.1?.contains("No such device") == true)
        #expect(DriverOrderScenario.judge(step: .systemRAM, expected: "kmem", actual: "device_dax", refusal: nil).0 == .fail)
        #expect(DriverOrderScenario.judge(step: .driversProbe, expected: "device_dax", actual: "device_dax", refusal: nil).0 == .pass)
        #expect(DriverOrderScenario.judge(step: .driversProbe, expected: nil, actual: nil, refusal: nil).0 == .pass)
    }

    @Test func moduleSpecs() {
        let standIn = ModuleSpec(parsing: "images/modules/fsdev_dax:automatch=1")
        #expect(standIn.path == "images/modules/fsdev_dax")
        #expect(standIn.parameters == ["automatch=1"])
        let several = ModuleSpec(parsing: "/tmp/x.ko:a=1,b=two")
        #expect(several.parameters == ["a=1", "b=two"])
        #expect(ModuleSpec(parsing: "/tmp/x.ko").parameters.isEmpty)
        #expect(ModuleSpec(parsing: "/tmp/x.ko").path == "/tmp/x.ko")
    }

    @Test func verdictsAndExitStatus() {
        let none = Fixtures.outcome(drivers: ["device_dax"], fsdev: .real, devices: [], rounds: [])
        #expect(none.verdict == .error && none.exitStatus == 2)
        let refused = Fixtures.outcome(drivers: ["device_dax"], fsdev: .real, devices: [], rounds: [], notApplicable: ["CXL: the kernel refused"])
        #expect(refused.verdict == .notApplicable && refused.exitStatus == 2)
        let clean = [OrderResult(order: ["device_dax"], observations: [], seconds: 1, error: nil)]
        #expect(Fixtures.outcome(drivers: ["device_dax"], fsdev: .real, rounds: [clean]).exitStatus == 0)
        let bad = [OrderResult(order: ["device_dax"], observations: [Fixtures.violation()], seconds: 1, error: nil)]
        let failing = Fixtures.outcome(drivers: ["device_dax"], fsdev: .real, rounds: [clean, bad])
        #expect(failing.exitStatus == 1)
        #expect(failing.failureRate.failures == 1)
        #expect(failing.failureRate.trials == 2)
        #expect(failing.cases.map(\.round) == [0, 1])
        let stuck = [OrderResult(order: ["device_dax"], observations: [], seconds: 1, error: "could not unload device_dax")]
        let erred = Fixtures.outcome(drivers: ["device_dax"], fsdev: .real, rounds: [stuck])
        #expect(erred.cases.first?.verdict == .error && erred.verdict == .fail)
    }
}

/// A matrix file's `repeat` has the bound `--repeat` has, said with the file and the scenario.
@Suite struct MatrixFileRepeatTests {
    func load(repeat value: Int) throws -> MatrixFile {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("cxllab-repeat-\(UUID().uuidString.prefix(6)).yaml").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try """
            name: r
            kernels: [debian:bookworm-backports]
            topologies: [topologies/nvdimm-single.yaml]
            scenarios:
              - name: driver-order
                repeat: \(value)
            """.write(toFile: path, atomically: true, encoding: .utf8)
        return try MatrixFile.load(path: path)
    }

    @Test func repeatOutsideItsRangeIsRefusedWithThePlace() throws {
        for bad in [0, -5, 1001, 1_000_000_000] {
            do {
                _ = try load(repeat: bad)
                Issue.record("repeat \(bad) was accepted")
            } catch let error as MatrixError {
                #expect(error.message.contains("scenario driver-order: repeat \(bad) is out of range: give 1 to 1000"), "\(error.message)")
            }
        }
        #expect((try load(repeat: 1000).scenarios.first?.entry as? DriverOrderScenario.Entry)?.repeat == 1000)
    }
}
