import Foundation
import HostSupport

/// The runs kept in the result store, for `report`, `diff` and `repro`.
public struct RunArchive: Sendable {
    public let cache: CacheDirectory

    public init(cache: CacheDirectory) {
        self.cache = cache
    }

    /// Run ids are letters, digits and '-' (what `cxllab matrix` makes): one that is not
    /// never reaches a path, a lab name or the store.
    public static func isRunID(_ run: String) -> Bool {
        !run.isEmpty && run.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
    }

    public func runs() throws -> [String] { try ResultStore(cache: cache).runs() }

    public func results(of run: String) throws -> [CellResult] {
        guard Self.isRunID(run) else {
            throw MatrixError("'\(run)' is not a run id: run ids are letters, digits and '-' (see `cxllab matrix` output)", code: .notFound)
        }
        let results = try ResultStore(cache: cache).results(run: run)
        guard !results.isEmpty else {
            throw MatrixError("no run \(run) in \(ResultStore.path(cache: cache)); recent runs: \(try runs().suffix(5).joined(separator: ", "))", code: .notFound)
        }
        return results
    }

    /// The newest result of a cell (by id or its first characters), from any run.
    public func cell(_ id: String) throws -> CellResult {
        guard let found = try ResultStore(cache: cache).cell(prefix: id) else {
            throw MatrixError("no cell \(id) in any run in \(ResultStore.path(cache: cache))", code: .notFound)
        }
        return found
    }
}
