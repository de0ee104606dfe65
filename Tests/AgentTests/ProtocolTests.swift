@testable import Agent
import AgentProtocol
import Foundation
import HostSupport
import Testing

@Suite struct JSONValueTests {
    @Test(arguments: [
        #"{"a":[1,2.5,"x",true,false,null],"b":{"c":"d"}}"#,
        #"[]"#, #"{}"#, #""é\n\t\"\\ \u0001""#, #"-12"#, #"1e3"#, #"[[[[]]]]"#,
    ])
    func roundTrips(text: String) throws {
        let value = try JSONValue(parsing: text)
        #expect(try JSONValue(parsing: value.serialized) == value)
    }

    @Test func keysAreSortedSoOutputIsStable() {
        let value: JSONValue = ["b": 1, "a": 2]
        #expect(value.serialized == #"{"a":2,"b":1}"#)
    }

    @Test func escapesAndSurrogates() throws {
        #expect(try JSONValue(parsing: #""\ud83d\ude00""#) == .string("😀"))
        #expect(throws: JSONParseError.self) { try JSONValue(parsing: #""\ud83d""#) }
        #expect(JSONValue.string("a\u{1}b").serialized == #""a\u0001b""#)
    }

    @Test(arguments: ["", "{", "[1,]", "{\"a\"}", "tru", "\"abc", "01x", "{\"a\":1}}", "nan", "[1 2]"])
    func rejectsMalformed(text: String) {
        #expect(throws: JSONParseError.self) { try JSONValue(parsing: text) }
    }

    @Test func refusesDeepNesting() {
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        let error = #expect(throws: JSONParseError.self) { try JSONValue(parsing: deep) }
        #expect(error?.reason.contains("nested") == true)
    }
}

@Suite struct FramingTests {
    @Test func framesSplitOnNewlinesAcrossChunks() {
        var reader = FrameReader(limit: 100)
        #expect(reader.feed(Array("{\"a\":".utf8)) == [])
        #expect(reader.feed(Array("1}\n\n{}\n".utf8)) == [.frame(Array("{\"a\":1}".utf8)), .frame(Array("{}".utf8))])
    }

    @Test func oversizedFramesAreDroppedAndReportedOnce() {
        var reader = FrameReader(limit: 10)
        let items = reader.feed(Array(String(repeating: "x", count: 50).utf8) + [0x0A] + Array("{}\n".utf8))
        #expect(items == [.oversized(50), .frame(Array("{}".utf8))])
    }

    @Test func requestsParseAndSayWhatIsWrong() {
        let good = AgentRequest(id: 7, method: .bind, params: ["bus": "dax"])
        #expect((try? AgentRequest.parse(Array(good.line.utf8.dropLast())).get()) == good)
        func failure(_ text: String) -> AgentFailure? {
            if case .failure(let failure) = AgentRequest.parse(Array(text.utf8)) { return failure }
            return nil
        }
        #expect(failure("nope")?.error.code == .malformed)
        #expect(failure("nope")?.id == nil)
        #expect(failure(#"{"method":"info"}"#)?.error.code == .malformed)
        #expect(failure(#"{"id":3,"method":"fly"}"#) == AgentFailure(id: 3, error: AgentError(.unknownMethod, "unknown method 'fly'")))
        #expect(failure(#"{"id":4,"method":"info","params":[1]}"#)?.error.code == .badParams)
    }

    @Test func agentFramesRoundTrip() throws {
        let frames: [AgentFrame] = [
            .reply(id: 1, .success(["ok": true])), .reply(id: nil, .failure(AgentError(.malformed, "x"))),
            .hello(version: 1, agent: "a", kernel: "k"), .heartbeat(sequence: 3, uptime: 1.5),
            .output(id: 9, stream: "stderr", data: "line\n"),
        ]
        for frame in frames {
            #expect(try AgentFrame.parse(Array(frame.line.utf8.dropLast())) == frame)
        }
    }
}

/// The agent's handler against a fake /sys and /proc tree.
@Suite struct AgentHandlerTests {
    final class FakeGuest {
        let root: String
        init() throws {
            root = FileManager.default.temporaryDirectory.path + "/cxllab-guest-\(UUID().uuidString.prefix(8))"
            let fm = FileManager.default
            for folder in ["/sys/bus/dax/devices/dax0.0", "/sys/bus/dax/drivers/device_dax", "/sys/bus/dax/drivers/fsdev_dax",
                           "/sys/bus/nd/devices", "/sys/bus/cxl/devices", "/proc"] {
                try fm.createDirectory(atPath: root + folder, withIntermediateDirectories: true)
            }
            try "536870912\n".write(toFile: root + "/sys/bus/dax/devices/dax0.0/size", atomically: true, encoding: .utf8)
            try fm.createSymbolicLink(atPath: root + "/sys/bus/dax/devices/dax0.0/driver", withDestinationPath: "../../../../bus/dax/drivers/device_dax")
            for file in ["bind", "unbind", "new_id", "remove_id"] {
                _ = fm.createFile(atPath: root + "/sys/bus/dax/drivers/fsdev_dax/" + file, contents: nil)
            }
            _ = fm.createFile(atPath: root + "/sys/bus/dax/drivers_probe", contents: nil)
            try "dax 16384 2 device_dax,kmem, Live 0x0\ndevice_dax 20480 0 - Live 0x0\n".write(toFile: root + "/proc/modules", atomically: true, encoding: .utf8)
            try "12.50 20.00\n".write(toFile: root + "/proc/uptime", atomically: true, encoding: .utf8)
        }
        deinit { try? FileManager.default.removeItem(atPath: root) }
        func read(_ path: String) -> String? { try? String(contentsOfFile: root + path, encoding: .utf8) }
    }

    func handler(_ guest: FakeGuest, shell: Bool = false) -> AgentHandler {
        let handler = AgentHandler(files: GuestFiles(root: guest.root), shellEnabled: shell)
        _ = handler.reply(to: Array(AgentRequest(id: 0, method: .hello, params: ["version": .int(AgentProtocol.version)]).line.utf8.dropLast()))
        return handler
    }

    func call(_ handler: AgentHandler, _ method: AgentMethod, _ params: [String: JSONValue] = [:]) -> Result<JSONValue, AgentError> {
        guard case .reply(_, let result) = handler.reply(to: Array(AgentRequest(id: 1, method: method, params: params).line.utf8.dropLast())) else {
            return .failure(AgentError(.malformed, "not a reply"))
        }
        return result
    }

    @Test func requestsBeforeHelloAreRefused() throws {
        let guest = try FakeGuest()
        let fresh = AgentHandler(files: GuestFiles(root: guest.root), shellEnabled: false)
        guard case .reply(_, .failure(let error)) = fresh.reply(to: Array(#"{"id":1,"method":"info"}"#.utf8)) else {
            Issue.record("expected a refusal")
            return
        }
        #expect(error.code == .notHandshaken)
        guard case .reply(_, .failure(let version)) = fresh.reply(to: Array(#"{"id":2,"method":"hello","params":{"version":99}}"#.utf8)) else {
            Issue.record("expected a version refusal")
            return
        }
        #expect(version.code == .unsupportedVersion)
    }

    @Test func listsDevicesWithTheirDrivers() throws {
        let guest = try FakeGuest()
        let devices = try call(handler(guest), .listDevices).get()["devices"]?.arrayValue?.compactMap(BusDevice.init(json:)) ?? []
        #expect(devices == [BusDevice(bus: "dax", name: "dax0.0", driver: "device_dax", attributes: ["size": "536870912"])])
    }

    @Test func busOperationsWriteTheRightFiles() throws {
        let guest = try FakeGuest()
        let agent = handler(guest)
        #expect((try? call(agent, .newID, ["bus": "dax", "driver": "fsdev_dax", "device": "dax0.0"]).get()) != nil)
        #expect(guest.read("/sys/bus/dax/drivers/fsdev_dax/new_id") == "dax0.0")
        #expect((try? call(agent, .bind, ["bus": "dax", "driver": "fsdev_dax", "device": "dax0.0"]).get()) != nil)
        #expect(guest.read("/sys/bus/dax/drivers/fsdev_dax/bind") == "dax0.0")
        #expect((try? call(agent, .driversProbe, ["bus": "dax", "device": "dax0.0"]).get()) != nil)
        #expect(guest.read("/sys/bus/dax/drivers_probe") == "dax0.0")
        // A write sysfs refuses (no such file here) is an error reply, not a crash.
        guard case .failure(let error) = call(agent, .bind, ["bus": "dax", "driver": "kmem", "device": "dax0.0"]) else {
            Issue.record("expected a failure")
            return
        }
        #expect(error.code == .failed)
    }

    @Test func pathsAndNamesAreConfined() throws {
        let guest = try FakeGuest()
        let agent = handler(guest)
        for params: [String: JSONValue] in [["bus": "../etc", "driver": "x", "device": "y"], ["bus": "dax", "driver": "a/b", "device": "y"]] {
            guard case .failure(let error) = call(agent, .bind, params) else { Issue.record("expected bad_params"); continue }
            #expect(error.code == .badParams)
        }
        guard case .failure(let error) = call(agent, .sysfsWrite, ["path": "/sys/../etc/passwd", "value": "x"]) else {
            Issue.record("expected bad_params")
            return
        }
        #expect(error.code == .badParams)
    }

    @Test func shellIsRefusedUnlessTheHostEnabledIt() throws {
        let guest = try FakeGuest()
        guard case .failure(let error) = call(handler(guest), .shell, ["command": "true"]) else { Issue.record("expected a refusal"); return }
        #expect(error.code == .notPermitted)
        let outcome = ToolOutcome(json: try call(handler(guest, shell: true), .shell, ["command": "echo hi; exit 4"]).get())
        #expect(outcome.status == 4)
        #expect(outcome.stdout == "hi\n")
    }

    @Test func infoReadsProc() throws {
        let guest = try FakeGuest()
        let info = try call(handler(guest), .info).get()
        #expect(info["uptime"]?.doubleValue == 12.5)
        let modules = info["modules"]?.arrayValue?.compactMap(LoadedModule.init(json:)) ?? []
        #expect(modules.first == LoadedModule(name: "dax", size: 16384, usedBy: ["device_dax", "kmem"]))
    }

    /// Random bytes, truncated and mutated frames: every one gets exactly one reply and the
    /// handler goes on answering.
    @Test func fuzzedFramesGetErrorRepliesAndNoCrash() throws {
        let guest = try FakeGuest()
        let agent = handler(guest)
        var generator = SeededGenerator(seed: 0xC0FFEE)
        let seeds = [#"{"id":1,"method":"bind","params":{"bus":"dax","driver":"fsdev_dax","device":"dax0.0"}}"#,
                     #"{"id":2,"method":"sysfs_read","params":{"path":"/sys/bus/dax/devices/dax0.0/size"}}"#,
                     #"{"id":3,"method":"list_devices"}"#].map { Array($0.utf8) }
        for round in 0..<3000 {
            var frame: [UInt8]
            if round % 3 == 0 {
                frame = (0..<Int(generator.next() % 200)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            } else {
                frame = seeds[Int(generator.next() % UInt64(seeds.count))]
                for _ in 0..<Int(generator.next() % 4) where !frame.isEmpty {
                    frame[Int(generator.next() % UInt64(frame.count))] = UInt8(truncatingIfNeeded: generator.next())
                }
                if generator.next() % 2 == 0 { frame = Array(frame.prefix(Int(generator.next() % UInt64(frame.count + 1)))) }
            }
            guard case .reply = agent.reply(to: frame) else {
                Issue.record("frame \(round) got no reply")
                return
            }
        }
        #expect((try? call(agent, .listDevices).get()) != nil)
    }
}
