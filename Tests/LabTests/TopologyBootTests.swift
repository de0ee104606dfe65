import AgentProtocol
import Foundation
import HostSupport
@testable import LabRuntime
@testable import Scenarios
@testable import Matrix
@testable import Bench
import Libvirt
import Testing
import TestSupport

/// Every shipped topology boots, and the guest sees its devices.
@Suite(.tags(.vm, .network), .needsHost) struct TopologyBootTests {
    struct Expectation: Sendable, CustomStringConvertible {
        let topology: String
        let pmemMemdevs: Int
        let ramMemdevs: Int
        let nvdimmRegions: Int
        let legacyRegions: Int
        var description: String { topology }
    }

    static let expectations = [
        Expectation(topology: "nvdimm-single", pmemMemdevs: 0, ramMemdevs: 0, nvdimmRegions: 1, legacyRegions: 0),
        Expectation(topology: "cxl-pmem-single", pmemMemdevs: 1, ramMemdevs: 0, nvdimmRegions: 0, legacyRegions: 0),
        Expectation(topology: "cxl-switch-4", pmemMemdevs: 4, ramMemdevs: 0, nvdimmRegions: 0, legacyRegions: 0),
        Expectation(topology: "cxl-interleave-2hb", pmemMemdevs: 2, ramMemdevs: 0, nvdimmRegions: 0, legacyRegions: 0),
        Expectation(topology: "cxl-volatile", pmemMemdevs: 0, ramMemdevs: 1, nvdimmRegions: 0, legacyRegions: 0),
        Expectation(topology: "mixed", pmemMemdevs: 1, ramMemdevs: 0, nvdimmRegions: 1, legacyRegions: 1),
    ]

    @Test(arguments: expectations)
    func bootsWithItsDevicesVisible(_ expectation: Expectation) async throws {
        let context = LabContext.forTests()
        let prepared = try await Fixtures.prepare(expectation.topology, context: context)
        let session = try await LabSession.start(
            LabRequest(name: "topo-\(UUID().uuidString.prefix(6).lowercased())", topology: prepared.topology, kernel: prepared.kernel,
                       image: prepared.image, runID: "test", cellID: expectation.topology),
            context: context, libvirt: try Connection()
        )
        let guest = GuestOperations(guest: session)
        do {
            let memdevs = try await guest.tool("cxl", ["list", "-M"]).json?.asList ?? []
            #expect(memdevs.filter { ($0["pmem_size"]?.intValue ?? 0) > 0 }.count == expectation.pmemMemdevs)
            #expect(memdevs.filter { ($0["ram_size"]?.intValue ?? 0) > 0 }.count == expectation.ramMemdevs)
            let regions = try await guest.regionsByProvider()
            // CXL pmem memdevs have no nd region until a CXL region is made.
            #expect(regions.filter { $0.provider == "ACPI.NFIT" }.count == expectation.nvdimmRegions)
            #expect(regions.filter { $0.provider == "e820" }.count == expectation.legacyRegions)
        } catch {
            await session.teardown()
            throw error
        }
        await session.teardown()
        #expect(try Connection().lookupDomain(named: session.domainName) == nil)
    }
}
