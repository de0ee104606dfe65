import Foundation
import HostSupport

/// Why a kernel tree could not be built into something to boot. Under `--bisect` every one is
/// "this commit cannot be tested" (125): the tree was given right, this revision does not build.
public enum KernelTreeBuildError: Error, Sendable, CustomStringConvertible {
    /// A make step failed, with the last lines it printed.
    case makeFailed(tree: String, step: String, status: Int32, tail: [String])
    /// A make step outran its deadline.
    case timedOut(tree: String, step: String, hours: Int)
    /// The build succeeded and left no bzImage.
    case noImage(tree: String)
    /// The bzImage is older than the build: it is a previous build's, not this one's.
    case staleImage(path: String, modified: Date, started: Date)
    /// The bzImage changed between the build and its import.
    case changedSinceBuild(path: String)

    public var description: String {
        switch self {
        case .makeFailed(let tree, let step, let status, let tail):
            return "building \(tree) failed: `\(step)` exited with status \(status)"
                + (tail.isEmpty ? "" : "\n  " + tail.joined(separator: "\n  "))
        case .timedOut(let tree, let step, let hours):
            return "building \(tree): `\(step)` did not finish within \(hours) h"
        case .noImage(let tree):
            return "building \(tree) succeeded but left no arch/x86/boot/bzImage; is it an x86 kernel tree?"
        case .staleImage(let path, let modified, let started):
            return "\(path) was last written at \(UTCTimestamp.iso8601(modified)), before this build started "
                + "(\(UTCTimestamp.iso8601(started))): it is an older build's, and cxllab boots only what it just built"
        case .changedSinceBuild(let path):
            return "\(path) changed between the build and its import (another build in the same tree?); run again"
        }
    }
}

/// What a tree build made: the image, its digest right after the build, and when it ran.
public struct TreeBuildRecord: Sendable, Codable, Hashable {
    public let imageSHA256: String
    /// When the build started (whole seconds, as file times may be kept) and ended.
    public let started: Date
    public let finished: Date

    public init(imageSHA256: String, started: Date, finished: Date) {
        self.imageSHA256 = imageSHA256
        self.started = started
        self.finished = finished
    }
}

/// Builds a kernel tree the way `make:<dir>` promises: `make defconfig` when the tree has no
/// .config, cxllab's `KernelConfigFragment` merged into it, `make olddefconfig`, then
/// `make -jN bzImage modules`, each line of the build shown as progress. The image must be
/// written by this build: one older than its start is refused, never imported.
public struct KernelTreeBuild: Sendable {
    public let tree: String
    public var jobs: Int
    /// A kernel build on two cores takes hours; one that never ends is still stopped.
    public var deadline: Duration

    public init(tree: String, jobs: Int = ProcessInfo.processInfo.activeProcessorCount, deadline: Duration = .seconds(12 * 3600)) {
        self.tree = URL(fileURLWithPath: tree).standardizedFileURL.path
        self.jobs = max(1, jobs)
        self.deadline = deadline
    }

    public var imagePath: String { tree + "/arch/x86/boot/bzImage" }
    public var configPath: String { tree + "/.config" }

    public func run(progress: @escaping @Sendable (String) -> Void = { _ in }) async throws -> TreeBuildRecord {
        // Whole seconds: a file system that keeps coarser times must not make this build's
        // own image look older than the build.
        let started = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
        let fm = FileManager.default
        if !fm.fileExists(atPath: configPath) {
            try await make(["defconfig"], progress: progress)
        }
        let config = (try? String(contentsOfFile: configPath, encoding: .utf8)) ?? ""
        try KernelConfigFragment.merged(into: config).write(toFile: configPath, atomically: true, encoding: .utf8)
        try await make(["olddefconfig"], progress: progress)
        try await make(["-j\(jobs)", "bzImage", "modules"], progress: progress)
        guard fm.fileExists(atPath: imagePath) else { throw KernelTreeBuildError.noImage(tree: tree) }
        let modified = (try fm.attributesOfItem(atPath: imagePath)[.modificationDate] as? Date) ?? .distantPast
        guard modified >= started else { throw KernelTreeBuildError.staleImage(path: imagePath, modified: modified, started: started) }
        return TreeBuildRecord(imageSHA256: try FileDigest.sha256(ofFile: imagePath), started: started, finished: Date())
    }

    private func make(_ arguments: [String], progress: @escaping @Sendable (String) -> Void) async throws {
        let step = "make " + arguments.joined(separator: " ")
        progress("building \(tree): \(step)")
        let tree = self.tree
        let result = try await ProcessRunner.run("make", ["-C", tree] + arguments, timeout: deadline) { line in
            let shown = line.trimmingCharacters(in: .whitespaces)
            if !shown.isEmpty { progress("building \(tree): \(shown.prefix(120))") }
        }
        if result.timedOut { throw KernelTreeBuildError.timedOut(tree: tree, step: step, hours: Int(deadline.seconds / 3600)) }
        guard result.status == 0 else {
            // make's own complaints go to standard error; the compiler's too.
            let text = result.errorOutput.isEmpty ? result.output : result.errorOutput
            let tail = text.split(separator: "\n").suffix(12).map { VisibleText.capped(String($0), limit: 400) }
            throw KernelTreeBuildError.makeFailed(tree: tree, step: step, status: result.status, tail: tail)
        }
    }
}
