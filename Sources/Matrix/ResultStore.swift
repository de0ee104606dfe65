import Foundation
import GRDB
import HostSupport
import LabRuntime

/// Every cell result of every run, in SQLite (`<cache>/results.sqlite`): the history that
/// `report`, `diff`, `repro` and `--resume` read, queryable by kernel, topology or verdict.
/// Each cell is written the moment it finishes, so an interrupted matrix loses nothing. The
/// only user of SQLite in cxllab.
public final class ResultStore: Sendable {
    let queue: DatabaseQueue
    public let path: String

    /// `LabSettings.resultStore` when set (a benchmark or a drill keeping its runs apart),
    /// else `<cache>/results.sqlite`.
    public static func path(cache: CacheDirectory) -> String {
        LabSettings.current.resultStore ?? cache.path + "/results.sqlite"
    }

    public convenience init(cache: CacheDirectory) throws {
        try self.init(path: Self.path(cache: cache))
    }

    public init(path: String) throws {
        self.path = path
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        var configuration = Configuration()
        // Several cxllab processes may write at once (matrix shards on one host).
        configuration.busyMode = .timeout(30)
        queue = try DatabaseQueue(path: path, configuration: configuration)
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: "cell") { table in
                table.column("run", .text).notNull()
                table.column("cell", .text).notNull()
                table.column("kernel", .text).notNull()
                table.column("kernelRelease", .text)
                table.column("topology", .text).notNull()
                table.column("scenario", .text).notNull()
                table.column("variant", .text).notNull()
                table.column("seed", .integer).notNull()
                table.column("imageKey", .text)
                table.column("verdict", .text).notNull()
                table.column("failedOrders", .integer).notNull()
                table.column("orders", .integer).notNull()
                table.column("seconds", .double).notNull()
                table.column("finished", .datetime).notNull()
                table.column("result", .blob).notNull()
                table.primaryKey(["run", "cell"], onConflict: .replace)
            }
        }
        // Two cxllab processes opening a new store at once would both create its table: the
        // schema is made under a lock file beside the store (found by the two-matrices drill).
        let lock = open(path + ".lock", O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        if lock >= 0 {
            while flock(lock, LOCK_EX) != 0 && errno == EINTR {}
        }
        defer { if lock >= 0 { close(lock) } }
        try migrator.migrate(queue)
    }

    public func save(_ result: CellResult, run: String) throws {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .utcISO8601
        let blob = try encoder.encode(result)
        try queue.write { db in
            try db.execute(
                sql: """
                    INSERT INTO cell (run, cell, kernel, kernelRelease, topology, scenario, variant, seed, imageKey, verdict,
                                      failedOrders, orders, seconds, finished, result)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [run, result.cellID, result.cell.kernel, result.cell.pinned.release, result.cell.topology, result.cell.scenario,
                            result.cell.variant, Int64(bitPattern: result.cell.seed), result.outcome.imageKey, result.verdict.rawValue,
                            result.scenario.failedCases.count, result.cases.count, result.seconds, result.finished, blob]
            )
        }
    }

    /// Copies every cell of other stores (shards run on other hosts) into this one.
    public func merge(from paths: [String]) throws -> Int {
        var copied = 0
        for path in paths {
            try queue.writeWithoutTransaction { db in
                try db.execute(sql: "ATTACH DATABASE ? AS other", arguments: [path])
                defer { try? db.execute(sql: "DETACH DATABASE other") }
                try db.inTransaction {
                    try db.execute(sql: "INSERT OR REPLACE INTO cell SELECT * FROM other.cell")
                    copied += db.changesCount
                    return .commit
                }
            }
        }
        return copied
    }

    public func results(run: String) throws -> [CellResult] {
        try decode(try queue.read { db in
            try Row.fetchAll(db, sql: "SELECT cell, result FROM cell WHERE run = ? ORDER BY cell", arguments: [run])
        }.map { ($0["cell"] as String, $0["result"] as Data) })
    }

    /// Each cell's duration in its latest run.
    public func lastSeconds() throws -> [String: Double] {
        let rows = try queue.read { db in
            try Row.fetchAll(db, sql: "SELECT cell, seconds FROM cell c WHERE finished = (SELECT MAX(finished) FROM cell WHERE cell = c.cell)")
        }
        return Dictionary(rows.map { ($0["cell"] as String, $0["seconds"] as Double) }, uniquingKeysWith: { a, _ in a })
    }

    public func runs() throws -> [String] {
        try queue.read { db in try String.fetchAll(db, sql: "SELECT run FROM cell GROUP BY run ORDER BY MIN(finished)") }
    }

    /// The newest result of a cell whose id starts with `prefix`, from any run.
    public func cell(prefix: String) throws -> CellResult? {
        // Compared as text, not with LIKE: an id never holds its wildcards, and a prefix that
        // does must match nothing.
        try decode(try queue.read { db in
            try Row.fetchAll(db, sql: "SELECT cell, result FROM cell WHERE substr(cell, 1, length(?)) = ? ORDER BY finished DESC LIMIT 1",
                             arguments: [prefix, prefix])
        }.map { ($0["cell"] as String, $0["result"] as Data) }).first
    }

    /// Rows this version cannot read (written by an older cxllab, or damaged) are left out,
    /// and said once on standard error with their cell ids: one bad row never hides the rest.
    func decode(_ rows: [(cell: String, blob: Data)]) throws -> [CellResult] {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .utcISO8601
        var results: [CellResult] = []
        var unreadable: [String] = []
        for row in rows {
            if let result = try? decoder.decode(CellResult.self, from: row.blob) { results.append(result) } else { unreadable.append(row.cell) }
        }
        if !unreadable.isEmpty {
            FileHandle.standardError.write(Data(("cxllab: \(unreadable.count) stored result(s) in \(path) cannot be read by this version "
                + "and are left out (cells \(unreadable.prefix(5).joined(separator: ", "))\(unreadable.count > 5 ? ", ..." : ""))\n").utf8))
        }
        return results
    }
}
