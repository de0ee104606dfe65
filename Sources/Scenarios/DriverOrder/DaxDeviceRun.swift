import Foundation
import LabRuntime

/// The skeleton driver-order and race share: make the topology's dax devices, then work on
/// them, timed; whatever stops the work is the run's failure, and what was made and found
/// not applicable is kept either way.
struct DaxDeviceRun {
    var devices: [ScenarioDevice] = []
    var notApplicable: [String] = []
    var failure: OutcomeError?
    var seconds: Double = 0

    /// `work` gets the devices (never none) and returns a failure that ends the run without
    /// throwing, or nil.
    static func run<G: GuestAgent>(on guest: G, drivers: [String], machine: GuestMachine, progress: @escaping @Sendable (String) -> Void,
                                   work: (GuestOperations<G>, [ScenarioDevice]) async throws -> OutcomeError?) async -> DaxDeviceRun {
        let operations = GuestOperations(guest: guest)
        let clock = ContinuousClock()
        let start = clock.now
        var run = DaxDeviceRun()
        do {
            progress("making dax devices")
            let made = try await DriverOrderScenario.makeDevices(operations, drivers: drivers, machine: machine)
            run.devices = made.devices
            run.notApplicable = made.notApplicable
            if run.devices.isEmpty {
                if run.notApplicable.isEmpty { run.failure = .scenario("no dax device could be made from this topology") }
            } else {
                run.failure = try await work(operations, run.devices)
            }
        } catch {
            run.failure = OutcomeError(error)
        }
        run.seconds = (clock.now - start).seconds
        return run
    }
}
