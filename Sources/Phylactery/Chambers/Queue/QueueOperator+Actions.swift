public import Foundation
import PostgresNIO

extension QueueOperator {
    /// What ``discard(_:)`` and ``runNow(_:)`` did to one job.
    public enum ActionResult: String, Sendable, Hashable, Codable {
        /// The job changed as asked.
        case done
        /// The job was in a state the action does not apply to; nothing changed.
        case notApplicable = "not_applicable"
    }

    /// Discards a waiting job: it will not run, and stays listed as `discarded` (with an error saying
    /// the operator discarded it) until pruned. A running job is left alone (cancel it instead); a
    /// finished one is already final. ``PhylacteryError/Code/notFound`` if there is no such job.
    @discardableResult
    public func discard(_ id: UUID) async throws -> ActionResult {
        try await self.client.transaction { tx in
            let rows = try await tx.query("SELECT state FROM queue.jobs WHERE id = \(id) FOR UPDATE").collect()
            guard let row = rows.first else { throw PhylacteryError(.notFound, "no job has the id \(id)") }
            guard try row.decode(String.self, context: .default) == JobState.available.rawValue else { return .notApplicable }
            try await tx.execute(Self.discardSQL(ids: [id]))
            return .done
        }
    }

    /// Makes a waiting job due now (a scheduled job, or one backing off before its next attempt), and
    /// wakes the workers of its queue. Other states are left alone.
    @discardableResult
    public func runNow(_ id: UUID) async throws -> ActionResult {
        try await self.client.transaction { tx in
            let rows = try await tx.query("SELECT state FROM queue.jobs WHERE id = \(id) FOR UPDATE").collect()
            guard let row = rows.first else { throw PhylacteryError(.notFound, "no job has the id \(id)") }
            guard try row.decode(String.self, context: .default) == JobState.available.rawValue else { return .notApplicable }
            try await tx.execute(Self.runNowSQL(ids: [id]))
            return .done
        }
    }

    /// An action applied to every job a filter selects.
    public enum BulkAction: String, Sendable, Hashable, Codable, CaseIterable {
        /// Finished jobs back in their queue (as ``retry(_:)``); running ones are skipped.
        case retry
        /// Waiting jobs cancelled, running ones asked to cancel (as ``cancel(_:)``).
        case cancel
        /// Waiting jobs discarded (as ``discard(_:)``).
        case discard
        /// Waiting jobs made due now (as ``runNow(_:)``).
        case runNow = "run-now"

        /// The states the action changes.
        var states: [String] {
            switch self {
            case .retry: [JobState.completed, .cancelled, .discarded, .available].map(\.rawValue)
            case .cancel: [JobState.available, .running].map(\.rawValue)
            case .discard, .runNow: [JobState.available.rawValue]
            }
        }
    }

    /// Applies `action` to every job `filter` selects, in batches of at most `batchSize` rows (each
    /// its own transaction, so no statement holds many locks for long), newest first. Jobs another
    /// transaction holds are skipped. Returns how many jobs changed.
    @discardableResult
    public func bulk(_ action: BulkAction, _ filter: JobFilter, batchSize: Int = 1000) async throws -> Int {
        guard batchSize > 0 else { throw PhylacteryError(.invalidArgument, "batchSize must be positive (got \(batchSize))") }
        var cursor: UUID?
        var changed = 0
        while true {
            let (batch, last): (Int, UUID?) = try await self.client.transaction { tx in
                let picked = try await tx.query(Self.filtered(
                    "SELECT id, state FROM queue.jobs WHERE", filter, before: cursor,
                    tail: "ORDER BY id DESC LIMIT $6 FOR UPDATE SKIP LOCKED") { $0.append(batchSize) }).collect()
                let rows = try picked.map { try $0.decode((UUID, String).self, context: .default) }
                let ids = rows.filter { action.states.contains($0.1) }.map(\.0)
                if !ids.isEmpty {
                    switch action {
                    case .retry:
                        try await tx.execute("""
                            UPDATE queue.jobs SET state = 'available', scheduled_at = now(), finalized_at = NULL, cancel_requested = false,
                                max_attempts = greatest(max_attempts, attempt + 1), updated_at = now()
                            WHERE id = ANY(\(ids)) AND state <> 'running'
                            """)
                        try await tx.execute("SELECT pg_notify('\(unescaped: QueueChannel.wake)', queue) FROM (SELECT DISTINCT queue FROM queue.jobs WHERE id = ANY(\(ids))) q")
                    case .cancel:
                        let running = rows.filter { $0.1 == JobState.running.rawValue }.map(\.0)
                        let waiting = rows.filter { $0.1 == JobState.available.rawValue }.map(\.0)
                        try await tx.execute("""
                            UPDATE queue.jobs SET state = 'cancelled', finalized_at = now(), updated_at = now(),
                                errors = errors || jsonb_build_array(jsonb_build_object('attempt', attempt, 'at', now(), 'reason', 'cancelled', 'message', 'cancelled before it ran'))
                            WHERE id = ANY(\(waiting)) AND state = 'available'
                            """)
                        try await tx.execute("UPDATE queue.jobs SET cancel_requested = true, updated_at = now() WHERE id = ANY(\(running)) AND state = 'running'")
                        try await tx.execute("SELECT pg_notify('\(unescaped: QueueChannel.cancel)', id::text) FROM unnest(\(running)::uuid[]) AS r(id)")
                    case .discard:
                        try await tx.execute(Self.discardSQL(ids: ids))
                    case .runNow:
                        try await tx.execute(Self.runNowSQL(ids: ids))
                    }
                }
                return (ids.count, rows.count == batchSize ? rows.last?.0 : nil)
            }
            changed += batch
            guard let last else { return changed }
            cursor = last
        }
    }

    static func discardSQL(ids: [UUID]) -> PostgresQuery {
        """
        UPDATE queue.jobs SET state = 'discarded', finalized_at = now(), updated_at = now(),
            errors = errors || jsonb_build_array(jsonb_build_object('attempt', attempt, 'at', now(), 'reason', \(JobFailureReason.discarded.rawValue)::text, 'message', 'discarded by the operator'))
        WHERE id = ANY(\(ids)) AND state = 'available'
        """
    }

    static func runNowSQL(ids: [UUID]) -> PostgresQuery {
        """
        WITH due AS (
            UPDATE queue.jobs SET scheduled_at = least(scheduled_at, now()), updated_at = now()
            WHERE id = ANY(\(ids)) AND state = 'available' RETURNING queue
        )
        SELECT pg_notify('\(unescaped: QueueChannel.wake)', queue) FROM (SELECT DISTINCT queue FROM due) q
        """
    }
}
