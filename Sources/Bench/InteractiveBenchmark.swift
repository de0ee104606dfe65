import Foundation
import HostSupport

/// What a developer waits for at the prompt: `cxllab up TOPOLOGY`, `cxllab exec NAME -- uname -r`
/// and `cxllab down NAME`, each a process of its own as typed, timed from its start to its exit.
public enum InteractiveBenchmark {
    public struct Figures: Codable, Sendable {
        public var topology: String
        /// `up` with saved machines off (`CXLLAB_SAVED_MACHINES=0`): a boot each time.
        public var upBooting: [Double]
        /// `up` restoring the machine an untimed first `up` saved.
        public var upRestoring: [Double]
        public var exec: [Double]
        public var down: [Double]

        public init(topology: String, upBooting: [Double] = [], upRestoring: [Double] = [], exec: [Double] = [], down: [Double] = []) {
            self.topology = topology
            self.upBooting = upBooting
            self.upRestoring = upRestoring
            self.exec = exec
            self.down = down
        }
    }

    public static let upBootTarget = 5.0
    public static let upRestoreTarget = 2.0
    public static let execTarget = 0.3
    public static let downTarget = 0.5

    /// Rounds of up, exec and down of a lab on `topology`, under `executable` (this cxllab) with
    /// `arguments` (the cache folder, the kernel) added to `up`: `runs` restoring (after an
    /// untimed round that saves the machine when the store lacks it), and two booting. A
    /// failing command ends the measurement with its status; a lab left up by it is taken down.
    public static func measure(executable: String, topology: String, upArguments: [String], runs: Int,
                               progress: @escaping @Sendable (String) -> Void) async throws -> Figures {
        var figures = Figures(topology: (topology as NSString).lastPathComponent)
        let name = "bench-ued-\(UUID().uuidString.prefix(6).lowercased())"
        func command(_ arguments: [String], savedMachines: Bool = true) async throws -> MeasuredProcess.Result {
            let result = try await MeasuredProcess.run(executable, arguments, environment: ["CXLLAB_SAVED_MACHINES": savedMachines ? "1" : "0"])
            guard result.status == 0 else {
                throw BenchError("`cxllab \(arguments.joined(separator: " "))` exited with status \(result.status)")
            }
            return result
        }
        let rounds: [(label: String, savedMachines: Bool, timed: Bool)] = [("saving the machine", true, false)]
            + (1...max(1, runs)).map { ("restoring \($0)/\(runs)", true, true) } + (1...2).map { ("booting \($0)/2", false, true) }
        for round in rounds {
            progress("up, exec, down, \(round.label): up")
            let up = try await command(["up", topology, "--name", name, "--json"] + upArguments, savedMachines: round.savedMachines)
            do {
                let how = Self.startKind(upJSON: up.standardOutput)
                guard how == (round.savedMachines && round.timed ? "restored" : how) else {
                    throw BenchError("an `up` meant to restore \(how) instead (every saved copy in use?)")
                }
                if round.timed, round.savedMachines { figures.upRestoring.append(up.seconds) }
                if round.timed, !round.savedMachines { figures.upBooting.append(up.seconds) }
                progress("up, exec, down, \(round.label): exec")
                let exec = try await command(["exec", name, "--", "uname", "-r"])
                guard !exec.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                    throw BenchError("`cxllab exec \(name) -- uname -r` printed nothing")
                }
                if round.timed { figures.exec.append(exec.seconds) }
            } catch {
                _ = try? await MeasuredProcess.run(executable, ["down", name, "--force"])
                throw error
            }
            progress("up, exec, down, \(round.label): down")
            let down = try await command(["down", name])
            if round.timed { figures.down.append(down.seconds) }
        }
        return figures
    }

    /// "booted" or "restored" from what `up --json` printed; "booted" when it does not say.
    static func startKind(upJSON: String) -> String {
        struct Started: Decodable { var start: String? }
        return (try? JSONDecoder().decode(Started.self, from: Data(upJSON.utf8)))?.start ?? "booted"
    }
}
