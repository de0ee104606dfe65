import Foundation

/// What `cxllab bench` measured. Missing parts are in `failures`, with the reason.
public struct BenchFigures: Codable, Sendable {
    public struct Host: Codable, Sendable {
        public var cores = 0
        public var memoryGiB = 0
        public var libvirt = ""

        public init(cores: Int, memoryGiB: Int, libvirt: String) {
            self.cores = cores
            self.memoryGiB = memoryGiB
            self.libvirt = libvirt
        }

        public init() {}
    }

    public struct Cell: Codable, Sendable {
        public var kernel: String
        public var kernelRelease = ""
        public var topology: String
        public var verdict = ""
        public var requests = 0
        public var cxllabErrorReplies = 0
        public var directErrorReplies = 0
        public var directSeconds: [Double] = []
        public var cxllabSeconds: [Double] = []
        /// The guest work alone: the scenario's agent calls, run by QEMU directly and through cxllab.
        public var directGuestWork: [Double] = []
        public var cxllabGuestWork: [Double] = []
        public var orderSeconds: [Double] = []
        public var directMedian = 0.0
        public var cxllabMedian = 0.0
        public var ratio = 0.0

        public init(kernel: String, topology: String) {
            self.kernel = kernel
            self.topology = topology
        }

        public mutating func summarize() {
            directMedian = directSeconds.median
            cxllabMedian = cxllabSeconds.median
            ratio = cxllabMedian / directMedian
        }
    }

    public struct DomainStart: Codable, Sendable {
        public var topology: String
        public var seconds: [Double]
        public var median: Double

        public init(topology: String, seconds: [Double]) {
            self.topology = topology
            self.seconds = seconds
            median = seconds.median
        }
    }

    /// One `cxllab matrix` run: every lab booted (`savedMachines` false: cold), or restored
    /// from saved machines where one of the cell's machine was saved (warm).
    public struct MatrixRun: Codable, Sendable {
        public var jobs: Int
        public var savedMachines: Bool
        public var cells: Int
        /// Cells whose lab was restored from a saved machine.
        public var restored: Int
        public var seconds: Double
        public var peakResidentBytes: Int
        public var verdicts: [String: Int]
        public var cellsPerMinute: Double
        /// For a warm run: the seconds of the run before it that saved the machines.
        public var savingRunSeconds: Double?

        public init(jobs: Int, savedMachines: Bool = false, cells: Int, restored: Int = 0, seconds: Double, peakResidentBytes: Int,
                    verdicts: [String: Int]) {
            self.jobs = jobs
            self.savedMachines = savedMachines
            self.cells = cells
            self.restored = restored
            self.seconds = seconds
            self.peakResidentBytes = peakResidentBytes
            self.verdicts = verdicts
            cellsPerMinute = Double(cells) / seconds * 60
        }

        var label: String { "matrix, --jobs \(jobs), " + (savedMachines ? "warm (restoring)" : "cold (booting)") }
    }

    public struct Failure: Codable, Sendable {
        public var step: String
        public var reason: String

        public init(step: String, reason: String) {
            self.step = step
            self.reason = reason
        }
    }

    /// Race rounds on the NVDIMM machine: rounds over the seconds the rounds took (boot and
    /// device set-up apart), and the whole cell's wall time.
    public struct Race: Sendable, Codable {
        public var topology: String
        public var rounds: Int
        public var roundSeconds: Double
        public var cellSeconds: Double
        public var failures: Int
        public var roundsPerMinute: Double { roundSeconds > 0 ? Double(rounds) / roundSeconds * 60 : 0 }

        public init(topology: String, rounds: Int, roundSeconds: Double, cellSeconds: Double, failures: Int) {
            self.topology = topology
            self.rounds = rounds
            self.roundSeconds = roundSeconds
            self.cellSeconds = cellSeconds
            self.failures = failures
        }
    }

    public var race: Race?
    public var accelerator = ""
    public var acceleratorReason = ""
    public var host = Host()
    public var cell: Cell?
    public var image: ImageBenchmark.Figures?
    public var domainStart: DomainStart?
    public var labStart: LabStartBenchmark.Figures?
    public var interactive: InteractiveBenchmark.Figures?
    public var matrix: [MatrixRun] = []
    public var failures: [Failure] = []

    public init() {}

    public var speedUp: Double?
    public var peakResidentBytes: Int?

    /// Fills in the figures derived from the others.
    public mutating func summarize() {
        cell?.summarize()
        // Like against like: the cold runs, every lab booted.
        if let one = matrix.first(where: { $0.jobs == 1 && !$0.savedMachines }), let two = matrix.first(where: { $0.jobs == 2 && !$0.savedMachines }) {
            speedUp = one.seconds / two.seconds
        }
        peakResidentBytes = matrix.map(\.peakResidentBytes).max()
    }

    public static let ratioTarget = 1.10
    public static let speedUpTarget = 1.6
    public static let memoryTargetMiB = 64.0
    public static let raceRoundsTarget = 30.0
    /// The default matrix at --jobs 2, warm: at most this long, with at least this share of its cells restored.
    public static let warmMatrixTarget = 150.0
    public static let warmRestoredShare = 0.75

    public func table(matrixFile: String) -> String {
        var rows: [(String, String, String)] = []
        func seconds(_ value: Double) -> String { String(format: "%.2f s", value) }
        func verdict(_ ok: Bool) -> String { ok ? "met" : "MISSED" }
        if let cell {
            rows.append(("driver-order cell, QEMU directly", seconds(cell.directMedian), "median of \(cell.directSeconds.count)"))
            rows.append(("driver-order cell, through cxllab", seconds(cell.cxllabMedian), "median of \(cell.cxllabSeconds.count)"))
            rows.append(("  of which the scenario's guest work", String(format: "%.2f / %.2f s", cell.directGuestWork.median, cell.cxllabGuestWork.median),
                         "direct / cxllab (medians): the same agent calls, without and with libvirt"))
            rows.append(("  ratio cxllab / direct", String(format: "%.3f", cell.ratio),
                         String(format: "target <= %.2f: %@", Self.ratioTarget, verdict(cell.ratio <= Self.ratioTarget))))
            if !cell.orderSeconds.isEmpty {
                let sorted = cell.orderSeconds.sorted()
                rows.append(("time per driver order", seconds(cell.orderSeconds.median),
                             String(format: "median of %d, %.2f-%.2f s", sorted.count, sorted.first!, sorted.last!)))
            }
        }
        if let image {
            rows.append(("image build, cold", String(format: "%.3f s", image.coldSeconds), String(format: "%.1f MiB, %d files", Double(image.sizeBytes) / 1_048_576, image.files)))
            rows.append(("image build, warm", String(format: "%.3f s", image.warmMedianSeconds), "median of \(image.warmRuns)"))
        }
        if let domainStart {
            rows.append(("libvirt domain start (\(domainStart.topology))", seconds(domainStart.median), "median of \(domainStart.seconds.count)"))
        }
        if let labStart {
            rows.append(("lab start, booting (\(labStart.topology))", seconds(labStart.bootingMedian), "median of \(labStart.booting.count), to the agent settled"))
            rows.append(("lab start, restoring", seconds(labStart.restoringMedian),
                         String(format: "median of %d; %.1fx faster than booting", labStart.restoring.count, labStart.speedUp)))
        }
        if let interactive {
            /// A median against an upper bound, in seconds.
            func underTarget(_ what: String, _ values: [Double], _ target: Double) {
                rows.append((what, seconds(values.median), "median of \(values.count); target < \(target) s: " + verdict(values.median < target)))
            }
            underTarget("cxllab up, booting (\(interactive.topology))", interactive.upBooting, InteractiveBenchmark.upBootTarget)
            underTarget("cxllab up, restoring", interactive.upRestoring, InteractiveBenchmark.upRestoreTarget)
            underTarget("cxllab exec -- uname -r", interactive.exec, InteractiveBenchmark.execTarget)
            underTarget("cxllab down", interactive.down, InteractiveBenchmark.downTarget)
        }
        if let race {
            rows.append(("race rounds (\(race.topology))", String(format: "%.1f /min", race.roundsPerMinute),
                         String(format: "%d rounds in %.1f s (cell %.1f s, %d failed); target >= %.0f/min: %@", race.rounds, race.roundSeconds,
                                race.cellSeconds, race.failures, Self.raceRoundsTarget, verdict(race.roundsPerMinute >= Self.raceRoundsTarget))))
        }
        for run in matrix {
            var note = String(format: "%d cells, %.2f cells/min", run.cells, run.cellsPerMinute)
            if run.savedMachines {
                let met = run.seconds <= Self.warmMatrixTarget && Double(run.restored) >= Self.warmRestoredShare * Double(run.cells)
                note += String(format: ", %d restored; target <= %.0f s with >= %d restored: %@", run.restored, Self.warmMatrixTarget,
                               Int((Self.warmRestoredShare * Double(run.cells)).rounded(.up)), run.jobs == 2 ? verdict(met) : "(at --jobs 2)")
                if let saving = run.savingRunSeconds { note += String(format: " (the run that saved them: %.1f s)", saving) }
            }
            rows.append((run.label, String(format: "%.1f s", run.seconds), note))
        }
        if let speedUp {
            rows.append(("  speed-up --jobs 2 / --jobs 1, cold", String(format: "%.2fx", speedUp),
                         String(format: "target >= %.1fx: %@", Self.speedUpTarget, verdict(speedUp >= Self.speedUpTarget))))
        }
        if let peakResidentBytes {
            let mib = Double(peakResidentBytes) / 1_048_576
            rows.append(("cxllab peak memory during the matrix", String(format: "%.1f MiB", mib),
                         String(format: "target <= %.0f MiB: %@", Self.memoryTargetMiB, verdict(mib <= Self.memoryTargetMiB))))
        }
        for failure in failures {
            rows.append((failure.step, "FAILED", failure.reason.replacingOccurrences(of: "\n", with: " ")))
        }
        let width = (rows.map(\.0.count).max() ?? 10) + 2
        let figureWidth = (rows.map(\.1.count).max() ?? 6) + 2
        var lines = ["cxllab bench: every figure under \(accelerator) (\(acceleratorReason))",
                     "host: \(host.cores) cores, \(host.memoryGiB) GiB, libvirt \(host.libvirt)"
                        + (cell.map { "; cell: \($0.kernelRelease) on \($0.topology), \($0.requests) agent requests, verdict \($0.verdict)" } ?? ""),
                     "matrix: \(matrixFile)", ""]
        lines += rows.map { "  " + $0.0.padding(toLength: width, withPad: " ", startingAt: 0) + $0.1.padding(toLength: figureWidth, withPad: " ", startingAt: 0) + $0.2 }
        return lines.joined(separator: "\n")
    }
}

extension Array where Element == Double {
    /// The middle value (the upper middle of an even count); 0 when empty.
    public var median: Double { isEmpty ? 0 : sorted()[count / 2] }
}
