import AgentProtocol
import Foundation
import HostSupport

extension GuestAgent {
    /// Waits until the guest's CXL memory devices have settled: cxl_pci and cxl_mem probe
    /// asynchronously, so when the agent answers, a device can still lack its endpoint port and
    /// decoders, and `cxl create-region` then fails ("unable to determine region size"). Done
    /// when every memory device of the topology is bound to cxl_mem and has an endpoint bound
    /// to cxl_port. A kernel that never gets there (no CXL support, a device it refuses) is not
    /// an error here: after the deadline the lab goes on, and scenarios report what the kernel
    /// made in its own words.
    func waitForCXLDevices(count: Int, deadline: Duration = .seconds(45)) async {
        let clock = ContinuousClock()
        let end = clock.now + deadline
        while clock.now < end {
            guard let devices = try? await send(AgentCalls.ListDevices(), timeout: .seconds(30)) else { return }
            let cxl = devices.filter { $0.bus == "cxl" }
            let memdevs = cxl.filter { $0.name.hasPrefix("mem") && $0.driver == "cxl_mem" }.count
            let endpoints = cxl.filter { $0.name.hasPrefix("endpoint") && $0.driver == "cxl_port" }.count
            if memdevs >= count && endpoints >= count { return }
            // The guest has no event to wait on through the agent: poll, briefly.
            try? await Task.sleep(for: .milliseconds(250))
        }
    }
}
