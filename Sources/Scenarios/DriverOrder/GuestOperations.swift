import AgentProtocol
import Foundation
import LabRuntime

/// A step of a scenario that could not be done (a module that would not load, a tool that
/// failed): the order it belongs to is an error, with these words.
struct StepFailure: Error, Sendable, CustomStringConvertible {
    let message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}

/// The guest-side moves a scenario makes, as typed agent calls on any guest.
struct GuestOperations<Guest: GuestAgent> {
    let guest: Guest

    func tool(_ tool: String, _ arguments: [String], timeout: Int = 120) async throws -> ToolOutcome {
        try await guest.send(AgentCalls.RunTool(tool, arguments, timeoutSeconds: timeout), timeout: .seconds(timeout + 30))
    }

    /// Runs a tool and throws with its words unless it succeeds.
    @discardableResult
    func must(_ tool: String, _ arguments: [String]) async throws -> ToolOutcome {
        let outcome = try await self.tool(tool, arguments)
        guard outcome.status == 0 else {
            throw StepFailure("`\(([tool] + arguments).joined(separator: " "))` failed (status \(outcome.status)): "
                + (outcome.stderr + outcome.stdout).trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return outcome
    }

    /// A call whose refusal by the kernel is an answer, not an error: nil when it succeeded,
    /// else the kernel's words.
    private func refusal<Call: AgentCall>(_ call: Call) async throws -> String? {
        do {
            _ = try await guest.send(call)
            return nil
        } catch AgentConnectionError.agent(let error) {
            return error.message
        }
    }

    /// A sysfs write; the kernel's refusal comes back as the error text.
    func write(_ path: String, _ value: String) async throws -> String? {
        try await refusal(AgentCalls.SysfsWrite(path: path, value: value))
    }

    func busOperation(_ operation: AgentCalls.Bus.Operation, driver: String?, device: String) async throws -> String? {
        try await refusal(AgentCalls.Bus(operation, bus: "dax", device: device, driver: driver))
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
        try await guest.send(AgentCalls.ListDevices(bus: "dax"))
    }

    /// Every dax device's driver, in one call.
    func daxDrivers() async throws -> [String: String] {
        Dictionary(try await daxDevices().compactMap { device in device.driver.map { (device.name, $0) } }, uniquingKeysWith: { first, _ in first })
    }

    func loadedModules() async throws -> Set<String> {
        Set(try await guest.send(AgentCalls.Info()).modules.map(\.name))
    }

    func load(_ module: String, parameters: [String]) async throws {
        if let refused = try await refusal(AgentCalls.LoadModule(name: module, parameters: parameters)) {
            throw StepFailure("could not load \(module): \(refused)")
        }
    }

    func unload(_ module: String) async throws {
        if let refused = try await refusal(AgentCalls.UnloadModule(name: module)) {
            throw StepFailure("could not unload \(module): \(refused)")
        }
    }

    func mark() async throws -> Int64 {
        try await guest.send(AgentCalls.DmesgMark())
    }

    func dmesg(since mark: Int64) async throws -> [String] {
        try await guest.send(AgentCalls.DmesgSince(mark: mark))
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
