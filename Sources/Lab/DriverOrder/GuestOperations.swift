import AgentProtocol
import Foundation

public struct ScenarioError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The guest-side moves a scenario makes, as typed agent calls.
struct GuestOperations {
    let session: LabSession

    func tool(_ tool: String, _ arguments: [String], timeout: Int = 120) async throws -> ToolOutcome {
        ToolOutcome(json: try await session.call(.runTool, ["tool": .string(tool), "args": .array(arguments.map { .string($0) }),
                                                           "timeout": .int(Int64(timeout))], timeout: .seconds(timeout + 30)))
    }

    /// Runs a tool and throws with its words unless it succeeds.
    @discardableResult
    func must(_ tool: String, _ arguments: [String]) async throws -> ToolOutcome {
        let outcome = try await self.tool(tool, arguments)
        guard outcome.status == 0 else {
            throw ScenarioError("`\(([tool] + arguments).joined(separator: " "))` failed (status \(outcome.status)): "
                + (outcome.stderr + outcome.stdout).trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return outcome
    }

    /// A sysfs write; the kernel's refusal comes back as the error text.
    func write(_ path: String, _ value: String) async throws -> String? {
        do {
            _ = try await session.call(.sysfsWrite, ["path": .string(path), "value": .string(value)])
            return nil
        } catch AgentConnectionError.agent(let error) {
            return error.message
        }
    }

    func busOperation(_ method: AgentMethod, driver: String?, device: String) async throws -> String? {
        var params: [String: JSONValue] = ["bus": "dax", "device": .string(device)]
        if let driver { params["driver"] = .string(driver) }
        do {
            _ = try await session.call(method, params)
            return nil
        } catch AgentConnectionError.agent(let error) {
            return error.message
        }
    }

    /// Every nd region with its namespaces, by the provider of its bus: ACPI.NFIT (NVDIMMs),
    /// e820 (memmap= legacy pmem) or CXL.
    func regionsByProvider() async throws -> [(provider: String, region: JSONValue)] {
        let listed = try await tool("ndctl", ["list", "-B", "-R", "-N", "-i"])
        return (listed.json?.asList ?? []).flatMap { bus -> [(String, JSONValue)] in
            let provider = bus["provider"]?.stringValue ?? "unknown"
            return (bus["regions"]?.asList ?? []).map { (provider, $0) }
        }
    }

    func daxDevices() async throws -> [BusDevice] {
        let result = try await session.call(.listDevices)
        return (result["devices"]?.arrayValue ?? []).compactMap(BusDevice.init(json:)).filter { $0.bus == "dax" }
    }

    func driver(of device: String) async throws -> String? {
        try await daxDevices().first { $0.name == device }?.driver
    }

    func loadedModules() async throws -> Set<String> {
        let info = try await session.call(.info)
        return Set((info["modules"]?.arrayValue ?? []).compactMap(LoadedModule.init(json:)).map(\.name))
    }

    func load(_ module: String, parameters: [String]) async throws {
        do {
            _ = try await session.call(.loadModule, ["name": .string(module), "params": .array(parameters.map { .string($0) })])
        } catch AgentConnectionError.agent(let error) {
            throw ScenarioError("could not load \(module): \(error.message)")
        }
    }

    func unload(_ module: String) async throws {
        do {
            _ = try await session.call(.unloadModule, ["name": .string(module)])
        } catch AgentConnectionError.agent(let error) {
            throw ScenarioError("could not unload \(module): \(error.message)")
        }
    }

    func mark() async throws -> Int64 {
        try await session.call(.dmesgMark)["mark"]?.intValue ?? -1
    }

    func dmesg(since mark: Int64) async throws -> [String] {
        (try await session.call(.dmesgSince, ["mark": .int(mark)])["lines"]?.arrayValue ?? []).compactMap(\.stringValue)
    }
}

extension JSONValue {
    /// ndctl and cxl print one object for one result and an array for several.
    var asList: [JSONValue] {
        switch self {
        case .array(let values): values
        case .null: []
        default: [self]
        }
    }
}
