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

    /// The context's `LabSettings.resultStore` when set (a benchmark or a drill keeping its
    /// runs apart), else `<cache>/results.sqlite`.
    public static func path(context: LabContext) -> String {
        context.settings.resultStore ?? context.cache.path + "/results.sqlite"
    }

    public convenience init(context: LabContext) throws {
        try self.init(path: Self.path(context: context))
    }

    /// The columns of a stored cell, in the order `save` and `merge` name them.
    static let columns = "run, cell, kernel, kernelRelease, topology, scenario, variant, seed, imageKey, verdict, failedOrders, orders, seconds, finished, result"

    public init(path: String) throws {
        self.path = path
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        queue = try Self.openQueue(path)
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

    /// Opens the store; a damaged one (not a database, or corrupt) is moved aside, whole, and
    /// a new one begun, with a word on standard error: results already kept stay on disk for
    /// `cxllab merge`, and new ones are not lost to the damage.
    static func openQueue(_ path: String) throws -> DatabaseQueue {
        var configuration = Configuration()
        // Several cxllab processes may write at once (matrix shards on one host).
        configuration.busyMode = .timeout(30)
        do {
            let queue = try DatabaseQueue(path: path, configuration: configuration)
            _ = try queue.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_master") }
            return queue
        } catch let error as DatabaseError where [.SQLITE_CORRUPT, .SQLITE_NOTADB].contains(error.resultCode) {
            let aside = path + ".damaged-" + UTCTimestamp.compact(Date())
            for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: path + suffix) {
                try FileManager.default.moveItem(atPath: path + suffix, toPath: aside + suffix)
            }
            FileHandle.standardError.write(Data(("cxllab: the result store \(path) is damaged (\(error.message ?? "\(error.resultCode)")); "
                + "it was moved to \(aside) and a new store begun. `cxllab merge \(aside)` recovers what can be read of it.\n").utf8))
            return try DatabaseQueue(path: path, configuration: configuration)
        }
    }

    public func save(_ result: CellResult, run: String) throws {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .utcISO8601
        let blob = try encoder.encode(result)
        try queue.write { db in
            try db.execute(
                sql: "INSERT INTO cell (\(Self.columns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                arguments: [run, result.cellID, result.cell.kernel, result.cell.pinned.release, result.cell.topology, result.cell.scenario,
                            result.cell.variant, Int64(bitPattern: result.cell.settings.randomSeed ?? 0), result.outcome.imageKey, result.verdict.rawValue,
                            result.scenario.failedCases.count, result.cases.count, result.seconds, result.finished, blob]
            )
        }
    }

    /// How far past this host's clock a merged cell's `finished` may lie (clocks of shard
    /// hosts drift a little); a later one is a wrong clock, not a newer result.
    public static let mergeClockSkew: TimeInterval = 5 * 60

    /// Copies the cells of other stores (shards run on other hosts) into this one, by column
    /// name: a cell this store lacks is added, one it has is replaced only by a newer result.
    /// A cell finished after `now` plus `mergeClockSkew` (or at no readable time) is left out,
    /// said on standard error: a wrong clock must not make a result "newest" for good.
    /// Returns how many rows changed.
    public func merge(from paths: [String], now: Date = Date()) throws -> Int {
        var copied = 0
        let latest = now.addingTimeInterval(Self.mergeClockSkew)
        let prefixed = Self.columns.split(separator: ",").map { "o." + $0.trimmingCharacters(in: .whitespaces) }.joined(separator: ", ")
        // julianday reads any date SQLite can; a date it cannot read gives NULL and the row is left out.
        let believable = "julianday(o.finished) <= julianday(?)"
        for path in paths {
            guard FileManager.default.isReadableFile(atPath: path) else {
                throw MatrixError("cannot read \(path): give the results.sqlite of another cxllab's cache", code: .notFound)
            }
            try queue.writeWithoutTransaction { db in
                try db.execute(sql: "ATTACH DATABASE ? AS other", arguments: [path])
                defer { try? db.execute(sql: "DETACH DATABASE other") }
                let columns = Set(try Row.fetchAll(db, sql: "PRAGMA other.table_info(cell)").map { $0["name"] as String })
                let wanted = Self.columns.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                guard wanted.allSatisfy(columns.contains) else {
                    throw MatrixError("\(path) is not a cxllab result store (it has no cell table with cxllab's columns)", code: .invalidFile)
                }
                let future = try Int.fetchOne(db, sql: "SELECT count(*) FROM other.cell o WHERE NOT coalesce(\(believable), 0)",
                                              arguments: [latest]) ?? 0
                try db.inTransaction {
                    try db.execute(sql: "INSERT OR IGNORE INTO cell (\(Self.columns)) SELECT \(prefixed) FROM other.cell o WHERE \(believable)",
                                   arguments: [latest])
                    copied += db.changesCount
                    try db.execute(sql: """
                        INSERT OR REPLACE INTO cell (\(Self.columns))
                        SELECT \(prefixed)
                        FROM other.cell o JOIN main.cell c ON c.run = o.run AND c.cell = o.cell
                        WHERE julianday(o.finished) > julianday(c.finished) AND \(believable)
                        """, arguments: [latest])
                    copied += db.changesCount
                    return .commit
                }
                if future > 0 {
                    FileHandle.standardError.write(Data(("cxllab: \(future) cell result(s) in \(path) finished later than this host's clock "
                        + "allows (now plus \(Int(Self.mergeClockSkew / 60)) min) or at no readable time, and were left out: "
                        + "check the clock of the host that ran them, then merge again\n").utf8))
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
