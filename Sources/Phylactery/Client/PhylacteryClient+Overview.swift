public import Foundation
import PostgresNIO

extension PhylacteryClient {
    /// The server's state for an operator (``ServerOverview``): versions, sizes by schema,
    /// connections, WAL archiving, autovacuum on the `busiestTables` most modified tables, the
    /// migration head, and jobs completed and spans recorded in each of the last `activityMinutes`
    /// minutes. Read-only; a handful of statements, each over the statistics views or an index
    /// (the activity series reads the jobs' `finalized_at` index and the spans' block-range index).
    ///
    /// - Throws: ``PhylacteryError/Code/invalidArgument`` for `busiestTables` outside 0…100 or
    ///   `activityMinutes` outside 1…1440.
    public func serverOverview(busiestTables: Int = 10, activityMinutes: Int = 60) async throws -> ServerOverview {
        guard (0...100).contains(busiestTables), (1...1440).contains(activityMinutes) else {
            throw PhylacteryError(.invalidArgument, "busiestTables must be 0…100 and activityMinutes 1…1440; got \(busiestTables) and \(activityMinutes)")
        }
        return try await self.withConnection { connection in
            func rows(_ query: PostgresQuery) async throws -> [PostgresRow] {
                try await connection.query(query, logger: self.logger).collect()
            }
            let server = try await rows("""
                SELECT current_setting('server_version'), current_setting('server_version_num')::int8,
                       (SELECT extversion FROM pg_extension WHERE extname = 'vector'),
                       current_database()::text, pg_database_size(current_database())::int8,
                       current_setting('max_connections')::int8, current_setting('autovacuum')::bool, current_setting('archive_mode'),
                       to_regclass('public.phylactery_migrations') IS NOT NULL, to_regclass('queue.jobs') IS NOT NULL,
                       to_regclass('traces.spans') IS NOT NULL, now()
                """)
            guard let first = server.first else { throw PhylacteryError(.invalidArgument, "the server returned no row for its settings") }
            let (version, versionNumber, pgvector, database, databaseBytes, maxConnections, autovacuum, archiveMode, hasLedger, hasJobs, hasSpans, now) =
                try first.decode((String, Int64, String?, String, Int64, Int64, Bool, String, Bool, Bool, Bool, Date).self)

            let chambers = try await rows("""
                SELECT n.nspname::text, count(*) FILTER (WHERE NOT c.relispartition)::int8,
                       coalesce(sum(pg_total_relation_size(c.oid)) FILTER (WHERE c.relkind IN ('r', 'm')), 0)::int8
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname <> 'information_schema'
                  AND n.nspname NOT LIKE 'pg\\_%'
                GROUP BY 1 ORDER BY 3 DESC, 1
                """).map { row in
                let (schema, tables, bytes) = try row.decode((String, Int64, Int64).self)
                return ServerOverview.ChamberSize(schema: schema, tables: Int(tables), bytes: bytes)
            }

            guard let activityRow = try await rows("""
                SELECT count(*) FILTER (WHERE backend_type = 'client backend')::int8,
                       count(*) FILTER (WHERE backend_type = 'client backend' AND state = 'active')::int8,
                       count(*) FILTER (WHERE backend_type = 'client backend' AND state = 'idle')::int8,
                       count(*) FILTER (WHERE backend_type = 'client backend' AND state LIKE 'idle in transaction%')::int8,
                       count(*) FILTER (WHERE backend_type = 'client backend' AND wait_event_type = 'Lock')::int8,
                       count(*) FILTER (WHERE backend_type = 'client backend' AND datname = current_database())::int8,
                       count(*) FILTER (WHERE backend_type = 'autovacuum worker')::int8
                FROM pg_stat_activity
                """).first else { throw PhylacteryError(.invalidArgument, "pg_stat_activity returned no row") }
            let (total, active, idle, idleInTransaction, waiting, here, workers) = try activityRow.decode((Int64, Int64, Int64, Int64, Int64, Int64, Int64).self)
            let connections = ServerOverview.Connections(
                total: Int(total), active: Int(active), idle: Int(idle), idleInTransaction: Int(idleInTransaction),
                waitingForLock: Int(waiting), thisDatabase: Int(here), maximum: Int(maxConnections))

            var archiving = ServerOverview.WALArchiving(mode: archiveMode, archivedCount: 0, failedCount: 0)
            if let row = try await rows("""
                SELECT archived_count, last_archived_wal, last_archived_time, failed_count, last_failed_wal, last_failed_time FROM pg_stat_archiver
                """).first {
                let (archived, lastArchived, lastArchivedAt, failed, lastFailed, lastFailedAt) = try row.decode((Int64, String?, Date?, Int64, String?, Date?).self)
                archiving = ServerOverview.WALArchiving(
                    mode: archiveMode, archivedCount: Int(archived), lastArchivedWAL: lastArchived, lastArchivedAt: lastArchivedAt,
                    failedCount: Int(failed), lastFailedWAL: lastFailed, lastFailedAt: lastFailedAt)
            }

            // Autovacuum vacuums a table once its dead rows pass threshold + scale factor × rows
            // (each from the table's own settings when it has them), capped since PostgreSQL 18 by
            // autovacuum_vacuum_max_threshold (-1: no cap).
            let tables = try await rows("""
                WITH t AS (
                    SELECT s.schemaname::text AS schema, s.relname::text AS name, s.n_live_tup, s.n_dead_tup,
                           s.n_tup_ins + s.n_tup_upd + s.n_tup_del AS modifications, s.last_autovacuum, s.last_autoanalyze, s.autovacuum_count,
                           greatest(c.reltuples, 0)::float8 AS rows,
                           (SELECT option_value FROM pg_options_to_table(c.reloptions) WHERE option_name = 'autovacuum_vacuum_threshold')::float8 AS own_threshold,
                           (SELECT option_value FROM pg_options_to_table(c.reloptions) WHERE option_name = 'autovacuum_vacuum_scale_factor')::float8 AS own_scale,
                           (SELECT option_value FROM pg_options_to_table(c.reloptions) WHERE option_name = 'autovacuum_enabled')::bool AS own_enabled
                    FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
                    ORDER BY modifications DESC, s.n_dead_tup DESC, 1, 2 LIMIT \(Int64(busiestTables)))
                SELECT schema, name, n_live_tup, n_dead_tup, modifications,
                       (CASE WHEN coalesce(current_setting('autovacuum_vacuum_max_threshold', true)::float8, -1) >= 0
                             THEN least(coalesce(own_threshold, current_setting('autovacuum_vacuum_threshold')::float8)
                                        + coalesce(own_scale, current_setting('autovacuum_vacuum_scale_factor')::float8) * rows,
                                        current_setting('autovacuum_vacuum_max_threshold', true)::float8)
                             ELSE coalesce(own_threshold, current_setting('autovacuum_vacuum_threshold')::float8)
                                  + coalesce(own_scale, current_setting('autovacuum_vacuum_scale_factor')::float8) * rows END)::int8,
                       coalesce(own_enabled, true), last_autovacuum, last_autoanalyze, autovacuum_count
                FROM t ORDER BY modifications DESC, n_dead_tup DESC, schema, name
                """).map { row in
                let (schema, name, live, dead, modifications, threshold, enabled, lastVacuum, lastAnalyze, count) =
                    try row.decode((String, String, Int64, Int64, Int64, Int64, Bool, Date?, Date?, Int64).self)
                return ServerOverview.TableVacuum(
                    schema: schema, table: name, liveTuples: live, deadTuples: dead,
                    deadRatio: live + dead > 0 ? Double(dead) / Double(live + dead) : 0, modifications: modifications,
                    vacuumThreshold: threshold, autovacuumEnabled: autovacuum && enabled, lastAutovacuum: lastVacuum,
                    lastAutoanalyze: lastAnalyze, autovacuumCount: count)
            }

            var head: String?
            if hasLedger {
                head = try await rows("SELECT revision FROM public.phylactery_migrations ORDER BY position DESC LIMIT 1").first?.decode(String.self)
            }

            // The series: one row per minute (generate_series), the counts joined in; each count reads
            // only the window through an index.
            let jobs = hasJobs ? """
                SELECT date_trunc('minute', finalized_at) AS minute, count(*) AS n FROM queue.jobs
                WHERE finalized_at >= (SELECT first FROM w) AND finalized_at IS NOT NULL AND state = 'completed' GROUP BY 1
                """ : "SELECT NULL::timestamptz AS minute, 0::int8 AS n WHERE false"
            let spans = hasSpans ? """
                SELECT date_trunc('minute', to_timestamp(start_us / 1000000.0)) AS minute, count(*) AS n FROM traces.spans
                WHERE start_us >= (SELECT (extract(epoch FROM first) * 1000000)::int8 FROM w) GROUP BY 1
                """ : "SELECT NULL::timestamptz AS minute, 0::int8 AS n WHERE false"
            let activity = try await rows(PostgresQuery(unsafeSQL: """
                WITH w AS (SELECT date_trunc('minute', now()) - make_interval(mins => $1 - 1) AS first),
                j AS (\(jobs)),
                s AS (\(spans))
                SELECT m.minute, coalesce(j.n, 0)::int8, coalesce(s.n, 0)::int8
                FROM generate_series((SELECT first FROM w), date_trunc('minute', now()), interval '1 minute') AS m(minute)
                LEFT JOIN j ON j.minute = m.minute LEFT JOIN s ON s.minute = m.minute
                ORDER BY m.minute
                """, binds: PostgresBindings(values: Int32(activityMinutes)))).map { row in
                let (minute, completed, recorded) = try row.decode((Date, Int64, Int64).self)
                return ServerOverview.ActivityMinute(minute: minute, jobsCompleted: Int(completed), spansRecorded: Int(recorded))
            }

            return ServerOverview(
                serverVersion: version, serverVersionNumber: Int(versionNumber), pgvectorVersion: pgvector, database: database,
                databaseBytes: databaseBytes, chambers: chambers, connections: connections, walArchiving: archiving,
                autovacuumEnabled: autovacuum, autovacuumWorkers: Int(workers), busiestTables: tables, migrationHead: head,
                activity: activity, readAt: now)
        }
    }
}
