@testable import Agent
import AgentProtocol
import Foundation
import Testing

/// `run_test` with real processes on the host: the runner is called directly, so /bin/sh may
/// run (the handler's folder rule is tested on its own).
@Suite struct TestRunnerTests {
    func run(_ script: String, environment: [String: String] = [:], in folder: String? = nil, timeout: Int = 20,
             tail: Int = AgentCalls.RunTest.defaultTailBytes) -> TestRun {
        TestRunner.run(AgentCalls.RunTest(command: ["/bin/sh", "-c", script], environment: environment, workingDirectory: folder,
                                          timeoutSeconds: timeout, tailBytes: tail))
    }

    @Test func theExitStatusPassesThrough() {
        let passed = run("echo ok")
        #expect(passed.status == 0 && !passed.timedOut && !passed.leftoverKilled)
        #expect(passed.output == "ok\n" && passed.outputBytes == 3)
        #expect(passed.seconds >= 0 && passed.seconds < 5)
        #expect(run("exit 3").status == 3)
        // meson's "skipped".
        #expect(run("exit 77").status == 77)
        #expect(run("kill -TERM $$").status == 128 + SIGTERM)
    }

    @Test func onlyTheLastBytesOfTheOutputAreKept() {
        // 100 KiB in 1 KiB lines (1023 characters and a newline), the last one marked.
        let result = run(#"i=0; while [ $i -lt 99 ]; do printf '%01023d\n' $i; i=$((i+1)); done; printf '%01019d end\n' 0"#, tail: 1000)
        #expect(result.status == 0)
        #expect(result.outputBytes == 100 * 1024)
        #expect(result.output.utf8.count <= 1000)
        #expect(result.output.hasSuffix("0 end\n"))
    }

    @Test func aCutInsideACharacterStartsAtTheNextOne() {
        var tail = OutputTail(limit: 4)
        tail.append(ArraySlice("aé€".utf8))  // a, 2 bytes, 3 bytes: the last 4 bytes cut é in two
        #expect(tail.text == "€")
        #expect(tail.total == 6)
    }

    @Test func stdoutAndStderrAreOneStreamInTheOrderWritten() {
        let result = run("echo one; echo two >&2; echo three; echo four >&2")
        #expect(result.output == "one\ntwo\nthree\nfour\n")
    }

    @Test func aChildLeftBehindIsKilledAndDoesNotHoldTheCall() throws {
        let started = Date()
        let result = run("sleep 100 & echo started")
        #expect(Date().timeIntervalSince(started) < 5)
        #expect(result.status == 0 && !result.timedOut)
        #expect(result.leftoverKilled)
        #expect(result.output == "started\n")
    }

    @Test func aChildThatEndsFirstIsNoLeftover() {
        let result = run("sleep 0.1 & wait; echo done")
        #expect(result.status == 0 && !result.leftoverKilled)
    }

    @Test func theDeadlineKillsTheProgramWithItsGroup() {
        let started = Date()
        let result = TestRunner.run(AgentCalls.RunTest(command: ["/bin/sleep", "30"], timeoutSeconds: 1))
        #expect(Date().timeIntervalSince(started) < 5)
        #expect(result.status == 124 && result.timedOut)
        #expect(result.seconds >= 1 && result.seconds < 5)
        #expect(result.output.hasSuffix("cxllab-agent: killed after 1 s\n"))
        let chatty = run("echo before; sleep 30 & sleep 30", timeout: 1)
        #expect(chatty.status == 124 && chatty.output == "before\ncxllab-agent: killed after 1 s\n")
    }

    @Test func theEnvironmentAndWorkingDirectoryApply() throws {
        let folder = FileManager.default.temporaryDirectory.path + "/cxllab-run-test-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let physical = URL(fileURLWithPath: folder).resolvingSymlinksInPath().path
        let result = run(#"echo "$NDCTL|$LANG|$HOME|$(pwd -P)""#, environment: ["NDCTL": "/usr/lib/cxllab/ndctl/ndctl", "LANG": "C.UTF-8"], in: folder)
        #expect(result.output == "/usr/lib/cxllab/ndctl/ndctl|C.UTF-8|/root|\(physical)\n")
        let environment = TestRunner.environment(adding: ["PATH": "/usr/lib/cxllab/bin:/usr/bin", "A": "1"])
        #expect(environment == ["A=1", "HOME=/root", "LANG=C", "PATH=/usr/lib/cxllab/bin:/usr/bin"])
    }

    @Test func whatCannotStartIsStatus127NamingWhy() {
        let missing = TestRunner.run(AgentCalls.RunTest(command: ["/nonexistent/cxllab-test"], timeoutSeconds: 5))
        #expect(missing.status == 127 && !missing.timedOut)
        #expect(missing.output.contains("/nonexistent/cxllab-test") && missing.output.contains("No such file"))
        let nowhere = run("true", in: "/nonexistent-cxllab-folder")
        #expect(nowhere.status == 127 && nowhere.output.contains("working directory /nonexistent-cxllab-folder"))
    }
}

/// The handler's side of `run_test`: what it refuses before anything runs.
@Suite struct RunTestHandlerTests {
    func call(_ params: [String: JSONValue], shell: Bool = false) -> Result<JSONValue, AgentError> {
        let handler = AgentHandler(files: GuestFiles(root: "/nonexistent"), shellEnabled: shell)
        _ = handler.reply(to: Array(AgentRequest(id: 0, method: .hello, params: ["version": .int(AgentProtocol.version)]).line.utf8.dropLast()))
        guard case .reply(_, let result) = handler.reply(to: Array(AgentRequest(id: 1, method: .runTest, params: params).line.utf8.dropLast())) else {
            return .failure(AgentError(.malformed, "not a reply"))
        }
        return result
    }

    func refusal(_ call: AgentCalls.RunTest, shell: Bool = false) -> AgentError? {
        if case .failure(let error) = self.call(call.params, shell: shell) { return error }
        return nil
    }

    @Test func programsOutsideTheTestFolderAreRefusedEvenWithTheShellFlag() throws {
        for shell in [false, true] {
            let error = try #require(refusal(AgentCalls.RunTest(command: ["/bin/sh", "-c", "true"], timeoutSeconds: 5), shell: shell))
            #expect(error.code == .notPermitted)
            #expect(error.message.contains("/bin/sh") && error.message.contains("/usr/lib/cxllab/"))
        }
        let folderItself = try #require(refusal(AgentCalls.RunTest(command: ["/usr/lib/cxllab/"], timeoutSeconds: 5)))
        #expect(folderItself.code == .notPermitted)
    }

    @Test func theLoaderMayNotBringInOtherCode() throws {
        let preload = try #require(refusal(AgentCalls.RunTest(command: ["/usr/lib/cxllab/ndctl/test/libndctl"],
                                                              environment: ["LD_PRELOAD": "/tmp/evil.so"], timeoutSeconds: 5)))
        #expect(preload.code == .notPermitted && preload.message.contains("LD_PRELOAD"))
        #expect(AgentHandler.runTestRefusal(AgentCalls.RunTest(command: ["/usr/lib/cxllab/ndctl/test/libndctl"],
                                                               environment: ["LD_LIBRARY_PATH": "/usr/lib/cxllab/ndctl/lib"], timeoutSeconds: 5)) == nil)
        #expect(AgentHandler.runTestRefusal(AgentCalls.RunTest(command: ["/usr/lib/cxllab/x"], environment: ["LD_LIBRARY_PATH": "/usr/lib/cxllab/../../tmp"],
                                                               timeoutSeconds: 5)) != nil)
    }

    @Test func aTestProgramRunsWithoutTheShellFlag() throws {
        // Nothing is installed under /usr/lib/cxllab on a build host: the program is allowed,
        // then cannot start (status 127), which shows the refusal did not come first.
        let result = TestRun(json: try call(AgentCalls.RunTest(command: ["/usr/lib/cxllab/cxllab-no-such-test"], timeoutSeconds: 5).params).get())
        #expect(result.status == 127 && result.output.contains("/usr/lib/cxllab/cxllab-no-such-test"))
    }

    @Test(arguments: [
        (["command": ["sh", "-c", "true"], "timeout": 5], "absolute path"),
        (["command": ["/usr/lib/cxllab/../../bin/sh"], "timeout": 5], "'..'"),
        (["command": [], "timeout": 5], "command"),
        (["command": ["/usr/lib/cxllab/t", 3], "timeout": 5], "command"),
        (["command": ["/usr/lib/cxllab/t"]], "timeout"),
        (["command": ["/usr/lib/cxllab/t"], "timeout": 0], "timeout"),
        (["command": ["/usr/lib/cxllab/t"], "timeout": 86401], "timeout"),
        (["command": ["/usr/lib/cxllab/t"], "timeout": 5, "tail_bytes": 2_000_000], "tail_bytes"),
        (["command": ["/usr/lib/cxllab/t"], "timeout": 5, "tail_bytes": -1], "tail_bytes"),
        (["command": ["/usr/lib/cxllab/t"], "timeout": 5, "environment": ["1BAD": "x"]], "environment name '1BAD'"),
        (["command": ["/usr/lib/cxllab/t"], "timeout": 5, "environment": ["A-B": "x"]], "environment name 'A-B'"),
        (["command": ["/usr/lib/cxllab/t"], "timeout": 5, "environment": ["A": 1]], "environment value of A"),
        (["command": ["/usr/lib/cxllab/t"], "timeout": 5, "environment": "A=1"], "environment"),
        (["command": ["/usr/lib/cxllab/t"], "timeout": 5, "working_directory": "tmp"], "working_directory"),
        (["command": ["/usr/lib/cxllab/t"], "timeout": 5, "working_directory": 7], "working_directory"),
    ] as [([String: JSONValue], String)])
    func malformedParamsAreBadParamsNamingTheField(params: [String: JSONValue], field: String) throws {
        let error = try #require(call(params).failureValue)
        #expect(error.code == .badParams)
        #expect(error.message.contains(field), "\(error.message)")
    }

    @Test func paramsAndReplyRoundTrip() throws {
        let call = AgentCalls.RunTest(command: ["/usr/lib/cxllab/ndctl/test/dax.sh", "--verbose"],
                                      environment: ["NDCTL": "/usr/lib/cxllab/ndctl/ndctl", "TEST_PATH": "/usr/lib/cxllab/ndctl/test"],
                                      workingDirectory: "/tmp", timeoutSeconds: 600, tailBytes: 4096)
        #expect(call.method == .runTest && call.method.rawValue == "run_test")
        #expect(try AgentCalls.RunTest(params: call.params) == call)
        // Through the wire format too.
        let request = try AgentRequest.parse(Array(AgentRequest(id: 5, method: call.method, params: call.params).line.utf8.dropLast())).get()
        #expect(try AgentCalls.RunTest(params: request.params) == call)
        let plain = AgentCalls.RunTest(command: ["/usr/lib/cxllab/t"], timeoutSeconds: 30)
        let decoded = try AgentCalls.RunTest(params: plain.params)
        #expect(decoded == plain && decoded.tailBytes == 16384 && decoded.workingDirectory == nil && decoded.environment.isEmpty)

        let reply = TestRun(status: 124, seconds: 1.25, timedOut: true, output: "line\ncxllab-agent: killed after 1 s\n", outputBytes: 123_456,
                            leftoverKilled: true)
        #expect(AgentCalls.RunTest.reply(from: try JSONValue(parsing: reply.json.serialized)) == reply)
        let coded = try JSONDecoder().decode(TestRun.self, from: JSONEncoder().encode(reply))
        #expect(coded == reply)
    }
}

extension Result {
    var failureValue: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
