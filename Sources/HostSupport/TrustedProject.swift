import Foundation

/// Where cxllab's own files (recipes, topologies, the stand-in's source) may come from.
/// cxllab runs as root and builds and boots what it finds there, so a folder counts only when
/// the kernel says it holds the running program (/proc/self/exe: argv[0] and the working
/// folder are the caller's choice, not proof of anything) or the user named it
/// (CXLLAB_HOME), and only when it and its images/ are this user's and nobody else can write
/// them.
public enum TrustedProject {
    /// The running program's own file, resolved by the kernel; nil where /proc is missing.
    public static var runningExecutable: String? {
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"), target.hasPrefix("/") else {
            return nil
        }
        return target
    }

    /// The SwiftPM package an executable was built in: .build/debug/cxllab resolves to
    /// .build/<triple>/debug/cxllab, so the walk goes up to the folder with Package.swift.
    public static func package(containing executable: String) -> String? {
        guard executable.hasPrefix("/") else { return nil }
        var folder = URL(fileURLWithPath: executable).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<4 {
            folder = folder.deletingLastPathComponent()
            if FileManager.default.fileExists(atPath: folder.path + "/Package.swift") { return folder.path }
        }
        return nil
    }

    /// The folders to search, in order, and the ones refused with the reason.
    public static func roots(home: String?, executable: String?) -> (roots: [String], refused: [String]) {
        var candidates: [String] = []
        if let home, !home.isEmpty { candidates.append(home) }
        if let executable, let package = package(containing: executable), !candidates.contains(package) { candidates.append(package) }
        var roots: [String] = []
        var refused: [String] = []
        for candidate in candidates {
            if let problem = problem(with: candidate) { refused.append("\(candidate) (\(problem))") } else { roots.append(candidate) }
        }
        return (roots, refused)
    }

    /// Why a folder cannot be trusted as a project root, or nil.
    public static func problem(with root: String) -> String? {
        guard root.hasPrefix("/") else { return "not an absolute path" }
        for path in [root, root + "/images"] {
            var info = stat()
            guard stat(path, &info) == 0 else {
                if errno == ENOENT && path != root { continue }
                return "\(path) cannot be read"
            }
            if info.st_uid != geteuid() { return "\(path) belongs to uid \(info.st_uid), not to this user" }
            if info.st_mode & 0o022 != 0 { return "\(path) can be written by others" }
        }
        return nil
    }

    /// A sibling program of the running one (cxllab-agent beside cxllab), or under `swift
    /// test` one level up from the test runner; never found through argv[0].
    public static func sibling(_ name: String) -> String? {
        guard let executable = runningExecutable else { return nil }
        let folder = URL(fileURLWithPath: executable).deletingLastPathComponent()
        return [folder.appendingPathComponent(name).path, folder.deletingLastPathComponent().appendingPathComponent(name).path]
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}
