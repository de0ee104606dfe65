import Foundation
@testable import LabRuntime
import Libvirt

/// cxllab's running domains as a test finds them: by the run and cell their metadata names,
/// whatever their domain name (a lab restored from a saved machine runs under its copy's).
enum RunningLabs {
    /// The running domains whose cxllab metadata names this run.
    static func domains(run: String) throws -> [String] {
        try Connection().allDomains().filter { $0.name.hasPrefix(LabNames.prefix) && isOfRun($0, run) }.map(\.name)
    }

    /// Whether the domain of this name carries cxllab's metadata for this run (false when it is gone).
    static func isOfRun(_ domainName: String, _ run: String, libvirt: Connection) -> Bool {
        guard let domain = try? libvirt.lookupDomain(named: domainName) else { return false }
        return isOfRun(domain, run)
    }

    static func isOfRun(_ domain: Domain, _ run: String) -> Bool {
        LabLookup.metadataXML(domain)?.contains(" run=\"\(run)\"") == true
    }

    /// The domains whose cxllab metadata names this cell (and run, when given).
    static func domains(cell: String, run: String? = nil) throws -> [String] {
        try Connection().allDomains().filter { $0.name.hasPrefix(LabNames.prefix) }.compactMap { domain in
            guard let xml = LabLookup.metadataXML(domain), xml.contains(" cell=\"\(cell)\""),
                  run.map({ xml.contains(" run=\"\($0)\"") }) ?? true else { return nil }
            return domain.name
        }
    }
}
