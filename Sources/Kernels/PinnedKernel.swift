import Foundation
import HostSupport

/// A kernel reference resolved once: the release, package version and image hash that every
/// use of it in a run refers to, whatever a suite alias points at later.
public struct PinnedKernel: Sendable, Codable, Hashable {
    /// As the user wrote it (`debian:bookworm-backports`).
    public let reference: String
    public let release: String
    public let packageVersion: String?
    public let imageSHA256: String
    /// A reference that names exactly this kernel again (`debian:<release>` for Debian's,
    /// the build or files reference itself for the others).
    public let exactReference: String

    public init(reference: String, kernel: Kernel) {
        self.reference = reference
        release = kernel.release
        packageVersion = kernel.packageVersion
        imageSHA256 = kernel.imageSHA256
        exactReference = kernel.packageVersion != nil ? "debian:\(kernel.release)" : kernel.origin
    }

    public init(reference: String, release: String, packageVersion: String?, imageSHA256: String, exactReference: String) {
        self.reference = reference
        self.release = release
        self.packageVersion = packageVersion
        self.imageSHA256 = imageSHA256
        self.exactReference = exactReference
    }

    /// For people: the release, and the alias when there was one.
    public var label: String { reference == exactReference ? release : "\(release) (\(reference))" }

    /// Throws `PinMismatch` unless `kernel` is still this pin: its recorded image and the file
    /// on disk both the pinned image. A `build:` or `files:` kernel is imported into one folder
    /// per origin, so a tree imported again (by another run) replaces the files a kernel value
    /// handed on points at: such a kernel is refused, never booted under this pin.
    public func check(_ kernel: Kernel) throws {
        guard kernel.imageSHA256 == imageSHA256 else {
            throw PinMismatch(pinned: self, foundRelease: kernel.release, foundImage: kernel.imageSHA256)
        }
        let onDisk = try ContentDigests.sha256(ofFile: kernel.imagePath)
        guard onDisk == imageSHA256 else { throw PinMismatch(pinned: self, foundRelease: nil, foundImage: onDisk) }
    }
}

/// A kernel resolved once for a cell: the kernel, its config read once, and its pin.
public struct KernelUnderTest: Sendable {
    public let kernel: Kernel
    public let config: KernelConfig?
    public let pinned: PinnedKernel

    public init(kernel: Kernel, reference: String) {
        self.init(kernel: kernel, config: KernelConfig(contentsOf: kernel.configPath), reference: reference)
    }

    public init(kernel: Kernel, config: KernelConfig?, reference: String) {
        self.init(kernel: kernel, config: config, pinned: PinnedKernel(reference: reference, kernel: kernel))
    }

    /// A kernel under the pin a run gave it (which names the alias it was pinned from).
    public init(kernel: Kernel, config: KernelConfig?, pinned: PinnedKernel) {
        self.kernel = kernel
        self.config = config
        self.pinned = pinned
    }
}

/// A kernel that is no longer the one its run pinned.
public struct PinMismatch: Error, Sendable, CustomStringConvertible {
    public let pinned: PinnedKernel
    /// The release found, when known (a replaced file says only its image).
    public let foundRelease: String?
    public let foundImage: String

    public init(pinned: PinnedKernel, foundRelease: String?, foundImage: String) {
        self.pinned = pinned
        self.foundRelease = foundRelease
        self.foundImage = foundImage
    }

    public var description: String {
        "kernel \(pinned.exactReference) is not the one this run pinned: it was \(pinned.release) with image \(pinned.imageSHA256.prefix(12)), "
            + "and is now \(foundRelease.map { $0 + " " } ?? "")with image \(foundImage.prefix(12)) (the tree was rebuilt or its files changed during the run); "
            + "this cell does not boot another kernel under its id: run the matrix again to pin the new one"
    }
}

/// Resolves kernel references to kernels: the store, or a stand-in in tests.
public protocol KernelResolving: Sendable {
    func kernel(_ reference: KernelReference, progress: @escaping @Sendable (String) -> Void) async throws -> Kernel
}

extension KernelStore: KernelResolving {}

extension KernelResolving {
    /// Resolves every distinct reference once, in the order given.
    public func pin(_ references: [String], progress: @escaping @Sendable (String) -> Void = { _ in }) async throws -> [String: Kernel] {
        var pinned: [String: Kernel] = [:]
        for reference in references where pinned[reference] == nil {
            pinned[reference] = try await kernel(try KernelReference(parsing: reference), progress: progress)
        }
        return pinned
    }
}

extension Kernel {
    /// A kernel described by hand (tests, stand-in archives); the store makes its own.
    public init(release: String, origin: String, packageVersion: String?, suite: String?, imageSHA256: String, folder: String) {
        self.release = release
        self.origin = origin
        self.packageVersion = packageVersion
        self.suite = suite
        self.imageSHA256 = imageSHA256
        self.folder = folder
    }
}
