import Foundation
import HostSupport
import LabRuntime

/// The runs kept in the result store, for `report`, `diff` and `repro`.
public struct RunArchive: Sendable {
    /// Whose result store it reads.
    public let context: LabContext

    public init(context: LabContext) {
        self.context = context
    }

    /// Run ids are letters, digits and '-' (what `cxllab matrix` makes): one that is not
    /// never reaches a path, a lab name or the store.
    public static func isRunID(_ run: String) -> Bool {
        !run.isEmpty && run.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
    }

    public func runs() throws -> [String] { try ResultStore(context: context).runs() }

    public func results(of run: String) throws -> [CellResult] {
        guard Self.isRunID(run) else {
            throw MatrixError("'\(run)' is not a run id: run ids are letters, digits and '-' (see `cxllab matrix` output)", code: .notFound)
        }
        let results = try ResultStore(context: context).results(run: run)
        guard !results.isEmpty else {
            throw MatrixError("no run \(run) in \(ResultStore.path(context: context)); recent runs: \(try runs().suffix(5).joined(separator: ", "))", code: .notFound)
        }
        return results
    }

    /// The newest result of a cell (by id or its first characters), from any run.
    public func cell(_ id: String) throws -> CellResult {
        guard let found = try ResultStore(context: context).cell(prefix: id) else {
            throw MatrixError("no cell \(id) in any run in \(ResultStore.path(context: context))", code: .notFound)
        }
        return found
    }
}
