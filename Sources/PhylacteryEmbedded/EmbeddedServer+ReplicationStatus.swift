import Foundation
package import Logging
public import Phylactery
package import PostgresNIO

extension EmbeddedServer {
    /// How replication looks from one server, primary or standby (`phylactery db replica status`).
    public struct ReplicationStatus: Sendable {
        /// Whether the server writes (primary) or replays (standby).
        public enum Role: String, Sendable {
            case primary
            case standby
        }

        /// A standby connected to this server, as `pg_stat_replication` shows it.
        public struct ConnectedStandby: Sendable {
            /// Its `application_name` (Phylactery's standbys: their slot name).
            public var applicationName: String
            /// `streaming`, `catchup`, `startup`, `backup` or `stopping`.
            public var state: String
            /// `sync` (commits wait for it), `potential`, `quorum` or `async`.
            public var syncState: String
            /// The WAL position it has replayed, e.g. `0/3000060`.
            public var replayLSN: String?
            /// Bytes of WAL written here that it has not replayed yet.
            public var lagBytes: Int64?
            /// How long the newest WAL it acknowledged took to be applied there (`replay_lag`);
            /// `nil` once it has caught up and nothing is being written.
            public var replayLag: Duration?
        }

        /// A replication slot on this server (`pg_replication_slots`).
        public struct Slot: Sendable {
            public var name: String
            /// Whether a standby streams through it now.
            public var active: Bool
            /// `reserved`, `extended`, `unreserved` or `lost` (PostgreSQL's `wal_status`).
            public var walStatus: String?
            /// Bytes of WAL kept for it (from its restart position to now): what a stopped standby costs the primary's disk.
            public var retainedBytes: Int64?
        }

        /// What a standby knows about the primary it streams from (`pg_stat_wal_receiver` and the replay functions).
        public struct Upstream: Sendable {
            /// The WAL receiver's state (`streaming`, `starting`, `waiting`, …); `nil` when it is not running.
            public var receiverStatus: String?
            /// The primary it is connected to (host or socket directory, and port).
            public var sender: String?
            /// The slot it streams through.
            public var slotName: String?
            /// The newest WAL position received, and the newest replayed.
            public var receiveLSN: String?
            public var replayLSN: String?
            /// Received but not yet replayed, in bytes.
            public var lagBytes: Int64
            /// How far replay is behind the primary in time: since the last replayed commit while WAL
            /// waits to be replayed, zero when everything received is replayed.
            public var lag: Duration
            /// Whether replay is paused (`pg_wal_replay_pause()`).
            public var replayPaused: Bool
        }

        public var role: Role
        /// The timeline this server is on (a promotion starts a new one).
        public var timeline: Int
        /// Primary: the current WAL position; standby: the last replayed one.
        public var lsn: String
        /// The settings that make commits wait for standbys.
        public var synchronousStandbyNames: String
        public var synchronousCommit: String
        /// Standbys streaming from this server.
        public var standbys: [ConnectedStandby]
        /// Replication slots on this server.
        public var slots: [Slot]
        /// A standby's view of its primary; `nil` on a primary.
        public var upstream: Upstream?
    }

    /// Asks the running server how replication looks from it.
    ///
    /// - Throws: ``EmbeddedServerError`` when the server is not running or does not answer.
    public func replicationStatus() async throws(EmbeddedServerError) -> ReplicationStatus {
        guard case .running = self.pidFileState() else {
            throw EmbeddedServerError(.startFailed, "No server runs in \(configuration.home). Start it (`phylactery db start`) to see its replication.")
        }
        return try await self.withReplicationConnection(to: self.url.with(database: "postgres"), doing: "Reading the replication state of \(configuration.home)") { connection in
            try await Self.replicationStatus(on: connection, logger: logger)
        }
    }

    /// The queries of ``replicationStatus()``, on any connection with the right to read the
    /// replication views (a superuser, or a member of `pg_monitor`).
    package static func replicationStatus(on connection: PostgresConnection, logger: Logger) async throws -> ReplicationStatus {
        let head = try await connection.query("""
            SELECT pg_is_in_recovery(),
                   CASE WHEN pg_is_in_recovery() THEN COALESCE((SELECT received_tli FROM pg_stat_wal_receiver), (SELECT timeline_id FROM pg_control_checkpoint()))
                        ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END,
                   CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END::text,
                   current_setting('synchronous_standby_names'), current_setting('synchronous_commit')
            """, logger: logger).collect().first
        guard let head else { throw PhylacteryError(.invalidConfiguration, "The server returned no replication state.") }
        let (inRecovery, timeline, lsn, names, commit) = try head.decode((Bool, Int?, String?, String, String).self)
        var status = ReplicationStatus(
            role: inRecovery ? .standby : .primary, timeline: timeline ?? 0, lsn: lsn ?? "", synchronousStandbyNames: names,
            synchronousCommit: commit, standbys: [], slots: [], upstream: nil)
        // The position lags are measured against: the primary's current one, a cascading standby's replayed one.
        let here = inRecovery ? "pg_last_wal_replay_lsn()" : "pg_current_wal_lsn()"
        for try await row in try await connection.query(PostgresQuery(unsafeSQL: """
            SELECT application_name, state, sync_state, replay_lsn::text,
                   pg_wal_lsn_diff(\(here), replay_lsn)::int8, EXTRACT(epoch FROM replay_lag)::float8
            FROM pg_stat_replication ORDER BY application_name
            """), logger: logger) {
            let (name, state, sync, replay, lag, seconds) = try row.decode((String, String?, String?, String?, Int64?, Double?).self)
            status.standbys.append(.init(
                applicationName: name, state: state ?? "unknown", syncState: sync ?? "unknown", replayLSN: replay,
                lagBytes: lag, replayLag: seconds.map { Duration.milliseconds(Int64(($0 * 1000).rounded())) }))
        }
        for try await row in try await connection.query(PostgresQuery(unsafeSQL: """
            SELECT slot_name::text, active, wal_status, pg_wal_lsn_diff(\(here), restart_lsn)::int8
            FROM pg_replication_slots WHERE slot_type = 'physical' ORDER BY slot_name
            """), logger: logger) {
            let (name, active, walStatus, retained) = try row.decode((String, Bool, String?, Int64?).self)
            status.slots.append(.init(name: name, active: active, walStatus: walStatus, retainedBytes: retained))
        }
        guard inRecovery else { return status }
        let upstream = try await connection.query("""
            SELECT r.status, CASE WHEN r.sender_host IS NULL THEN NULL ELSE r.sender_host || ':' || r.sender_port END, r.slot_name,
                   pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text,
                   COALESCE(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0)::int8,
                   CASE WHEN pg_last_wal_receive_lsn() IS NULL OR pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() THEN 0
                        ELSE COALESCE(EXTRACT(epoch FROM now() - pg_last_xact_replay_timestamp()), 0) END::float8,
                   pg_is_wal_replay_paused()
            FROM (SELECT 1) AS one LEFT JOIN pg_stat_wal_receiver AS r ON true
            """, logger: logger).collect().first
        if let upstream {
            let (receiver, sender, slot, received, replayed, lagBytes, lagSeconds, paused) =
                try upstream.decode((String?, String?, String?, String?, String?, Int64, Double, Bool).self)
            status.upstream = .init(
                receiverStatus: receiver, sender: sender, slotName: slot, receiveLSN: received, replayLSN: replayed,
                lagBytes: lagBytes, lag: .milliseconds(Int64((max(0, lagSeconds) * 1000).rounded())), replayPaused: paused)
        }
        return status
    }
}
