import Foundation
@testable import Matrix
@testable import Scenarios
import Testing
import XML

/// Expected results as data: the `expect` section of matrix files, checked like topologies,
/// and every kind of deviation a run can show.
@Suite struct ExpectationTests {
    static let header = """
        name: t
        kernels: [debian:bookworm-backports]
        topologies: [topologies/nvdimm-single.yaml, topologies/cxl-pmem-single.yaml]
        scenarios: [{name: driver-order, stand_in: [1, 0]}]

        """

    /// A matrix file with these expect rules, loaded and planned on stand-in kernels.
    static func plan(_ expect: String) async throws -> MatrixPlan {
        let path = FileManager.default.temporaryDirectory.path + "/cxllab-expect-\(UUID().uuidString.prefix(6)).yaml"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try (header + expect).write(toFile: path, atomically: true, encoding: .utf8)
        return try await MatrixPlan.make(try MatrixFile.load(path: path), resolver: MovingArchive(releases: ["6.12.95+deb12-amd64"]),
                                         standInSource: "images/modules/fsdev_dax")
    }

    static func loadError(_ expect: String) async -> String {
        do {
            _ = try await plan(expect)
            return ""
        } catch {
            return "\(error)"
        }
    }

    static let v9Rule = """
        expect:
          - variant: stand-in automatch=1
            topology: nvdimm-single.yaml
            verdict: fail
            failing_when: fsdev_dax before device_dax
            reason: V9 binds on its own
            reference: https://example.org/v9
          - topology: cxl-pmem-single.yaml
            verdict: n/a
            reason: 6.12 refuses CXL regions in a VM

        """

    /// Three drivers, every order; the orders in `failing` fail.
    static func orders(failing: Set<[String]>, drivers: [String] = ["device_dax", "kmem", "fsdev_dax"]) -> [OrderResult] {
        DriverOrders.all(drivers).map { order in
            OrderResult(order: order, observations: failing.contains(order) ? [Fixtures.violation()] : [], seconds: 1, error: nil)
        }
    }

    static let fsdevFirst = Set(DriverOrders.all(["device_dax", "kmem", "fsdev_dax"]).filter {
        $0.firstIndex(of: "fsdev_dax")! < $0.firstIndex(of: "device_dax")!
    })

    func cell(_ plan: MatrixPlan, _ words: String) throws -> MatrixCell {
        try #require(MatrixExpansion.filter(plan.cells, words).first, "no cell with \(words)")
    }

    // MARK: - The file

    @Test func badRulesAreAllReportedWithTheirPlaceAndFix() async {
        let said = await Self.loadError("""
            expect:
              - variant: stand-in automatch=1
                verdcit: fail
                reason: typo
              - verdict: broken
                reason: x
              - verdict: fail
                failing_when: fsdev_dax after device_dax
                reason: x
              - verdict: pass

            """)
        #expect(said.contains(":7:5: unknown key `verdcit` in an expect rule; fix: did you mean `verdict`?"), "\(said)")
        #expect(said.contains(":9:14: verdict 'broken' is not one of pass, fail, n/a"), "\(said)")
        #expect(said.contains(":12:19: failing_when should read `DRIVER before DRIVER`"), "\(said)")
        #expect(said.contains(":14:5: the rule has no reason"), "\(said)")
    }

    @Test func aRuleThatMatchesNoCellIsAnError() async {
        let said = await Self.loadError("""
            expect:
              - kernel: debian:trixie-backports
                verdict: fail
                reason: not in this matrix

            """)
        #expect(said.contains(":6:5: this rule matches no cell of the matrix"), "\(said)")
    }

    @Test func equallySpecificRulesThatDisagreeAreAnError() async {
        let said = await Self.loadError("""
            expect:
              - topology: nvdimm-single.yaml
                verdict: pass
                reason: fine
              - variant: stand-in automatch=1
                verdict: fail
                reason: V9

            """)
        #expect(said.contains(":9:5: contradicts the rule at"), "\(said)")
        #expect(said.contains(":6:5"), "\(said)")
    }

    @Test func theMoreSpecificRuleHolds() async throws {
        let plan = try await Self.plan("""
            expect:
              - topology: nvdimm-single.yaml
                verdict: pass
                reason: the fix passes
              - topology: nvdimm-single.yaml
                variant: stand-in automatch=1
                verdict: fail
                reason: V9
              - topology: cxl-pmem-single.yaml
                verdict: n/a
                reason: refused

            """)
        let v9 = try cell(plan, "nvdimm automatch=1")
        #expect(plan.expectations.cellRules(for: v9).map(\.verdict) == [.fail])
        let fixed = try cell(plan, "nvdimm automatch=0")
        #expect(plan.expectations.cellRules(for: fixed).map(\.verdict) == [.pass])
    }

    @Test func theDefaultMatrixStatesWhatWasMeasured() throws {
        let matrix = try MatrixFile.load(path: LabSessionTests.root + "/matrices/default.yaml")
        let cells = MatrixExpansion.cells(matrix, kernels: Fixtures.defaultKernels, standInSource: "images/modules/fsdev_dax")
        let expectations = Expectations(matrix.expect)
        try expectations.validate(against: cells)
        // Every cell as measured: V9 fails in every order (the late load catches it), on the
        // NVDIMM and the CXL machine alike; everything else passes. No CXL cell is n/a.
        #expect(cells.contains { $0.topology.contains("cxl") })
        let results = cells.map { cell -> CellResult in
            let failing = cell.variant == "stand-in automatch=1" ? Set(DriverOrders.all(cell.drivers)) : []
            return Fixtures.result(cell, Fixtures.outcome(drivers: cell.drivers, rounds: [Self.orders(failing: failing, drivers: cell.drivers)]))
        }
        let judgements = expectations.judge(results)
        let deviating = judgements.filter { !$0.asExpected }.map(\.message)
        #expect(deviating.isEmpty, "\(deviating)")
        #expect(judgements.filter(\.expectedFailure).count == 2)
        #expect(Expectations.exitStatus(judgements, expectedCells: cells.count) == 0)
        // A CXL cell not applicable on 6.12 or 7.3 would now be a deviation.
        let cxl = try #require(cells.first { $0.topology.contains("cxl") && $0.kernel == "debian:trixie-backports" })
        let refused = expectations.judge(Fixtures.result(cxl, Fixtures.outcome(drivers: cxl.drivers, devices: [], rounds: [],
                                                                                notApplicable: ["CXL: Failed to synchronize CPU cache state"])))
        #expect(!refused.asExpected)
    }

    // MARK: - Deviations

    @Test func aCellThatNewlyFailsIsAnUnexpectedFailure() async throws {
        let plan = try await Self.plan(Self.v9Rule)
        let fixed = try cell(plan, "nvdimm automatch=0")
        let judgement = plan.expectations.judge(Fixtures.result(fixed, Fixtures.outcome(drivers: fixed.drivers,
                                                                 rounds: [Self.orders(failing: [["device_dax", "kmem", "fsdev_dax"]])])))
        #expect(judgement.deviations == [.unexpectedFailure])
        #expect(judgement.message.contains("UNEXPECTED FAILURE") && judgement.message.contains(fixed.label), "\(judgement.message)")
        #expect(judgement.message.contains("no expect rule matches it"))
        #expect(Expectations.exitStatus([judgement], expectedCells: 1) == 1)
    }

    @Test func aCellThatNewlyPassesIsAnUnexpectedPass() async throws {
        let plan = try await Self.plan(Self.v9Rule)
        let v9 = try cell(plan, "nvdimm automatch=1")
        let judgement = plan.expectations.judge(Fixtures.result(v9, Fixtures.outcome(drivers: v9.drivers, rounds: [Self.orders(failing: [])])))
        #expect(judgement.deviations == [.unexpectedPass])
        #expect(judgement.message.contains(v9.label) && judgement.message.contains(":6:5") && judgement.message.contains("V9 binds on its own"),
                "\(judgement.message)")
        #expect(Expectations.exitStatus([judgement], expectedCells: 1) == 1)
    }

    @Test func otherFailingOrdersAreAChange() async throws {
        let plan = try await Self.plan(Self.v9Rule)
        let v9 = try cell(plan, "nvdimm automatch=1")
        // The bug now shows in every order (as a late load would show it), not only fsdev-first.
        let every = Set(DriverOrders.all(v9.drivers))
        let judgement = plan.expectations.judge(Fixtures.result(v9, Fixtures.outcome(drivers: v9.drivers, rounds: [Self.orders(failing: every)])))
        guard case .changedFailingCases(let expected, let actual)? = judgement.deviations.first else {
            Issue.record("expected changed failing orders, got \(judgement.deviations)")
            return
        }
        #expect(expected.count == 3 && actual.count == 6)
        #expect(judgement.message.contains("FAILING ORDERS CHANGED") && judgement.message.contains(v9.label) && judgement.message.contains(":6:5"))
        #expect(Expectations.exitStatus([judgement], expectedCells: 1) == 1)
        // Exactly the expected orders: as expected, a known failure.
        let asMeasured = plan.expectations.judge(Fixtures.result(v9, Fixtures.outcome(drivers: v9.drivers, rounds: [Self.orders(failing: Self.fsdevFirst)])))
        #expect(asMeasured.expectedFailure)
    }

    @Test func aRateOutsideItsBandIsADeviation() async throws {
        let plan = try await Self.plan("""
            expect:
              - variant: stand-in automatch=1
                topology: nvdimm-single.yaml
                verdict: fail
                rate: [0.25, 0.75]
                reason: a race that V9 loses about half the time
              - topology: cxl-pmem-single.yaml
                verdict: n/a
                reason: refused

            """)
        let v9 = try cell(plan, "nvdimm automatch=1")
        let half = Fixtures.outcome(drivers: v9.drivers, rounds: [Self.orders(failing: Self.fsdevFirst)])
        #expect(plan.expectations.judge(Fixtures.result(v9, half)).asExpected)
        let most = Fixtures.outcome(drivers: v9.drivers, rounds: [Self.orders(failing: Set(DriverOrders.all(v9.drivers).dropLast()))])
        let judgement = plan.expectations.judge(Fixtures.result(v9, most))
        #expect(judgement.deviations.contains { if case .rateOutsideBand = $0 { true } else { false } }, "\(judgement.deviations)")
        #expect(judgement.message.contains("RATE OUTSIDE BAND: 83%, expected 25%–75%") && judgement.message.contains(v9.label), "\(judgement.message)")
        #expect(Expectations.exitStatus([judgement], expectedCells: 1) == 1)
    }

    @Test func aKernelThatStartsCommittingRegionsIsAChange() async throws {
        let plan = try await Self.plan(Self.v9Rule)
        let cxl = try cell(plan, "cxl-pmem automatch=0")
        let judgement = plan.expectations.judge(Fixtures.result(cxl, Fixtures.outcome(drivers: cxl.drivers, rounds: [Self.orders(failing: [])])))
        #expect(judgement.deviations == [.unexpectedVerdict(expected: .notApplicable, actual: .pass)])
    }

    @Test func aCellThatCouldNotRunExitsTwo() async throws {
        let plan = try await Self.plan(Self.v9Rule)
        let fixed = try cell(plan, "nvdimm automatch=0")
        let judgement = plan.expectations.judge(Fixtures.result(fixed, .couldNotRun("driver-order", failure: OutcomeError(layer: .guest, code: "boot-failed", message: "no agent"))))
        #expect(judgement.couldNotRun && judgement.message.contains("COULD NOT RUN"))
        #expect(Expectations.exitStatus([judgement], expectedCells: 1) == 2)
    }

    // MARK: - Reports

    @Test func junitSkipsKnownFailuresAndFailsDeviations() async throws {
        let plan = try await Self.plan(Self.v9Rule)
        let v9 = try cell(plan, "nvdimm automatch=1"), fixed = try cell(plan, "nvdimm automatch=0")
        let results = [
            Fixtures.result(v9, Fixtures.outcome(drivers: v9.drivers, rounds: [Self.orders(failing: Self.fsdevFirst)])),
            Fixtures.result(fixed, Fixtures.outcome(drivers: fixed.drivers, rounds: [Self.orders(failing: [["kmem", "device_dax", "fsdev_dax"]])])),
        ]
        let document = try XMLDocument(parsing: try JUnitReport.xml(results, name: "t", expectations: plan.expectations))
        #expect(try document.strings("//testcase/skipped[starts-with(@message, 'expected failure')]").count == 3)
        #expect(try document.strings("//testcase[@name='expectation']/failure/@message").first?.contains("UNEXPECTED FAILURE") == true)
        #expect(try document.string("/testsuites/@failures") == "2")  // the order that failed, and the expectation
        let html = HTMLReport.html(results, title: "t", expectations: plan.expectations)
        #expect(html.contains("<h2>Deviations</h2>") && html.contains("class=known"))
    }
}
