import AgentProtocol
import Foundation
import LabRuntime

/// One round of a race as it happened: what was released when, the order the drivers
/// registered in, what every device bound to, and the verdict.
public struct RaceRoundResult: Sendable, Codable, Hashable {
    public struct Binding: Sendable, Codable, Hashable {
        public let device: String
        public let driver: String?
        public let expected: String?
    }

    public let kind: RaceKind
    public let round: Int
    public let operations: [ConcurrentOperation]
    public let results: [ConcurrentResult]
    /// The drivers in the order they registered on the dax bus, with their times (seconds
    /// from the release).
    public let registered: [DriverRegistration]
    /// Where `registered` comes from: "kprobe on bus_add_driver", or "module list" (load order
    /// only) when the kernel could not be traced.
    public let registrationSource: String
    public let bindings: [Binding]
    public let verdict: Verdict
    public let problem: String?
    public let evidence: [String]
    public let seconds: Double
    /// The agent did not answer in time: the guest is hung, no later round can run.
    public let guestStoppedAnswering: Bool

    public var order: [String] { registered.map(\.driver) }
}

/// A round, step by step, on a guest.
enum RaceRound {
    struct Runner<G: GuestAgent> {
        let plan: DriverOrderScenario.Plan
        let devices: [ScenarioDevice]
        let guest: GuestOperations<G>
        /// Each device's MODALIAS (`dax:t0`), read once.
        let aliases: [String]
        let workers: Int
        let maximumDelay: Int
        let timeout: Int

        static func make(plan: DriverOrderScenario.Plan, devices: [ScenarioDevice], guest: GuestOperations<G>, workers: Int?,
                         maximumDelay: Int, timeout: Int) async throws -> Runner {
            var aliases: [String] = []
            for device in devices {
                let text = try await guest.guest.send(AgentCalls.SysfsRead(path: "/sys/bus/dax/devices/\(device.name)/modalias"))
                aliases.append(text.trimmingCharacters(in: .whitespacesAndNewlines))
            }
            return Runner(plan: plan, devices: devices, guest: guest, aliases: aliases, workers: max(1, workers ?? devices.count),
                          maximumDelay: maximumDelay, timeout: timeout)
        }

        /// Namespaces `create` disables and re-enables: those of devdax namespaces (a CXL RAM
        /// region's kmem-type device stays; its memory would have to go first).
        var namespaces: [String] { devices.filter { $0.role != .kmemType && $0.parent.hasPrefix("namespace") }.map(\.parent) }

        func operations(_ kind: RaceKind) -> [[String]] {
            let loads = plan.drivers.map { ["modprobe", $0] }
            switch kind {
            case .load: return loads
            case .coldplug: return (0..<workers).map { ["modprobe", "-b", aliases[$0 % aliases.count]] }
            case .create: return loads + namespaces.map { ["ndctl", "enable-namespace", $0] }
            }
        }

        func run(_ kind: RaceKind, round: Int, delays: (Int) -> [Int]) async -> RaceRoundResult {
            let clock = ContinuousClock()
            let start = clock.now
            let commands = operations(kind)
            let planned = zip(commands, delays(commands.count)).map { ConcurrentOperation($0, delayMicroseconds: $1) }
            func failed(_ problem: String, stopped: Bool = false) -> RaceRoundResult {
                RaceRoundResult(kind: kind, round: round, operations: planned, results: [], registered: [], registrationSource: "none",
                                bindings: [], verdict: .error, problem: problem, evidence: [], seconds: (clock.now - start).seconds,
                                guestStoppedAnswering: stopped)
            }
            do {
                try await reset(disabling: kind == .create ? namespaces : [])
                let mark = try await guest.mark()
                let report = try await guest.guest.send(AgentCalls.Concurrently(operations: planned, timeoutSeconds: timeout, traceBus: "dax",
                                                                                options: plan.modprobeOptions),
                                                        timeout: .seconds(timeout + 20))
                var registered = report.registrations
                var source = "kprobe on bus_add_driver"
                if registered.isEmpty {
                    // No trace: the module list gives the load order, not the registration order.
                    let loaded = try await guest.guest.send(AgentCalls.Info()).modules.map(\.name).reversed()
                    registered = loaded.filter { plan.drivers.contains($0) }.map { DriverRegistration(driver: $0, time: .nan) }
                    source = "module list" + (report.traceProblem.map { " (no trace: \($0))" } ?? "")
                }
                let bound = try await guest.daxDrivers()
                let present = Set(try await guest.daxDevices().map(\.name))
                var (verdict, problems, bindings) = RaceJudge.judge(devices: devices, present: present, bound: bound, drivers: plan.drivers, kind: kind)
                var problem = problems.first
                let broken = zip(planned, report.results).filter { $0.1.status != 0 }
                if verdict == .pass, let (operation, result) = broken.first {
                    verdict = .error
                    problem = "`\(operation.commandLine)` exited \(result.status): " + result.output.trimmingCharacters(in: .whitespacesAndNewlines)
                }
                var evidence: [String] = []
                if verdict != .pass {
                    evidence = RaceJudge.timeline(planned, report.results, registered: registered, source: source) + problems
                    evidence += try await guest.dmesg(since: mark).suffix(8).map { "| " + $0 }
                }
                return RaceRoundResult(kind: kind, round: round, operations: planned, results: report.results, registered: registered,
                                       registrationSource: source, bindings: bindings, verdict: verdict, problem: problem, evidence: evidence,
                                       seconds: (clock.now - start).seconds, guestStoppedAnswering: false)
            } catch let failure as StepFailure {
                return failed(failure.message)
            } catch AgentConnectionError.agent(let refusal) {
                return failed(refusal.message)
            } catch let failure as AgentConnectionError {
                // Timed out, closed, or no heartbeat: nothing more can run in this guest.
                return failed("\(failure)", stopped: true)
            } catch {
                return failed("\(error)")
            }
        }

        /// The known state: every device unbound (system-ram memory offlined first), the
        /// drivers unloaded, and for `create` the namespaces disabled (their devices gone).
        func reset(disabling namespaces: [String]) async throws {
            try await DriverOrderScenario.reset(drivers: plan.drivers, guest: guest)
            for namespace in namespaces {
                try await guest.must("ndctl", ["disable-namespace", namespace])
            }
        }
    }
}

/// The invariants of a race round and the story of it, as pure functions.
enum RaceJudge {
    /// Every device judged as probed automatically (fsdev_dax never; devdax on device_dax,
    /// kmem-type on kmem); a device that is gone is an error.
    static func judge(devices: [ScenarioDevice], present: Set<String>, bound: [String: String], drivers: [String], kind: RaceKind)
        -> (Verdict, [String], [RaceRoundResult.Binding]) {
        var verdict = Verdict.pass
        var problems: [String] = []
        var bindings: [RaceRoundResult.Binding] = []
        for device in devices {
            let expected = DriverOrderScenario.expected(device, step: .load, drivers: drivers)
            bindings.append(RaceRoundResult.Binding(device: device.name, driver: bound[device.name], expected: expected))
            guard present.contains(device.name) else {
                if verdict == .pass { verdict = .error }
                problems.append("\(device.name) did not come back after the round")
                continue
            }
            let (judged, problem) = DriverOrderScenario.judge(step: .load, expected: expected, actual: bound[device.name], refusal: nil)
            if judged == .fail {
                verdict = .fail
                // Judged as driver-order judges its load step; said as the race it was.
                problems.append("\(device.name): " + (problem ?? "wrong driver").replacingOccurrences(of: "(load)", with: "(race \(kind.rawValue))"))
            }
        }
        return (verdict, problems, bindings)
    }

    /// What happened when, in milliseconds from the release.
    static func timeline(_ operations: [ConcurrentOperation], _ results: [ConcurrentResult], registered: [DriverRegistration], source: String) -> [String] {
        func ms(_ seconds: Double) -> String { seconds.isNaN ? "?" : String(format: "%+.1f ms", seconds * 1000) }
        var lines = zip(operations, results).map { operation, result in
            "\(operation.commandLine): delay \(String(format: "%.1f", Double(operation.delayMicroseconds) / 1000)) ms, ran \(ms(result.start)) to \(ms(result.end)), exit \(result.status)"
        }
        lines.append("registered (\(source)): " + (registered.isEmpty ? "nothing" : registered.map { "\($0.driver) \(ms($0.time))" }.joined(separator: ", ")))
        return lines
    }

    /// The sequential order that replays a round: its registration order of the set, then
    /// whatever of the set did not register.
    static func replayOrder(registered: [String], drivers: [String]) -> [String] {
        var order: [String] = []
        for driver in registered where drivers.contains(driver) && !order.contains(driver) { order.append(driver) }
        return order + drivers.filter { !order.contains($0) }
    }
}
