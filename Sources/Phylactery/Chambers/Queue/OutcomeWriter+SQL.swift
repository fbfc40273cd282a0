import Foundation
import PostgresNIO

/// The SQL of every job outcome — completion, failure, retry, discard, cancellation, snooze, give
/// back, a handler's result, and the completion a handler commits in its own transaction — in this
/// one place.
///
/// Every outcome is fenced: it applies only while the job is still in the state the attempt left it
/// in, under the token its claim returned, so a worker that lost its lease cannot overwrite the
/// attempt that replaced it. Rows another transaction holds locked are skipped, never waited for:
/// the writer tries them again later, and a shutdown is never held up behind a handler that still
/// holds its job's row.
///
/// An outcome the fence refuses is not always one whose lease passed on: the attempt may already be
/// settled under its own token — its job completed by the handler's own transaction whose COMMIT
/// answer never arrived (``PhylacteryError/Code/commitOutcomeUnknown``: the connection or the server
/// died, a failover), or this very outcome written by an earlier statement whose answer was lost.
/// The job's row decides (``Unapplied``): nothing is written twice, nothing is run again, and only a
/// true loss of the lease is reported as one.
extension OutcomeWriter {
    /// What one write did.
    struct Written: Sendable {
        /// Jobs whose outcome was applied.
        var applied: Set<UUID> = []
        /// Jobs whose outcome was not applied because another transaction held their row.
        var locked: Set<UUID> = []
        /// Jobs whose outcome was not applied because the attempt was already settled under its own
        /// token (its row left the state the attempt left it in, with the claim unchanged), with the
        /// state the row is in: `completed` when the handler's own transaction committed after all.
        var settled: [UUID: String] = [:]
        /// Jobs whose completion, committed by the handler's own transaction, is not in the database:
        /// lost with a primary whose standby had not received it (asynchronous replication).
        var completionLost: Set<UUID> = []
    }

    /// Writes `items` with one statement, whatever their kinds, and returns what it did. Outcomes
    /// neither applied nor locked were refused by the fence.
    static func record(_ items: [(job: ClaimedJob, outcome: JobOutcome)], client: PhylacteryClient, timeout: Duration) async throws -> Written {
        var doneIDs = [UUID](), doneTokens = [Int64](), doneResults = [RawJSONB?](), doneNotes = [String?](), doneAfter = [Bool]()
        var failIDs = [UUID](), failTokens = [Int64](), failMessages = [String](), failReasons = [String](), failDelays = [Double](), failDiscard = [Bool]()
        var backIDs = [UUID](), backTokens = [Int64](), backDelays = [Double]()
        for (job, outcome) in items {
            switch outcome {
            case .completed(let result, let note), .resultAfterTransaction(let result, let note):
                doneIDs.append(job.id); doneTokens.append(job.token); doneResults.append(result); doneNotes.append(note)
                if case .resultAfterTransaction = outcome { doneAfter.append(true) } else { doneAfter.append(false) }
            case .failed(let message, let reason, let delay, let discard):
                failIDs.append(job.id); failTokens.append(job.token); failMessages.append(StorableText.sanitized(message))
                failReasons.append(reason.rawValue); failDelays.append(delay); failDiscard.append(discard)
            case .snoozed(let delay):
                backIDs.append(job.id); backTokens.append(job.token); backDelays.append(delay)
            case .released:
                backIDs.append(job.id); backTokens.append(job.token); backDelays.append(0)
            }
        }
        let cancelled = JobFailureReason.cancelled.rawValue, superseded = JobFailureReason.superseded.rawValue
        let unstorable = JobFailureReason.unstorableOutcome.rawValue
        let duplicate = QueueStore.waitingDuplicateExists
        let rows = try await client.rows("""
            WITH done AS (
                SELECT u.id, u.result, u.note, u.after_tx
                FROM unnest(\(doneIDs)::uuid[], \(doneTokens)::int8[], \(NullableArray(doneResults))::jsonb[], \(NullableArray(doneNotes))::text[],
                            \(doneAfter)::bool[]) AS u(id, token, result, note, after_tx)
                JOIN queue.jobs j ON j.id = u.id AND j.claims = u.token AND j.state = CASE WHEN u.after_tx THEN 'completed' ELSE 'running' END
                FOR NO KEY UPDATE OF j SKIP LOCKED
            ), completed AS (
                UPDATE queue.jobs j SET state = 'completed',
                    finalized_at = CASE WHEN d.after_tx THEN j.finalized_at ELSE now() END,
                    lease_expires_at = NULL, result = d.result,
                    errors = CASE WHEN d.note IS NULL THEN j.errors ELSE j.errors || jsonb_build_array(jsonb_build_object(
                        'attempt', j.attempt, 'at', now(), 'message', d.note, 'reason', \(unstorable)::text)) END,
                    updated_at = now()
                FROM done d WHERE j.id = d.id
                RETURNING j.id
            ), failing AS (
                SELECT u.id, u.message, u.reason, u.delay, u.discard
                FROM unnest(\(failIDs)::uuid[], \(failTokens)::int8[], \(failMessages)::text[], \(failReasons)::text[],
                            \(failDelays)::float8[], \(failDiscard)::bool[]) AS u(id, token, message, reason, delay, discard)
                JOIN queue.jobs j ON j.id = u.id AND j.claims = u.token AND j.state = 'running'
                FOR NO KEY UPDATE OF j SKIP LOCKED
            ), failed AS (
                UPDATE queue.jobs j SET
                    state = CASE WHEN u.discard OR j.cancel_requested
                                     THEN (CASE WHEN u.reason = \(cancelled)::text OR j.cancel_requested THEN 'cancelled' ELSE 'discarded' END)
                                 WHEN j.attempt >= j.max_attempts THEN 'discarded'
                                 WHEN \(unescaped: duplicate) THEN 'discarded'
                                 ELSE 'available' END,
                    scheduled_at = CASE WHEN u.discard OR j.cancel_requested OR j.attempt >= j.max_attempts THEN j.scheduled_at
                                        ELSE now() + make_interval(secs => u.delay) END,
                    finalized_at = CASE WHEN u.discard OR j.cancel_requested OR j.attempt >= j.max_attempts OR \(unescaped: duplicate) THEN now() END,
                    lease_expires_at = NULL,
                    errors = j.errors || jsonb_build_array(jsonb_build_object(
                        'attempt', j.attempt, 'at', now(), 'message', u.message,
                        'reason', CASE WHEN \(unescaped: duplicate) AND NOT u.discard AND NOT j.cancel_requested AND j.attempt < j.max_attempts
                                       THEN \(superseded)::text ELSE u.reason END)),
                    updated_at = now()
                FROM failing u WHERE j.id = u.id
                RETURNING j.id
            ), giving_back AS (
                SELECT u.id, u.delay
                FROM unnest(\(backIDs)::uuid[], \(backTokens)::int8[], \(backDelays)::float8[]) AS u(id, token, delay)
                JOIN queue.jobs j ON j.id = u.id AND j.claims = u.token AND j.state = 'running'
                FOR NO KEY UPDATE OF j SKIP LOCKED
            ), given_back AS (
                -- Neither a snooze nor a give-back counts the attempt; a give-back runs again at once.
                UPDATE queue.jobs j SET
                    state = CASE WHEN j.cancel_requested THEN 'cancelled' WHEN \(unescaped: duplicate) THEN 'discarded' ELSE 'available' END,
                    finalized_at = CASE WHEN j.cancel_requested OR \(unescaped: duplicate) THEN now() END,
                    attempt = j.attempt - 1, scheduled_at = now() + make_interval(secs => u.delay),
                    lease_expires_at = NULL, updated_at = now()
                FROM giving_back u WHERE j.id = u.id
                RETURNING j.id
            )
            SELECT id FROM completed UNION ALL SELECT id FROM failed UNION ALL SELECT id FROM given_back
            """, timeout: timeout)
        var written = Written()
        for row in rows { written.applied.insert(try row.decode(UUID.self, context: .default)) }
        guard written.applied.count < items.count else { return written }
        // Not applied: refused by the fence, skipped because another transaction held the row, or
        // already settled under this attempt's token. The row says which.
        let missing = items.filter { !written.applied.contains($0.job.id) }
        let current = try await client.rows("""
            SELECT j.id, j.state, j.claims FROM queue.jobs j WHERE j.id = ANY(\(missing.map(\.job.id))::uuid[])
            """, timeout: timeout)
        var found = [UUID: (state: String, claims: Int64)]()
        for row in current {
            let (id, state, claims) = try row.decode((UUID, String, Int64).self, context: .default)
            found[id] = (state, claims)
        }
        for item in missing {
            guard let row = found[item.job.id] else { continue }
            switch Self.unapplied(item.outcome, token: item.job.token, state: row.state, claims: row.claims) {
            case .locked: written.locked.insert(item.job.id)
            case .settled: written.settled[item.job.id] = row.state
            case .completionLost: written.completionLost.insert(item.job.id)
            case .refused: break
            }
        }
        return written
    }

    /// Why an outcome was not applied, from its job's row as it is now.
    enum Unapplied: Equatable {
        /// The row is still where the attempt left it: another transaction held it locked.
        case locked
        /// The claim is unchanged but the row moved on: the attempt was settled under its own token.
        case settled
        /// The claim changed: the lease had passed to another attempt (or the job is gone).
        case refused
        /// The handler's own transaction committed the completion, yet the row, under the same claim,
        /// is still running: the commit was lost with a primary whose standby had not received it
        /// (asynchronous replication). The job runs again once given back or rescued.
        case completionLost
    }

    /// Classifies an outcome the statement did not apply (pure; see ``Unapplied``).
    static func unapplied(_ outcome: JobOutcome, token: Int64, state: String, claims: Int64) -> Unapplied {
        guard claims == token else { return .refused }
        if case .resultAfterTransaction = outcome {
            if state == JobState.completed.rawValue { return .locked }
            return state == JobState.running.rawValue ? .completionLost : .settled
        }
        return state == JobState.running.rawValue ? .locked : .settled
    }

    /// Takes the job's row for the handler's own transaction, under this attempt's fencing token;
    /// returns `false` when the lease has passed to another attempt. While the row is held, neither
    /// the rescuer nor another outcome can touch the job.
    static func holdLease(of id: UUID, token: Int64, in tx: Transaction, file: String, line: Int) async throws -> Bool {
        let held = try await tx.query("""
            SELECT 1 FROM queue.jobs WHERE id = \(id) AND claims = \(token) AND state = 'running' FOR NO KEY UPDATE
            """, file: file, line: line).collect()
        return !held.isEmpty
    }

    /// Completes the job inside the handler's own transaction, so the effect and the completion
    /// commit together (``JobContext/transaction(file:line:_:)``). The row is held (``holdLease(of:token:in:file:line:)``).
    static func complete(_ id: UUID, token: Int64, in tx: Transaction, file: String, line: Int) async throws {
        try await tx.execute("""
            UPDATE queue.jobs SET state = 'completed', finalized_at = now(), lease_expires_at = NULL, updated_at = now()
            WHERE id = \(id) AND claims = \(token)
            """, file: file, line: line)
    }
}
