import Foundation
@testable import GuestImage
import HostSupport
import Testing
@testable import Kernels

/// A program a recipe needs and the host lacks is refused by name, with how to get it.
@Suite struct RecipeProgramTests {
    @Test func aMissingProgramIsNamedWithItsFix() async throws {
        let folder = NSTemporaryDirectory() + "cxllab-recipe-\(UUID().uuidString.prefix(6))"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.createDirectory(atPath: folder + "/kernel", withIntermediateDirectories: true)
        try "name: lacking\nbinaries:\n  - /bin/busybox\n  - /usr/bin/cxllab-no-such-program\nmodules:\n  boot: []\n"
            .write(toFile: folder + "/lacking.yaml", atomically: true, encoding: .utf8)
        let kernel = Kernel(release: "7.3.0-test", origin: "files:/k", packageVersion: nil, suite: nil,
                            imageSHA256: String(repeating: "b", count: 64), folder: folder + "/kernel")
        let request = ImageRequest(recipe: try ImageRecipe.load(path: folder + "/lacking.yaml"), kernel: kernel, features: [])
        let error = await #expect(throws: RecipeProgramMissing.self) {
            try await ImageBuilder(cache: CacheDirectory(path: folder + "/cache")).build(request)
        }
        #expect(error?.description.contains("image recipe 'lacking' needs /usr/bin/cxllab-no-such-program, which this host lacks") == true)
        #expect(error?.description.contains("make setup-suite") == true)
    }
}

/// modules.dep is read as bytes: a path's module name is the same either way.
@Suite struct ModuleNameTests {
    @Test(arguments: ["kernel/drivers/dax/device_dax.ko.xz", "kernel/arch/x86/crypto/crc32c-intel.ko.zst", "extra/fsdev_dax.ko",
                      "kernel/fs/ext4/ext4.ko.gz", "virtio_pci.ko", "kernel/sound/core/snd-pcm.ko.xz"])
    func bytesAndTextNameTheSameModule(path: String) {
        let bytes = Array(path.utf8)
        let fromBytes = bytes.withUnsafeBufferPointer { ModuleIndex.name(ofPath: $0) }
        #expect(fromBytes == ModuleIndex.name(ofPath: path))
    }
}
