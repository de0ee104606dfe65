import Foundation
import HostSupport
import Libvirt
import Topology

/// What a saved machine is a saved copy of: the kernel image, the guest image (its key covers
/// the recipe, the agent and the modules), and the domain XML as rendered with a placeholder
/// lab folder and name and fixed metadata (it carries the CPU model and features, memory,
/// devices, the kernel command line). Two labs that differ only in their name or folder
/// share a key; anything the guest could tell apart changes it.
public enum SavedMachineKey {
    static let placeholderFolder = "/cxllab-saved-machine"
    static let placeholderDomain = "cxllab-saved-machine"
    /// Bumped when what a saved copy holds changes meaning, so older copies are never used.
    static let format = "cxllab-saved-machine-1"

    /// The request's domain XML with the placeholder folder and name and fixed metadata.
    public static func renderedTopology(_ request: LabRequest) throws -> String {
        var files = request.labFiles(in: placeholderFolder, domainName: placeholderDomain)
        files.metadata = .init(runID: "saved", cellID: "saved", ownerPID: 0, created: Date(timeIntervalSince1970: 0))
        return try request.topology.render(files).xml
    }

    /// The key of the request's machine: 64 hex digits. `emulator` names the QEMU and libvirt
    /// that save and restore it (a save image is QEMU's migration stream: another QEMU may
    /// not read it, so an upgrade makes new copies instead of failing restores).
    public static func of(_ request: LabRequest, emulator: String = "") throws -> String {
        make(kernelImageSHA256: request.kernel.imageSHA256, imageKey: request.image.key, renderedTopology: try renderedTopology(request),
             emulator: emulator)
    }

    public static func make(kernelImageSHA256: String, imageKey: String, renderedTopology: String, emulator: String = "") -> String {
        digest([format, kernelImageSHA256, imageKey, renderedTopology, emulator])
    }

    /// What `of` takes as `emulator` on this connection: QEMU's and libvirt's versions.
    public static func emulator(_ libvirt: Connection) throws -> String {
        "qemu \(try libvirt.hypervisorVersion()) libvirt \(try libvirt.libraryVersion())"
    }

    /// SHA-256 of the parts, each followed by a NUL (so no two splits of one text collide).
    static func digest(_ parts: [String]) -> String {
        var hasher = SHA256Hasher()
        for part in parts { hasher.update(Data((part + "\u{0}").utf8)) }
        return hasher.finalize()
    }

    /// The fixed domain name of copy `index` of a key: a save image restores only under the
    /// name it was saved with.
    public static func domainName(key: String, index: Int) -> String {
        LabNames.prefix + "m" + key.prefix(12) + "-\(index)"
    }
}

/// The domain XML a save image is restored with: every path under the folder the machine was
/// saved from moved to the new lab's folder, and cxllab's metadata (not part of the guest's
/// ABI) naming the new lab's run, cell, owner and start.
public enum SavedMachineXML {
    public static func restoreXML(_ saved: String, from oldFolder: String, to newFolder: String, metadata: LabFiles.Metadata) -> String {
        var xml = oldFolder == newFolder ? saved : saved.replacingOccurrences(of: oldFolder + "/", with: newFolder + "/")
        let values = ["run": metadata.runID, "cell": metadata.cellID, "owner-pid": String(metadata.ownerPID),
                      "created": UTCTimestamp.iso8601(metadata.created)]
        guard let start = xml.range(of: "<" + DomainXMLNamespace.lab.prefix + ":lab "),
              let end = xml.range(of: ">", range: start.upperBound..<xml.endIndex) else { return xml }
        var element = String(xml[start.lowerBound..<end.upperBound])
        for (name, value) in values.sorted(by: { $0.key < $1.key }) {
            element = replacingAttribute(name, with: escaped(value), in: element)
        }
        xml.replaceSubrange(start.lowerBound..<end.upperBound, with: element)
        return xml
    }

    /// `name="…"` (or with single quotes) in one element's start tag, given a new value.
    static func replacingAttribute(_ name: String, with value: String, in element: String) -> String {
        for quote in ["\"", "'"] {
            let opening = " " + name + "=" + quote
            guard let start = element.range(of: opening),
                  let end = element.range(of: quote, range: start.upperBound..<element.endIndex) else { continue }
            var result = element
            result.replaceSubrange(start.upperBound..<end.lowerBound, with: value)
            return result
        }
        return element
    }

    static func escaped(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "\"", with: "&quot;")
            .replacingOccurrences(of: "'", with: "&apos;").replacingOccurrences(of: "<", with: "&lt;")
    }
}
