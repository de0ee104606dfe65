import Foundation
import HostSupport

/// What a developer waits for at the prompt: `cxllab up TOPOLOGY`, `cxllab exec NAME -- uname -r`
/// and `cxllab down NAME`, each a process of its own as typed, timed from its start to its exit.
public enum InteractiveBenchmark {
    public struct Figures: Codable, Sendable {
        public var topology: String
        public var up: [Double]
        public var exec: [Double]
        public var down: [Double]
        /// How each `up` started its lab ("booted" or "restored"), from `up --json`.
        public var upStarts: [String]

        public init(topology: String, up: [Double] = [], exec: [Double] = [], down: [Double] = [], upStarts: [String] = []) {
            self.topology = topology
            self.up = up
            self.exec = exec
            self.down = down
            self.upStarts = upStarts
        }
    }

    public static let upBootTarget = 5.0
    public static let upRestoreTarget = 2.0
    public static let execTarget = 0.3
    public static let downTarget = 0.5

    /// `runs` rounds of up, exec and down of a lab on `topology`, under `executable` (this
    /// cxllab) with `arguments` (the cache folder, the kernel) added to `up`. A failing command
    /// ends the measurement with its status; a lab left up by it is taken down.
    public static func measure(executable: String, topology: String, upArguments: [String], runs: Int,
                               progress: @escaping @Sendable (String) -> Void) async throws -> Figures {
        var figures = Figures(topology: (topology as NSString).lastPathComponent)
        let name = "bench-ued-\(UUID().uuidString.prefix(6).lowercased())"
        func command(_ arguments: [String]) async throws -> MeasuredProcess.Result {
            let result = try await MeasuredProcess.run(executable, arguments)
            guard result.status == 0 else {
                throw BenchError("`cxllab \(arguments.joined(separator: " "))` exited with status \(result.status)")
            }
            return result
        }
        for run in 1...max(1, runs) {
            progress("up, exec, down \(run)/\(runs): up")
            let up = try await command(["up", topology, "--name", name, "--json"] + upArguments)
            do {
                figures.up.append(up.seconds)
                figures.upStarts.append(Self.startKind(upJSON: up.standardOutput))
                progress("up, exec, down \(run)/\(runs): exec")
                let exec = try await command(["exec", name, "--", "uname", "-r"])
                guard !exec.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                    throw BenchError("`cxllab exec \(name) -- uname -r` printed nothing")
                }
                figures.exec.append(exec.seconds)
            } catch {
                _ = try? await MeasuredProcess.run(executable, ["down", name, "--force"])
                throw error
            }
            progress("up, exec, down \(run)/\(runs): down")
            figures.down.append(try await command(["down", name]).seconds)
        }
        return figures
    }

    /// "booted" or "restored" from what `up --json` printed; "booted" when it does not say.
    static func startKind(upJSON: String) -> String {
        struct Started: Decodable { var start: String? }
        return (try? JSONDecoder().decode(Started.self, from: Data(upJSON.utf8)))?.start ?? "booted"
    }
}
