import Foundation
@testable import GuestImage
import HostSupport
import Testing
@testable import Kernels

@Suite struct CPIOArchiveTests {
    func sample() -> CPIOArchive {
        var archive = CPIOArchive()
        archive.add("init", .bytes(Data("#!/bin/sh\necho hi\n".utf8)), mode: 0o755)
        archive.add("/usr/bin/tool", .file("/etc/os-release"))
        archive.add("sbin/modprobe", .symlink("/usr/bin/kmod"))
        archive.add("dev/console", .characterDevice(major: 5, minor: 1))
        archive.add("empty", .bytes(Data()))
        archive.add("odd/name-with-3", .bytes(Data("abc".utf8)))
        return archive
    }

    @Test func parentsAreAddedAndSorted() {
        #expect(sample().paths == ["dev", "dev/console", "empty", "init", "odd", "odd/name-with-3", "sbin", "sbin/modprobe", "usr", "usr/bin", "usr/bin/tool"])
    }

    @Test func theCpioToolReadsWhatWeWrite() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("cxllab-cpio-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder + "/x", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let size = try sample().write(to: folder + "/a.cpio")
        #expect(size % 512 == 0)
        let listing = try await ProcessRunner.check("sh", ["-c", "cpio -it < \(folder)/a.cpio"], context: "cpio -t")
        #expect(listing.output.split(separator: "\n").map(String.init) == sample().paths)
        let verbose = try await ProcessRunner.check("sh", ["-c", "cpio -itv < \(folder)/a.cpio"], context: "cpio -tv")
        #expect(verbose.output.contains("crw-------"))
        #expect(verbose.output.contains("sbin/modprobe -> /usr/bin/kmod"))
        try await ProcessRunner.check("sh", ["-c", "cd \(folder)/x && cpio -id --quiet < ../a.cpio"], context: "cpio -i")
        #expect(FileManager.default.contents(atPath: folder + "/x/init") == Data("#!/bin/sh\necho hi\n".utf8))
        #expect(FileManager.default.contents(atPath: folder + "/x/usr/bin/tool") == FileManager.default.contents(atPath: "/etc/os-release"))
        #expect(FileManager.default.contents(atPath: folder + "/x/odd/name-with-3") == Data("abc".utf8))
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: folder + "/x/sbin/modprobe") == "/usr/bin/kmod")
        let mode = try FileManager.default.attributesOfItem(atPath: folder + "/x/init")[.posixPermissions] as? Int
        #expect(mode == 0o755)
    }

    @Test func sameEntriesGiveTheSameBytes() throws {
        let folder = FileManager.default.temporaryDirectory.path
        let a = folder + "/cxllab-a-\(UUID().uuidString).cpio"
        let b = folder + "/cxllab-b-\(UUID().uuidString).cpio"
        defer { try? FileManager.default.removeItem(atPath: a); try? FileManager.default.removeItem(atPath: b) }
        try sample().write(to: a)
        // Added in another order: the archive must not care.
        var other = CPIOArchive()
        other.add("odd/name-with-3", .bytes(Data("abc".utf8)))
        other.add("empty", .bytes(Data()))
        other.add("dev/console", .characterDevice(major: 5, minor: 1))
        other.add("sbin/modprobe", .symlink("/usr/bin/kmod"))
        other.add("/usr/bin/tool", .file("/etc/os-release"))
        other.add("init", .bytes(Data("#!/bin/sh\necho hi\n".utf8)), mode: 0o755)
        try other.write(to: b)
        #expect(FileManager.default.contents(atPath: a) == FileManager.default.contents(atPath: b))
    }
}

@Suite struct ELFFileTests {
    @Test func staticBusybox() throws {
        let elf = try ELFFile(path: "/bin/busybox")
        #expect(elf.isStatic)
    }

    @Test func dynamicNdctl() throws {
        let elf = try ELFFile(path: "/usr/bin/ndctl")
        #expect(elf.interpreter == "/lib64/ld-linux-x86-64.so.2")
        #expect(elf.needed.contains("libndctl.so.6"))
        #expect(elf.needed.contains("libc.so.6"))
    }

    @Test func rejectsWhatIsNotELF() throws {
        #expect(throws: ELFError.self) { try ELFFile(path: "/etc/os-release") }
        let truncated = try Data(contentsOf: URL(fileURLWithPath: "/usr/bin/ndctl")).prefix(100)
        #expect(throws: ELFError.self) { try ELFFile(data: Data(truncated)) }
    }

    /// Every header field that names an offset or size set to huge values, one at a time and
    /// all together: each is a clear error, never a crash.
    @Test func malformedFieldsAreErrorsNotCrashes() throws {
        let original = try Data(contentsOf: URL(fileURLWithPath: "/usr/bin/ndctl"))
        let programHeaders = Int(original[0x20]) | Int(original[0x21]) << 8
        let fields = [0x20, programHeaders + 8, programHeaders + 16, programHeaders + 32]
        let segmentCount = Int(original[0x38])
        let everySegmentField = (0..<segmentCount).flatMap { index in [8, 16, 32].map { programHeaders + index * 56 + $0 } }
        for offsets in fields.map({ [$0] }) + [everySegmentField] {
            for value: UInt8 in [0xFF, 0x7F] {
                var data = original
                for offset in offsets { data.replaceSubrange(offset..<offset + 8, with: [UInt8](repeating: value, count: 8)) }
                let parsed = Result { try ELFFile(data: data) }
                if case .failure(let error) = parsed { #expect(error is ELFError) }
            }
        }
    }

    /// A crafted PT_DYNAMIC whose offset sits just below Int.max: reading its first entry
    /// (offset + 16) overflowed and trapped (SIGILL) before every step was checked.
    @Test func dynamicSegmentAtTheTopOfTheOffsetsIsAnError() throws {
        var bytes = [UInt8](repeating: 0, count: 64 + 56)
        bytes.replaceSubrange(0..<6, with: [0x7F, 0x45, 0x4C, 0x46, 2, 1])
        func put(_ value: UInt64, at offset: Int, size: Int) {
            for index in 0..<size { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(index))) }
        }
        put(64, at: 0x20, size: 8)        // program headers right after the file header
        put(56, at: 0x36, size: 2)        // one entry of 56 bytes
        put(1, at: 0x38, size: 2)
        put(2, at: 64, size: 4)           // PT_DYNAMIC
        put(UInt64(Int.max) - 8, at: 64 + 8, size: 8)
        put(0, at: 64 + 32, size: 8)
        #expect(throws: ELFError.self) { try ELFFile(data: Data(bytes)) }
    }

    @Test func libraryClosureIncludesLoaderAndLibc() throws {
        let files = try LibraryClosure().files(for: ["/usr/bin/ndctl"]).map(\.guestPath)
        #expect(files.contains("/usr/bin/ndctl"))
        #expect(files.contains("/lib64/ld-linux-x86-64.so.2"))
        #expect(files.contains("/lib/x86_64-linux-gnu/libc.so.6"))
        #expect(files.contains("/lib/x86_64-linux-gnu/libkmod.so.2"))
    }

    @Test func aMissingLibraryIsNamed() throws {
        // A copy of ndctl whose DT_NEEDED names a library no system has (same length string).
        var data = try Data(contentsOf: URL(fileURLWithPath: "/usr/bin/ndctl"))
        let needle = Data("libndctl.so.6".utf8)
        let range = try #require(data.range(of: needle))
        data.replaceSubrange(range, with: Data("libnopes.so.6".utf8))
        let path = FileManager.default.temporaryDirectory.path + "/cxllab-ndctl-\(UUID().uuidString)"
        try data.write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let error = try #require(throws: LibraryNotFound.self) { try LibraryClosure().files(for: [path]) }
        #expect(error.library == "libnopes.so.6")
        #expect(error.description.contains("needs libnopes.so.6"))
        #expect(error.description.contains("image recipe"))
    }
}

@Suite struct ModuleIndexTests {
    func index() throws -> ModuleIndex {
        let folder = FileManager.default.temporaryDirectory.path + "/cxllab-mods-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try """
            kernel/drivers/acpi/nfit/nfit.ko.xz: kernel/drivers/nvdimm/libnvdimm.ko.xz
            kernel/drivers/nvdimm/libnvdimm.ko.xz:
            kernel/drivers/nvdimm/nd_pmem.ko.xz: kernel/drivers/nvdimm/nd_btt.ko.xz kernel/drivers/nvdimm/libnvdimm.ko.xz
            kernel/drivers/nvdimm/nd_btt.ko.xz: kernel/drivers/nvdimm/libnvdimm.ko.xz
            kernel/drivers/dax/device_dax.ko.xz:
            kernel/sound/core/snd-pcm.ko.xz:
            kernel/fs/ext4/ext4.ko.xz: kernel/fs/jbd2/jbd2.ko.xz
            kernel/fs/jbd2/jbd2.ko.xz:
            kernel/crypto/crc32c_generic.ko.xz:
            kernel/arch/x86/crypto/crc32c-intel.ko.xz:
            """.write(toFile: folder + "/modules.dep", atomically: true, encoding: .utf8)
        // Debian 6.12's own lines, and a soft dependency the kernel has no module for.
        try """
            # Soft dependencies extracted from modules themselves.
            softdep ext4 pre: crypto-crc32c
            softdep nfit pre: nowhere post: device_dax
            """.write(toFile: folder + "/modules.softdep", atomically: true, encoding: .utf8)
        try """
            alias crypto-crc32c crc32c_intel
            alias crypto-crc32c crc32c_generic
            alias pci:v*d*sv*sd*bc01sc08i02* device_dax
            """.write(toFile: folder + "/modules.alias", atomically: true, encoding: .utf8)
        try "kernel/drivers/virtio/virtio_pci.ko\nkernel/drivers/dax/dax.ko\n".write(toFile: folder + "/modules.builtin", atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        return try ModuleIndex(modulesFolder: folder, release: "6.99.0-test")
    }

    @Test func closureFollowsDependencies() throws {
        #expect(try index().closure(of: ["nd_pmem"]) == [
            "kernel/drivers/nvdimm/libnvdimm.ko.xz", "kernel/drivers/nvdimm/nd_btt.ko.xz", "kernel/drivers/nvdimm/nd_pmem.ko.xz",
        ])
    }

    @Test func closureTakesSoftDependenciesByNameAndThroughAliases() throws {
        #expect(try index().closure(of: ["ext4"]) == [
            "kernel/arch/x86/crypto/crc32c-intel.ko.xz", "kernel/crypto/crc32c_generic.ko.xz", "kernel/fs/ext4/ext4.ko.xz", "kernel/fs/jbd2/jbd2.ko.xz",
        ])
        #expect(try index().closure(of: ["nfit"]).contains("kernel/drivers/dax/device_dax.ko.xz"))
    }

    @Test func builtinNeedsNoFileAndDashesMatchUnderscores() throws {
        let index = try index()
        #expect(try index.closure(of: ["virtio_pci", "dax"]).isEmpty)
        #expect(try index.closure(of: ["snd_pcm"]) == ["kernel/sound/core/snd-pcm.ko.xz"])
    }

    @Test func missingModulesAreAllNamed() throws {
        let error = try #require(throws: ModuleNotFound.self) { try index().closure(of: ["nfit", "cxl_acpi", "fsdev_dax"]) }
        #expect(error.modules == ["cxl_acpi", "fsdev_dax"])
        #expect(error.description.contains("6.99.0-test"))
    }
}

@Suite struct RecipeAndConfigTests {
    static var root: String { URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path }

    @Test func defaultRecipeParses() throws {
        let recipe = try ImageRecipe.load(path: Self.root + "/images/default.yaml")
        #expect(recipe.binaries.contains("/usr/bin/ndctl"))
        #expect(recipe.moduleNames(for: ["nvdimm", "cxl"]).first == "virtio_pci")
        #expect(recipe.moduleNames(for: ["nvdimm", "cxl"]).filter { $0 == "device_dax" }.count == 1)
    }

    @Test func unknownKeysAreNamedWithTheirPlace() throws {
        let error = try #require(throws: RecipeError.self) {
            try ImageRecipe.parse("name: x\nbinaries: []\nmodules: {}\nbinarys: [/bin/sh]\n", file: "images/x.yaml")
        }
        #expect(error.description.contains("images/x.yaml"))
        #expect(error.description.contains("4:1"))
        #expect(error.description.contains("binarys"))
    }

    @Test func missingKeysAreNamed() throws {
        let error = try #require(throws: RecipeError.self) { try ImageRecipe.parse("name: x\nmodules: {}\n", file: "r.yaml") }
        #expect(error.description.contains("binaries"))
    }

    @Test func configRequirementsFollowFeaturesAndRelease() {
        let config = KernelConfig(text: "CONFIG_CXL_BUS=y\nCONFIG_CXL_PCI=m\n# CONFIG_CXL_REGION_INVALIDATION_TEST is not set\n")
        #expect(config.isEnabled("CXL_PCI"))
        #expect(!config.isEnabled("CXL_REGION_INVALIDATION_TEST"))
        let old = KernelRequirements.requirements(for: ["cxl"], release: "6.1.0-56-amd64").map(\.option)
        let new = KernelRequirements.requirements(for: ["cxl"], release: "6.12.95+deb12-amd64").map(\.option)
        let bitKept = KernelRequirements.requirements(for: ["cxl", "hypervisor-bit"], release: "6.12.95+deb12-amd64").map(\.option)
        let oldBitKept = KernelRequirements.requirements(for: ["cxl", "hypervisor-bit"], release: "6.1.0-56-amd64").map(\.option)
        // Needed only where the guest sees the hypervisor bit, and only from 6.2 on.
        #expect(!old.contains("CXL_REGION_INVALIDATION_TEST") && !oldBitKept.contains("CXL_REGION_INVALIDATION_TEST"))
        #expect(!new.contains("CXL_REGION_INVALIDATION_TEST"))
        #expect(bitKept.contains("CXL_REGION_INVALIDATION_TEST"))
        #expect(KernelRequirements.releaseBefore("6.1.0-56-amd64", 6, 2))
        #expect(!KernelRequirements.releaseBefore("7.3.4+deb13-amd64", 6, 2))
    }
}
