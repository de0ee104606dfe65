import Foundation
@testable import Matrix
@testable import Scenarios
import Testing

/// A matrix resolves each kernel name once, at its start: a suite alias that moves while it
/// runs (Debian's daily refresh landing mid-run) changes nothing for that run.
@Suite struct KernelPinningTests {
    static var defaultMatrix: MatrixFile { get throws { try MatrixFile.load(path: LabSessionTests.root + "/matrices/default.yaml") } }

    @Test func anAliasThatMovesMidRunStillGivesEveryCellOneRelease() async throws {
        var matrix = try Self.defaultMatrix
        matrix.kernels = ["debian:bookworm-backports"]
        matrix.expect = []
        let archive = MovingArchive(releases: ["6.12.95+deb12-amd64", "6.12.107+deb12-amd64"])
        let plan = try await MatrixPlan.make(matrix, resolver: archive, standInSource: "images/modules/fsdev_dax")
        #expect(archive.count == 1)
        // Later look-ups see the alias moved, and the plan does not ask again.
        #expect(try await archive.kernel(.debianSuite("bookworm-backports"), progress: { _ in }).release == "6.12.107+deb12-amd64")
        #expect(plan.cells.count == 4)
        #expect(Set(plan.cells.map(\.pinned.release)) == ["6.12.95+deb12-amd64"])
        #expect(plan.cells.allSatisfy { $0.command.contains("--kernel debian:6.12.95+deb12-amd64") })
    }

    @Test func thePinnedReleaseIsPartOfTheCellIdButNotOfItsKey() async throws {
        var matrix = try Self.defaultMatrix
        matrix.kernels = ["debian:bookworm-backports"]
        matrix.expect = []
        let before = try await MatrixPlan.make(matrix, resolver: MovingArchive(releases: ["6.12.95+deb12-amd64"]), standInSource: "s")
        let after = try await MatrixPlan.make(matrix, resolver: MovingArchive(releases: ["6.12.107+deb12-amd64"]), standInSource: "s")
        #expect(Set(before.cells.map(\.id)).isDisjoint(with: after.cells.map(\.id)))
        #expect(before.cells.map(\.key) == after.cells.map(\.key))
        // diff pairs them by key and says the kernels differ.
        let outcome = Fixtures.outcome(drivers: ["device_dax"], fsdev: .real,
                                       rounds: [[OrderResult(order: ["device_dax"], observations: [], seconds: 1, error: nil)]])
        let lines = RunDiff.lines(before.cells.map { Fixtures.result($0, outcome) }, after.cells.map { Fixtures.result($0, outcome) })
        #expect(lines == ["KERNEL       debian:bookworm-backports: 6.12.95+deb12-amd64 in A, 6.12.107+deb12-amd64 in B; the runs tested different kernels"])
    }

    @Test func aResumedRunKeepsTheKernelsItStartedWith() async throws {
        var matrix = try Self.defaultMatrix
        matrix.kernels = ["debian:bookworm-backports"]
        matrix.expect = []
        let first = try await MatrixPlan.make(matrix, resolver: MovingArchive(releases: ["6.12.95+deb12-amd64"]), standInSource: "s")
        let stored = first.cells.map { Fixtures.result($0, Fixtures.outcome(drivers: ["device_dax"], fsdev: .real, rounds: [])) }
        let moved = MovingArchive(releases: ["6.12.107+deb12-amd64"])
        let resumed = try await MatrixPlan.make(matrix, resolver: moved, standInSource: "s", earlier: MatrixPlan.pins(of: stored))
        #expect(resumed.cells.map(\.id) == first.cells.map(\.id))
        #expect(Set(resumed.cells.map(\.pinned.release)) == ["6.12.95+deb12-amd64"])
    }

    @Test func shardsAreStableAcrossHostsThatPinnedDifferently() async throws {
        var matrix = try Self.defaultMatrix
        matrix.kernels = ["debian:bookworm-backports"]
        matrix.expect = []
        let one = try await MatrixPlan.make(matrix, resolver: MovingArchive(releases: ["6.12.95+deb12-amd64"]), standInSource: "s")
        let two = try await MatrixPlan.make(matrix, resolver: MovingArchive(releases: ["6.12.107+deb12-amd64"]), standInSource: "s")
        for index in 1...2 {
            #expect(MatrixExpansion.shard(one.cells, index: index, count: 2).map(\.key) == MatrixExpansion.shard(two.cells, index: index, count: 2).map(\.key))
        }
    }
}
