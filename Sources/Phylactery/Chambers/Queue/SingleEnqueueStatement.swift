import Foundation
package import PostgresNIO

/// The autocommitted enqueue of one job (``PhylacteryClient/enqueue(_:options:file:line:)`` outside a
/// transaction): one statement, one round trip, prepared once per pooled connection.
///
/// The insert, the unique-key check (`ON CONFLICT … DO NOTHING` on the partial unique index, exactly
/// as the batch insert does) and the wake-up `NOTIFY` are the one statement: the `pg_notify` call sits
/// in `RETURNING`, behind a `CASE` so it runs only for a row actually inserted, due now, while the
/// server's notification queue has room (``QueueChannel/notifyRoom``). A statement sent without
/// BEGIN/COMMIT is its own transaction, so the row and its notification commit together.
///
/// Returns one row (`id`, and the `void` of the notification) when the job was inserted, none when an
/// existing job holds its unique key.
package struct SingleEnqueueStatement: PostgresPreparedStatement {
    package typealias Row = PostgresRow

    /// Stable across processes, so a server's `pg_prepared_statements` shows what it is.
    package static let name = "phylactery_enqueue_one"

    /// What `$1`…`$9` are, in order (the columns of `queue.jobs` they go to).
    package static let parameters = ["id", "kind", "queue", "priority", "args", "max_attempts", "scheduled_at", "unique_key", "uniqueness"]

    package static let sql = """
        INSERT INTO queue.jobs (id, kind, queue, priority, args, max_attempts, scheduled_at, unique_key, uniqueness)
        VALUES ($1, $2, $3, $4, $5, $6, coalesce($7::timestamptz, now()), $8::text, $9::text)
        ON CONFLICT (kind, unique_key) WHERE \(JobRecord.uniquePredicate) DO NOTHING
        RETURNING id, CASE WHEN scheduled_at <= now() AND \(QueueChannel.notifyRoom) THEN pg_notify('\(QueueChannel.wake)', queue) END
        """

    // Typed explicitly, so the statement prepared on a connection does not depend on which values
    // (a `NULL` schedule or key) its first call happened to carry.
    package static let bindingDataTypes: [PostgresDataType] = [.uuid, .text, .text, .int2, .jsonb, .int4, .timestamptz, .text, .text]

    let job: PendingJob

    init(_ job: PendingJob) { self.job = job }

    package func makeBindings() throws -> PostgresBindings {
        var binds = PostgresBindings(capacity: Self.parameters.count)
        binds.append(self.job.id)
        binds.append(self.job.kind)
        binds.append(self.job.queue)
        binds.append(self.job.priority)
        try binds.append(self.job.arguments)
        binds.append(self.job.maxAttempts)
        binds.append(self.job.scheduledAt)
        binds.append(self.job.uniqueKey)
        binds.append(self.job.uniqueness?.rawValue)
        return binds
    }

    package func decodeRow(_ row: PostgresRow) throws -> PostgresRow { row }

    /// The inserted id from the statement's rows; `nil` when an existing job holds the unique key.
    static func insertedID(_ rows: [PostgresRow]) throws -> UUID? {
        guard let row = rows.first, let cell = row.first else { return nil }
        return try cell.decode(UUID.self, context: .default)
    }
}
