import Foundation
import Logging
public import Phylactery
import PostgresNIO

/// The runtime's housekeeping, as periodic jobs on the queue ``PhylacteryRuntime/housekeepingQueue``:
/// enqueued by whichever process leads the periodic scheduler (so a fleet of daemons does each once),
/// kept in `queue.jobs` with their results, and traced like any job.
///
/// - `phylactery.housekeeping.prune_queue`: deletes finished jobs older than `queue.retention`.
/// - `phylactery.housekeeping.trace_partitions`: creates the day partitions of `traces.spans` ahead
///   (`traces.partitionsAhead`) and drops those past `traces.retention`.
/// - `phylactery.housekeeping.analyze`: runs `ANALYZE` on the chambers' tables whose statistics are
///   stale and reports their bloat (dead rows); the report is the job's result.
public enum Housekeeping {
    /// Prunes finished jobs.
    public struct PruneQueue: Job {
        public static let kind = "phylactery.housekeeping.prune_queue"
        public static var queue: String { PhylacteryRuntime.housekeepingQueue }
        public static var maxAttempts: Int { 3 }
        /// Finished jobs older than this many seconds are deleted.
        public var retentionSeconds: Double
    }

    /// Keeps the trace partitions: ahead of today, and none past the retention.
    public struct TracePartitions: Job {
        public static let kind = "phylactery.housekeeping.trace_partitions"
        public static var queue: String { PhylacteryRuntime.housekeepingQueue }
        public static var maxAttempts: Int { 3 }
        /// Day partitions created ahead of today.
        public var daysAhead: Int
        /// Partitions ending more than this many seconds ago are dropped; `nil` keeps them.
        public var retentionSeconds: Double?
    }

    /// `ANALYZE` where statistics are stale, and a bloat report of the chambers.
    public struct AnalyzeChambers: Job {
        public static let kind = "phylactery.housekeeping.analyze"
        public static var queue: String { PhylacteryRuntime.housekeepingQueue }
        public static var maxAttempts: Int { 3 }
    }

    /// What ``AnalyzeChambers`` found: the job's stored result.
    public struct ChamberReport: Codable, Sendable, Hashable {
        /// One table of a chamber.
        public struct Table: Codable, Sendable, Hashable {
            /// `schema.table`.
            public var name: String
            public var liveRows: Int64
            public var deadRows: Int64
            /// Dead rows as a share of all rows (0…1).
            public var deadRatio: Double
            /// The table's size with its indexes and TOAST, in bytes.
            public var bytes: Int64
            /// Whether this run analyzed it (its statistics were stale).
            public var analyzed: Bool
        }

        public var tables: [Table]
        /// Tables whose dead rows are at least 20 % of their rows (and at least 1,000): vacuum is behind.
        public var bloated: [String]
    }

    /// The periodic jobs for `configuration`, each every ``PhylacteryConfiguration/housekeepingInterval``.
    static func periodicJobs(_ configuration: PhylacteryConfiguration) -> [PeriodicJob] {
        let every = PeriodicSchedule.every(configuration.housekeepingInterval)
        var jobs: [PeriodicJob] = []
        if let retention = configuration.queue.retention {
            jobs.append(PeriodicJob(name: "phylactery.prune_queue", schedule: every) { PruneQueue(retentionSeconds: retention.seconds) })
        }
        if configuration.traces.enabled {
            let ahead = configuration.traces.partitionsAhead, retention = configuration.traces.retention?.seconds
            jobs.append(PeriodicJob(name: "phylactery.trace_partitions", schedule: every) { TracePartitions(daysAhead: ahead, retentionSeconds: retention) })
        }
        jobs.append(PeriodicJob(name: "phylactery.analyze", schedule: every) { AnalyzeChambers() })
        return jobs
    }

    /// Registers the handlers of the housekeeping jobs.
    static func register(into handlers: inout JobHandlers) {
        handlers.register(PruneQueue.self) { job, context in
            let deleted = try await context.client.jobs.prune(olderThan: .seconds(job.retentionSeconds))
            context.logger.info("housekeeping: pruned finished jobs", metadata: ["deleted": "\(deleted)"])
        }
        handlers.register(TracePartitions.self) { job, context in
            try await context.client.traces.createPartitions(from: Date(), days: job.daysAhead + 1)
            if let retention = job.retentionSeconds {
                let dropped = try await context.client.traces.prune(olderThan: Date().addingTimeInterval(-retention))
                if !dropped.isEmpty { context.logger.info("housekeeping: dropped trace partitions", metadata: ["partitions": "\(dropped.joined(separator: ","))"]) }
            }
        }
        handlers.register(AnyJobHandler(AnalyzeChambers.self, returning: ChamberReport.self) { _, context in
            let report = try await self.analyze(context.client, logger: context.logger)
            if !report.bloated.isEmpty {
                context.logger.warning("housekeeping: tables with many dead rows (vacuum is behind)", metadata: ["tables": "\(report.bloated.joined(separator: ","))"])
            }
            return report
        })
    }

    /// Reads the chambers' table statistics, analyzes the stale ones and reports the bloat.
    static func analyze(_ client: PhylacteryClient, logger: Logger) async throws -> ChamberReport {
        let chambers = Chamber.allCases.map(\.schema)
        let rows = try await client.query("""
            SELECT schemaname::text, relname::text, n_live_tup, n_dead_tup, n_mod_since_analyze,
                   coalesce(last_analyze, last_autoanalyze) IS NULL, pg_total_relation_size(relid)
            FROM pg_stat_user_tables WHERE schemaname = ANY(\(chambers)) ORDER BY schemaname, relname
            """).collect()
        var tables: [ChamberReport.Table] = []
        for row in rows {
            let (schema, name, live, dead, modified, neverAnalyzed, bytes) = try row.decode((String, String, Int64, Int64, Int64, Bool, Int64).self)
            // Stale: never analyzed with rows in it, or a tenth of it changed since (at least 50 rows).
            let stale = (neverAnalyzed && live + dead > 0) || modified > max(50, live / 10)
            if stale {
                try await client.execute(PostgresQuery(unsafeSQL: "ANALYZE \(SQLIdentifier.quote(schema: schema, name: name))"))
            }
            let total = live + dead
            tables.append(ChamberReport.Table(
                name: "\(schema).\(name)", liveRows: live, deadRows: dead, deadRatio: total > 0 ? Double(dead) / Double(total) : 0,
                bytes: bytes, analyzed: stale))
        }
        let bloated = tables.filter { $0.deadRows >= 1000 && $0.deadRatio >= 0.2 }.map(\.name)
        return ChamberReport(tables: tables, bloated: bloated)
    }
}
