public import Foundation

/// What the console's overview page shows about the server: versions, sizes by chamber, connections,
/// WAL archiving, autovacuum on the busiest tables, the migration head and the last hour's activity.
///
/// Read by ``PhylacteryClient/serverOverview(busiestTables:activityMinutes:)`` from the statistics
/// views (`pg_stat_activity`, `pg_stat_archiver`, `pg_stat_user_tables`) and the catalog; nothing is
/// changed. A plain value: pages render it, the JSON API encodes it.
public struct ServerOverview: Sendable, Hashable, Codable {
    /// The disk one schema's tables take.
    public struct ChamberSize: Sendable, Hashable, Codable {
        /// The schema: a chamber (`queue`, `traces`, `vectors`, `verbatim`, `public`) or an extension's.
        public var schema: String
        /// Tables in it (a partitioned table counts once, its partitions not).
        public var tables: Int
        /// Bytes of its tables, their indexes and TOAST (`pg_total_relation_size`).
        public var bytes: Int64
    }

    /// Client connections to the whole server (`pg_stat_activity`).
    public struct Connections: Sendable, Hashable, Codable {
        /// Client backends connected.
        public var total: Int
        /// Running a statement.
        public var active: Int
        /// Waiting for the client's next statement.
        public var idle: Int
        /// Inside a transaction, waiting for the client: these hold locks and keep vacuum from cleaning up.
        public var idleInTransaction: Int
        /// Waiting for a lock.
        public var waitingForLock: Int
        /// Connected to this database.
        public var thisDatabase: Int
        /// `max_connections`.
        public var maximum: Int
    }

    /// The WAL archiver (`pg_stat_archiver`) and `archive_mode`.
    public struct WALArchiving: Sendable, Hashable, Codable {
        /// `archive_mode`: `off`, `on` or `always`.
        public var mode: String
        /// Segments archived since the statistics were reset.
        public var archivedCount: Int
        /// The last segment archived.
        public var lastArchivedWAL: String?
        /// When it was archived.
        public var lastArchivedAt: Date?
        /// Failed attempts since the statistics were reset.
        public var failedCount: Int
        /// The segment of the last failure.
        public var lastFailedWAL: String?
        /// When the last failure happened.
        public var lastFailedAt: Date?

        /// Archiving is on and its last attempt failed.
        public var isFailing: Bool {
            guard self.mode != "off", let failed = self.lastFailedAt else { return false }
            return self.lastArchivedAt.map { failed > $0 } ?? true
        }
    }

    /// Autovacuum's state on one busy table (`pg_stat_user_tables`).
    public struct TableVacuum: Sendable, Hashable, Codable {
        /// The table's schema.
        public var schema: String
        /// The table.
        public var table: String
        /// Estimated live rows.
        public var liveTuples: Int64
        /// Estimated dead rows, waiting for vacuum.
        public var deadTuples: Int64
        /// `dead / (live + dead)`, 0 for an empty table.
        public var deadRatio: Double
        /// Rows inserted, updated and deleted since the statistics were reset: how busy the table is.
        public var modifications: Int64
        /// The dead rows at which autovacuum vacuums this table (its base threshold plus scale factor
        /// times its rows, table settings first, capped by `autovacuum_vacuum_max_threshold`).
        public var vacuumThreshold: Int64
        /// Whether autovacuum is enabled for this table (server setting and `autovacuum_enabled`).
        public var autovacuumEnabled: Bool
        /// The last time autovacuum vacuumed it.
        public var lastAutovacuum: Date?
        /// The last time autovacuum analysed it.
        public var lastAutoanalyze: Date?
        /// How often autovacuum vacuumed it since the statistics were reset.
        public var autovacuumCount: Int64

        /// Autovacuum keeps up: the dead rows are below the point at which it steps in.
        public var keepsUp: Bool { self.autovacuumEnabled && self.deadTuples <= self.vacuumThreshold }
    }

    /// One minute of activity.
    public struct ActivityMinute: Sendable, Hashable, Codable {
        /// The minute's start.
        public var minute: Date
        /// Jobs completed in it.
        public var jobsCompleted: Int
        /// Spans started in it, as stored.
        public var spansRecorded: Int
    }

    /// `server_version`, e.g. `18.1`.
    public var serverVersion: String
    /// `server_version_num`, e.g. `180001`.
    public var serverVersionNumber: Int
    /// The installed pgvector version, `nil` when the extension is not installed.
    public var pgvectorVersion: String?
    /// The database connected to.
    public var database: String
    /// Its size in bytes (`pg_database_size`).
    public var databaseBytes: Int64
    /// Sizes by schema, largest first.
    public var chambers: [ChamberSize]
    /// Connections.
    public var connections: Connections
    /// WAL archiving.
    public var walArchiving: WALArchiving
    /// The server's `autovacuum` setting.
    public var autovacuumEnabled: Bool
    /// Autovacuum workers running now.
    public var autovacuumWorkers: Int
    /// The busiest tables, most modified first.
    public var busiestTables: [TableVacuum]
    /// The last applied migration, `nil` when none was applied (or the ledger does not exist).
    public var migrationHead: String?
    /// Jobs completed and spans recorded per minute, oldest minute first, ending with the current one.
    public var activity: [ActivityMinute]
    /// When the figures were read (the server's clock).
    public var readAt: Date
}
