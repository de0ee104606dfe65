import Foundation
import HostSupport

/// The runs kept in the cache, for `report`, `diff` and `repro`.
public struct RunArchive: Sendable {
    public let cache: CacheDirectory

    public init(cache: CacheDirectory) {
        self.cache = cache
    }

    var root: String { cache.path + "/runs" }

    public func runs() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).sorted()
    }

    public func results(of run: String) throws -> [CellResult] {
        guard FileManager.default.fileExists(atPath: root + "/" + run) else {
            throw ScenarioError("no run \(run) in \(root); runs kept: \(runs().suffix(5).joined(separator: ", "))")
        }
        return MatrixRunner.results(in: root + "/" + run)
    }

    /// The newest result of a cell (by id or id prefix), from any run.
    public func cell(_ id: String) throws -> CellResult {
        let found = runs().reversed().lazy.compactMap { run in
            try? self.results(of: run).first { $0.cellID.hasPrefix(id) }
        }.first
        guard let found else { throw ScenarioError("no cell \(id) in any run under \(root)") }
        return found
    }
}

