@testable import Agent
import AgentProtocol
import Foundation
import Testing

/// The agent's concurrent release with real processes on the host: starts follow the delays,
/// the programs overlap, and the deadline kills what is left.
@Suite struct ConcurrentReleaseTests {
    func release(_ operations: [ConcurrentOperation], timeout: Int = 10) throws -> ConcurrentReport {
        let call = AgentCalls.Concurrently(operations: operations, timeoutSeconds: timeout)
        let result = try ConcurrentRelease(files: GuestFiles(root: "/nonexistent"), call: call).run().get()
        return AgentCalls.Concurrently.reply(from: result)
    }

    @Test func startsFollowTheDelaysAndTheProgramsOverlap() throws {
        let report = try release([
            ConcurrentOperation(["sleep", "0.3"], delayMicroseconds: 150_000),
            ConcurrentOperation(["sleep", "0.3"], delayMicroseconds: 0),
            ConcurrentOperation(["sh", "-c", "echo out; echo err >&2; exit 3"], delayMicroseconds: 50_000),
        ])
        #expect(report.results.count == 3)
        #expect(!report.timedOut)
        let (late, early, shell) = (report.results[0], report.results[1], report.results[2])
        #expect(early.start < shell.start && shell.start < late.start)
        #expect(late.start >= 0.15 && late.start < 0.25, "started \(late.start) s after the release, asked 0.15 s")
        #expect(shell.start >= 0.05 && shell.start < 0.15)
        // Side by side: the second sleep started before the first ended.
        #expect(late.start < early.end)
        #expect(early.status == 0 && late.status == 0)
        #expect(shell.status == 3)
        #expect(shell.output.contains("out") && shell.output.contains("err"))
    }

    @Test func theDeadlineKillsWhatIsLeftWithItsChildren() throws {
        let started = Date()
        let report = try release([
            ConcurrentOperation(["sh", "-c", "sleep 30 & sleep 30; wait"], delayMicroseconds: 0),
            ConcurrentOperation(["true"], delayMicroseconds: 0),
            ConcurrentOperation(["true"], delayMicroseconds: 5_000_000),
        ], timeout: 1)
        #expect(Date().timeIntervalSince(started) < 5)
        #expect(report.timedOut)
        #expect(report.results[0].status == 124)
        #expect(report.results[1].status == 0)
        #expect(report.results[2].status == 125, "never started: the deadline came before its delay")
    }

    @Test func aMissingProgramIsAnExitNotACrash() throws {
        let report = try release([ConcurrentOperation(["cxllab-no-such-program"], delayMicroseconds: 0)])
        #expect(report.results[0].status == 127)
        #expect(report.results[0].output.contains("cxllab-no-such-program"))
    }

    @Test func onlyModprobeAndTheToolsMayRun() {
        func problem(_ arguments: [String], delay: Int = 0, bus: String? = nil) -> String? {
            AgentHandler.concurrencyProblem(AgentCalls.Concurrently(operations: [ConcurrentOperation(arguments, delayMicroseconds: delay)], traceBus: bus))
        }
        #expect(problem(["modprobe", "fsdev_dax"]) == nil)
        #expect(problem(["modprobe", "-b", "dax:t0"]) == nil)
        #expect(problem(["ndctl", "enable-namespace", "namespace0.0"]) == nil)
        #expect(problem(["modprobe", "-r", "device_dax"]) != nil)
        #expect(problem(["modprobe", "device_dax", "-r"]) != nil)
        #expect(problem(["modprobe", "../evil"]) != nil)
        #expect(problem(["sh", "-c", "reboot"]) != nil)
        #expect(problem(["modprobe", "kmem"], delay: 20_000_000) != nil)
        #expect(problem(["modprobe", "kmem"], bus: "pci") != nil)
        let many = AgentCalls.Concurrently(operations: Array(repeating: ConcurrentOperation(["modprobe", "kmem"], delayMicroseconds: 0), count: 65))
        #expect(AgentHandler.concurrencyProblem(many) != nil)
    }

    @Test func paramsRoundTrip() throws {
        let call = AgentCalls.Concurrently(operations: [ConcurrentOperation(["modprobe", "kmem"], delayMicroseconds: 1234)], timeoutSeconds: 7,
                                           traceBus: "dax", options: ["fsdev_dax": ["automatch=1"]])
        let decoded = try AgentCalls.Concurrently(params: call.params)
        #expect(decoded.operations == call.operations)
        #expect(decoded.timeoutSeconds == 7 && decoded.traceBus == "dax" && decoded.options == ["fsdev_dax": ["automatch=1"]])
    }

    @Test func theTraceGivesRegistrationsInTimeOrder() {
        let text = """
            # tracer: nop
            #
                    modprobe-199     [000] .N...    29.290395: drvreg: (bus_add_driver+0x4/0x240) name="device_dax" bus="dax"
                    modprobe-200     [000] .N...    29.250154: drvreg: (bus_add_driver+0x4/0x240) name="fsdev_dax" bus="dax"
                    modprobe-201     [001] .....    29.339803: drvreg: (bus_add_driver+0x4/0x240) name="kmem" bus="dax"
                    modprobe-201     [001] .....    29.339900: initcall_finish: func=dax_kmem_init+0x0/0xff0 [kmem] ret=0
            """
        let parsed = RegistrationTrace.parse(text)
        #expect(parsed.map(\.driver) == ["fsdev_dax", "device_dax", "kmem"])
        #expect(abs(parsed[0].time - 29.250154) < 1e-9)
    }
}
