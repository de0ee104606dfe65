import ArgumentParser
@testable import CXLLabCommands
import Foundation
import HostSupport
import Kernels
import LabRuntime
import Testing
import Topology

/// `--json` outputs that need no guest, as data a script can read, and the built cxllab's
/// statuses for errors no guest is needed to see.
@Suite struct CommandOutputTests {
    /// The package's root, where topologies/ and .build/ are.
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    static func object(_ json: String) throws -> Any { try JSONSerialization.jsonObject(with: Data(json.utf8)) }

    @Test func topologyValidateAsJSONSaysEachFilesVerdict() throws {
        let good = Self.root + "/topologies/nvdimm-single.yaml"
        let broken = Self.root + "/Tests/TopologyTests/Broken/bad-id.yaml"
        let missing = Self.root + "/topologies/no-such-\(UUID().uuidString.prefix(6)).yaml"
        let checked = CXLLab.Topology.Validate.check([good, broken, missing], capabilities: .qemu10)
        let rows = try #require(try Self.object(try JSONOutput.encode(checked)) as? [[String: Any]])
        try #require(rows.count == 3)
        #expect(rows[0]["valid"] as? Bool == true && rows[0]["name"] as? String == "nvdimm-single")
        #expect(rows[1]["valid"] as? Bool == false)
        let diagnostics = try #require(rows[1]["diagnostics"] as? [[String: Any]])
        #expect(!diagnostics.isEmpty && diagnostics.allSatisfy { $0["file"] as? String == broken && ($0["line"] as? Int ?? 0) > 0 && $0["fix"] is String })
        #expect(rows[2]["valid"] as? Bool == false && (rows[2]["error"] as? String)?.contains("no such file") == true, "\(rows[2])")
    }

    @Test func topologyShowAsJSONIsTheValidatedMachine() throws {
        let file = Self.root + "/topologies/cxl-pmem-single.yaml"
        let topology = try TopologyFiles.load(file, capabilities: .qemu10)
        let machine = try #require(try Self.object(try JSONOutput.encode(topology)) as? [String: Any])
        #expect(machine["name"] as? String == topology.name)
        let cxl = try #require(machine["cxl"] as? [String: Any])
        let devices = try #require(cxl["memoryDevices"] as? [[String: Any]])
        #expect(devices.count == topology.cxl.memoryDevices.count && !devices.isEmpty)
        #expect(devices.first?["persistentSize"] as? UInt64 == topology.cxl.memoryDevices.first?.persistentSize)
    }

    /// `kernel show --json` is JSON alone: the kernel, whether its config was kept, and what
    /// it lacks; the text form says the same in lines.
    @Test func kernelShowIsPureJSON() throws {
        let folder = NSTemporaryDirectory() + "cxllab-kernel-\(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let kernel = try JSONDecoder().decode(Kernels.Kernel.self, from: Data("""
            {"release": "6.12.95+deb12-amd64", "origin": "debian", "imageSHA256": "ab", "folder": "\(folder)"}
            """.utf8))
        let bare = CXLLab.Kernel.Show.Shown(kernel)
        let noConfig = try #require(try Self.object(try JSONOutput.encode(bare)) as? [String: Any])
        #expect(noConfig["configKept"] as? Bool == false && (noConfig["missing"] as? [Any])?.isEmpty == true)
        #expect((noConfig["kernel"] as? [String: Any])?["release"] as? String == "6.12.95+deb12-amd64")
        #expect(bare.text.contains("config   none kept"))

        try "CONFIG_LIBNVDIMM=y\n".write(toFile: kernel.configPath, atomically: true, encoding: .utf8)
        let sparse = CXLLab.Kernel.Show.Shown(kernel)
        let shown = try #require(try Self.object(try JSONOutput.encode(sparse)) as? [String: Any])
        let missing = try #require(shown["missing"] as? [[String: Any]])
        #expect(shown["configKept"] as? Bool == true && !missing.isEmpty)
        #expect(missing.allSatisfy { $0["option"] is String && $0["why"] is String })
        #expect(sparse.text.split(separator: "\n").filter { $0.hasPrefix("config   no CONFIG_") }.count == missing.count)
    }

    @Test func diffAsJSONKeepsEachLineWithItsKind() throws {
        let changes = RunChanges(before: "a-1", after: "b-2", lines: [
            "NEW FAILURE  debian:bookworm nvdimm-single.yaml driver-order [stand-in automatch=1]: pass -> fail",
            "FIXED        debian:bookworm cxl-pmem-ram.yaml driver-order [real fsdev_dax]: fail -> pass",
            "ONLY IN B    debian:trixie-backports nvdimm-single.yaml race [stand-in automatch=0]: pass",
        ])
        let object = try #require(try Self.object(try JSONOutput.encode(changes)) as? [String: Any])
        #expect(object["newFailures"] as? Int == 1 && object["before"] as? String == "a-1")
        let kinds = (object["changes"] as? [[String: Any]])?.compactMap { $0["kind"] as? String }
        #expect(kinds == ["NEW FAILURE", "FIXED", "ONLY IN B"])
        #expect(RunChanges(before: "a", after: "b", lines: []).newFailures == 0)
    }

    // MARK: - The built program

    static func cxllab(_ arguments: [String]) async throws -> ProcessResult {
        let executable = Self.root + "/.build/debug/cxllab"
        try #require(FileManager.default.isExecutableFile(atPath: executable), "build first: swift build --build-tests")
        return try await ProcessRunner.run(executable, arguments, currentDirectory: Self.root, timeout: .seconds(120))
    }

    @Test func theProgramSaysItsErrorsWithTheListedStatuses() async throws {
        let missing = "no-such-\(UUID().uuidString.prefix(6)).yaml"
        let show = try await Self.cxllab(["topology", "show", "--assume-qemu10", missing])
        #expect(show.status == 2 && show.errorOutput.contains("topology \(missing): no such file"), "\(show.status): \(show.errorOutput)")
        #expect(!show.errorOutput.contains("could not be completed") && !show.errorOutput.contains("Usage"))

        let validate = try await Self.cxllab(["topology", "validate", "--assume-qemu10", "--json", "topologies/nvdimm-single.yaml"])
        #expect(validate.status == 0, "\(validate.errorOutput)")
        let rows = try #require(try Self.object(validate.output) as? [[String: Any]], "stdout is JSON alone: \(validate.output)")
        #expect(rows.first?["valid"] as? Bool == true)

        // exec: 255 for its own errors, a usage error too, so no guest status is mistaken for one.
        let noCommand = try await Self.cxllab(["exec", "lab"])
        #expect(noCommand.status == 255 && noCommand.errorOutput.contains("Usage: cxllab exec"), "\(noCommand.status): \(noCommand.errorOutput)")

        // --help is argument-parser's: printed on standard output, status 0.
        for help in [["run", "--help"], ["help", "exec"], ["--help"]] {
            let shown = try await Self.cxllab(help)
            #expect(shown.status == 0 && shown.output.contains("Exit status:") && shown.errorOutput.isEmpty, "\(help): \(shown.errorOutput)")
        }

        let usage = try await Self.cxllab(["matrix", "--shard", "0/2"])
        #expect(usage.status == 64 && usage.errorOutput.contains("Usage: cxllab matrix"), "\(usage.status): \(usage.errorOutput)")
    }
}
