import Foundation
import HostSupport
import LabRuntime

/// How long a lab takes to come up through the cell runner, to its settled state (agent
/// answering, CXL devices bound): booted each time (`LibvirtBackend`) against restored from a
/// saved machine (`SavedMachineBackend`, its copy made once before the timed starts). Each lab
/// is torn down at once; the time is what `LabStart` records, as a cell's result says it.
public enum LabStartBenchmark {
    public struct Figures: Codable, Sendable {
        public var topology: String
        public var booting: [Double]
        public var restoring: [Double]
        public var bootingMedian: Double { booting.median }
        public var restoringMedian: Double { restoring.median }
        /// Booting over restoring: how many restores one boot's time buys.
        public var speedUp: Double { restoringMedian > 0 ? bootingMedian / restoringMedian : 0 }

        public init(topology: String, booting: [Double], restoring: [Double]) {
            self.topology = topology
            self.booting = booting
            self.restoring = restoring
        }
    }

    public static func measure(_ prepared: PreparedLab, runs: Int, context: LabContext,
                               progress: @escaping @Sendable (String) -> Void) async throws -> Figures {
        if let reason = SavedMachineBackend.unsaveable(prepared.topology) {
            throw BenchError("no restore to measure on \(prepared.topology.name): \(reason); give a topology without CXL devices")
        }
        let tag = UUID().uuidString.prefix(6).lowercased()
        /// One start and teardown on `backend`: how the lab came up.
        func start(_ backend: any LabBackend, _ label: String) async throws -> LabStart {
            let runner = CellRunner(context: context, backend: backend)
            let identity = CellRunner.Identity(name: "bench-start-\(tag)-\(label)", runID: "bench", cellID: "lab-start")
            return try await runner.run(prepared, as: identity) { _ in }.start
        }
        var booting: [Double] = []
        var restoring: [Double] = []
        progress("lab start: saving the machine the restores come from")
        _ = try await start(SavedMachineBackend(), "prime")
        for run in 1...max(1, runs) {
            progress("lab start \(run)/\(runs): booting")
            booting.append(try await start(LibvirtBackend(), "boot\(run)").seconds)
            progress("lab start \(run)/\(runs): restoring")
            let restored = try await start(SavedMachineBackend(), "restore\(run)")
            guard case .restored(let seconds) = restored else {
                throw BenchError("a lab meant to restore from its saved machine \(restored.description) instead (every saved copy in use?)")
            }
            restoring.append(seconds)
        }
        return Figures(topology: prepared.topology.name, booting: booting, restoring: restoring)
    }
}
