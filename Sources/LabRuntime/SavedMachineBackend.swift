import Foundation
import HostSupport
import Libvirt
import Topology

/// Labs restored from saved machines (libvirt on this host): a machine is booted once per key
/// (`SavedMachineKey`) to the settled state `LibvirtBackend` returns, saved with its backing
/// files (`SavedMachines`), and later labs of the same key restore from it in about a second
/// instead of booting. A save image restores only under the domain name and UUID it was saved
/// with, so one copy backs one lab at a time: up to one copy per guest slot, each with its
/// fixed domain name, claimed by a lock while a lab runs from it. With every copy in use the
/// lab boots as `LibvirtBackend` boots it. On unless `CXLLAB_SAVED_MACHINES=0`.
public struct SavedMachineBackend: LabBackend {
    public init() {}

    public var name: String { "libvirt qemu:///system, saved machines" }

    public func start(_ request: LabRequest, context: LabContext, progress: @escaping @Sendable (String) -> Void) async throws -> any RunningLab {
        let started = context.now()
        let libvirt = try await context.connect()
        if request.persistent { try context.paths.checkNameFree(request.name, libvirt: libvirt) }
        if let reason = Self.unsaveable(request.topology) {
            progress("\(reason): booting it")
            return try await LabSession.start(request, context: context, libvirt: libvirt, progress: progress)
        }
        let key = try SavedMachineKey.of(request, emulator: SavedMachineKey.emulator(libvirt))
        let store = SavedMachines(cache: context.cache, limitBytes: context.settings.savedMachinesLimitBytes ?? SavedMachines.defaultLimitBytes)
        store.sweepStaging()
        for index in 0..<max(1, context.guestSlots.limit) {
            let domainName = SavedMachineKey.domainName(key: key, index: index)
            // A copy kept running by a cxllab that has exited holds no lock, but its domain runs.
            guard try libvirt.lookupDomain(named: domainName) == nil, let claim = try store.claim(key: key, index: index) else { continue }
            do {
                var copyRequest = request
                copyRequest.domainName = domainName
                if let problem = store.problem(key: key, index: index, domainName: domainName,
                                               imageDomainName: { try Connection.domainName(inXML: libvirt.saveImageXML(path: $0)) }) {
                    progress("saved machine \(store.copyFolder(key: key, index: index)) cannot be used (\(problem)): booting and saving it")
                    store.remove(key: key, index: index)
                    try await save(copyRequest, key: key, index: index, store: store, context: context, libvirt: libvirt, progress: progress)
                }
                guard let record = store.record(key: key, index: index) else {
                    throw LabError(.host, "the saved machine \(store.copyFolder(key: key, index: index)) has no \(SavedMachines.recordName) after saving")
                }
                store.touch(key: key, index: index)
                return try await LabSession.restore(copyRequest, from: store, key: key, index: index, record: record, claim: claim,
                                                    context: context, libvirt: libvirt, started: started, progress: progress)
            } catch {
                claim.release()
                throw error
            }
        }
        progress("every saved copy of this machine is in use: booting it")
        return try await LabSession.start(request, context: context, libvirt: libvirt, progress: progress)
    }

    /// Why a machine cannot be saved and restored faithfully, or nil when it can. QEMU 10
    /// migrates no state of its CXL devices (`cxl-type3` declares no VMState), so a restored
    /// guest's CXL memory devices have lost their programmed registers: measured here, a
    /// region's decoder commit then times out ("failed to commit decode: Connection timed
    /// out", and no namespace after it) where a booted guest's commits.
    public static func unsaveable(_ topology: Topology) -> String? {
        topology.cxl.isEmpty ? nil : "a machine with CXL devices cannot be saved (QEMU 10 keeps no state of them across a restore)"
    }

    /// Boots the machine under the copy's domain name to its settled state, saves it (the
    /// domain stops), copies its backing files beside the save image in a staging folder and
    /// moves that into place; the lab folder is then removed as any lab's is.
    func save(_ request: LabRequest, key: String, index: Int, store: SavedMachines, context: LabContext, libvirt: Connection,
              progress: @escaping @Sendable (String) -> Void) async throws {
        var bootRequest = request
        bootRequest.persistent = false
        bootRequest.transcript = nil
        let session = try await LabSession.start(bootRequest, context: context, libvirt: libvirt, progress: progress)
        let staging: String
        do {
            staging = try store.stagingFolder(key: key, index: index)
        } catch {
            await session.teardown()
            throw LabError(.host, "cannot make a staging folder under \(store.root): \(error.localizedDescription)", cause: error)
        }
        do {
            progress("saving \(session.domainName)")
            let savedAt = context.now()
            let image = staging + "/" + SavedMachines.saveImageName
            try await offThePool { try session.domain.save(to: image) }
            let saveSeconds = context.seconds(since: savedAt)
            let backing = bootRequest.topology.backingFiles(bootRequest.labFiles(in: session.folder, domainName: session.domainName))
            var stored: [SavedMachineRecord.StoredFile] = []
            for file in backing {
                let name = (file.path as NSString).lastPathComponent
                try await SavedMachines.copySparse(file.path, to: staging + "/\(SavedMachines.filesName)/" + name)
                stored.append(.init(name: name, size: SavedMachines.size(of: file.path) ?? file.size))
            }
            let now = Date()
            let record = SavedMachineRecord(
                key: key, kernelImageSHA256: request.kernel.imageSHA256, imageKey: request.image.key,
                topologyXMLSHA256: SavedMachineKey.digest([try SavedMachineKey.renderedTopology(request)]),
                agentVersion: session.hello?.version, agent: session.hello?.agent, domainName: session.domainName, savedFolder: session.folder,
                saveImageSize: SavedMachines.size(of: image) ?? 0, files: stored, bootSeconds: session.start.seconds,
                saveSeconds: saveSeconds, created: now, lastUsed: now, bytes: 0)
            try SavedMachines.writeRecord(record, in: staging)
            var sized = record
            sized.bytes = SavedMachines.diskUsage(of: staging)
            try SavedMachines.writeRecord(sized, in: staging)
            try store.commit(staging: staging, key: key, index: index)
            progress(String(format: "saved %@ (boot %.1f s, save %.1f s, %d MiB)", session.domainName, session.start.seconds, saveSeconds,
                            Int(sized.bytes >> 20)))
        } catch {
            try? FileManager.default.removeItem(atPath: staging)
            await session.teardown()
            if LabError.isOutOfSpace(error) {
                throw LabError(.diskFull, "cannot save the machine of lab \(request.name) under \(store.root): free space there", cause: error)
            }
            throw error
        }
        // The domain is gone with the save: this removes the lab folder and gives the slot back.
        await session.teardown()
        store.trim(sparing: (key, index))
    }
}
