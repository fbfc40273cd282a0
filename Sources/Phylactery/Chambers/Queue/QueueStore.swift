import Foundation
import PostgresNIO
import Tracing

/// A job a worker holds under a lease.
struct ClaimedJob: Sendable {
    let id: UUID
    let kind: String
    let queue: String
    let args: RawJSONB
    /// The attempt this claim runs (1 for the first).
    let attempt: Int
    let maxAttempts: Int
    /// The fencing token: the job's claim count when this claim was made.
    let token: Int64
    let scheduledAt: Date
    /// When the claim statement was sent and when it returned (the job's `queue.claim` span).
    var claimStarted = DefaultTracerClock.now
    var claimEnded = DefaultTracerClock.now
}

/// The SQL of the queue's life cycle besides outcomes (those are ``OutcomeWriter``'s): claim,
/// heartbeat, rescue, prune.
struct QueueStore: Sendable {
    let client: PhylacteryClient

    init(client: PhylacteryClient) { self.client = client }

    private static let claimedColumns = "j.id, j.kind, j.queue, j.args, j.attempt, j.max_attempts, j.claims, j.scheduled_at"

    private static func claimSQL(queue: String, limit: Int, lease: Double, worker: String, skipping skipped: SkippedKinds) -> PostgresQuery {
        var binds = PostgresBindings()
        binds.append(queue)
        binds.append(limit)
        binds.append(lease)
        binds.append(worker)
        // Kinds left for other workers (a disabled extension's) are filtered only when there are any,
        // so the usual claim stays the plain index scan.
        var filter = ""
        if !skipped.isEmpty {
            binds.append(skipped.kinds.sorted())
            binds.append(skipped.prefixes.sorted())
            filter = " AND kind <> ALL($5::text[]) AND NOT EXISTS (SELECT 1 FROM unnest($6::text[]) AS p(prefix) WHERE starts_with(kind, p.prefix))"
        }
        return PostgresQuery(unsafeSQL: """
            WITH picked AS (
                SELECT id FROM queue.jobs
                WHERE state = 'available' AND queue = $1 AND scheduled_at <= now()\(filter)
                ORDER BY priority, scheduled_at, id
                LIMIT $2
                FOR UPDATE SKIP LOCKED
            )
            UPDATE queue.jobs j
            SET state = 'running', attempt = j.attempt + 1, claims = j.claims + 1, attempted_at = now(),
                lease_expires_at = now() + make_interval(secs => $3), worker = $4, updated_at = now()
            FROM picked WHERE j.id = picked.id
            RETURNING \(claimedColumns)
            """, binds: binds)
    }

    private static func decodeClaimed(_ rows: [PostgresRow]) throws -> [ClaimedJob] {
        try rows.map { row in
            let (id, kind, queue, args, attempt, maxAttempts, token, scheduledAt) = try row.decode(
                (UUID, String, String, RawJSONB, Int32, Int32, Int64, Date).self, context: .default)
            return ClaimedJob(id: id, kind: kind, queue: queue, args: args, attempt: Int(attempt), maxAttempts: Int(maxAttempts), token: token, scheduledAt: scheduledAt)
        }
    }

    /// Claims up to `limit` available jobs of `queue`, skipping rows other workers hold and jobs of
    /// the `skipped` kinds.
    func claim(queue: String, limit: Int, lease: Duration, worker: String, skipping skipped: SkippedKinds = SkippedKinds()) async throws -> [ClaimedJob] {
        guard limit > 0 else { return [] }
        let started = DefaultTracerClock.now
        let rows = try await self.client.rows(Self.claimSQL(queue: queue, limit: limit, lease: lease.seconds, worker: worker, skipping: skipped))
        return Self.stamped(try Self.decodeClaimed(rows), started: started)
    }

    private static func stamped(_ jobs: [ClaimedJob], started: DefaultTracerClock.Instant) -> [ClaimedJob] {
        let ended = DefaultTracerClock.now
        return jobs.map { job in
            var job = job
            job.claimStarted = started
            job.claimEnded = ended
            return job
        }
    }

    /// Claims under the queue's global limits: at most `concurrency` running across all processes
    /// and at most `rate.jobs` claims per `rate.interval`. Claimers of the queue take turns on the
    /// queue's window row, so the counts they read cannot race. Returns the jobs and, when the rate
    /// limit held some back, how long until the window reopens.
    func claimLimited(
        queue: String, limit: Int, lease: Duration, worker: String, globalConcurrency: Int?, rate: QueueRateLimit?,
        skipping skipped: SkippedKinds = SkippedKinds()
    ) async throws -> (jobs: [ClaimedJob], retryAfter: Duration?) {
        let started = DefaultTracerClock.now
        return try await self.client.transaction { tx in
            try await tx.execute("""
                INSERT INTO queue.windows (id, queue, window_started_at, claimed) VALUES (\(UUID.v7()), \(queue), now(), 0)
                ON CONFLICT (queue) DO NOTHING
                """)
            let window = try await tx.query("""
                SELECT extract(epoch FROM now() - window_started_at)::float8, claimed FROM queue.windows WHERE queue = \(queue) FOR UPDATE
                """).collect()
            var allowed = limit
            var retryAfter: Duration?
            var windowReset = false
            if let rate, let row = window.first {
                let (age, claimed) = try row.decode((Double, Int64).self, context: .default)
                let windowSeconds = rate.interval.seconds
                windowReset = age >= windowSeconds
                let used = windowReset ? 0 : Int(claimed)
                allowed = min(allowed, max(0, rate.jobs - used))
                if allowed == 0 { retryAfter = .milliseconds(Int64(max(1, (windowSeconds - age) * 1000))) }
            }
            if let globalConcurrency, allowed > 0 {
                let running = try await tx.query("SELECT count(*) FROM queue.jobs WHERE queue = \(queue) AND state = 'running'")
                    .collect().first?.decode(Int64.self, context: .default) ?? 0
                allowed = min(allowed, max(0, globalConcurrency - Int(running)))
            }
            guard allowed > 0 else { return ([], retryAfter) }
            let jobs = try Self.decodeClaimed(try await tx.query(Self.claimSQL(queue: queue, limit: allowed, lease: lease.seconds, worker: worker, skipping: skipped)).collect())
            if rate != nil {
                try await tx.execute("""
                    UPDATE queue.windows SET
                        window_started_at = CASE WHEN \(windowReset) THEN now() ELSE window_started_at END,
                        claimed = CASE WHEN \(windowReset) THEN 0 ELSE claimed END + \(Int64(jobs.count)),
                        updated_at = now()
                    WHERE queue = \(queue)
                    """)
            }
            return (Self.stamped(jobs, started: started), nil)
        }
    }

    /// Extends the leases of running jobs still held under these tokens. Returns the ids whose lease
    /// was extended and, among them, those whose cancellation was requested. Jobs whose row is locked
    /// (a handler's own transaction holds it) are skipped: nobody can rescue them meanwhile.
    ///
    /// A batch refused on one row's data is split so the other leases are still extended
    /// (``BatchSplitter``); a transient failure throws, and the next beat tries again.
    func heartbeat(_ held: [(id: UUID, token: Int64)], lease: Duration) async throws -> (extended: Set<UUID>, cancelRequested: Set<UUID>) {
        guard !held.isEmpty else { return ([], []) }
        let report = await BatchSplitter.write(held) { batch in
            try await self.client.rows("""
                WITH held AS (
                    SELECT j.id FROM queue.jobs j JOIN unnest(\(batch.map(\.id))::uuid[], \(batch.map(\.token))::int8[]) AS u(id, token)
                        ON j.id = u.id AND j.claims = u.token
                    WHERE j.state = 'running'
                    FOR NO KEY UPDATE OF j SKIP LOCKED
                )
                UPDATE queue.jobs j SET lease_expires_at = now() + make_interval(secs => \(lease.seconds))
                FROM held WHERE j.id = held.id
                RETURNING j.id, j.cancel_requested
                """)
        }
        if let error = report.transientError { throw error }
        if let (first, error) = report.rejected.first {
            self.client.logger.warning("a job's lease could not be extended; its row refuses the update", metadata: [
                "job": "\(first.id)", "rejected": "\(report.rejected.count)", "error": "\(error)",
            ])
        }
        var extended = Set<UUID>(), cancelled = Set<UUID>()
        for row in report.written.joined() {
            let (id, cancel) = try row.decode((UUID, Bool).self, context: .default)
            extended.insert(id)
            if cancel { cancelled.insert(id) }
        }
        return (extended, cancelled)
    }

    /// A job unique "while waiting" that goes back to waiting would collide with a duplicate enqueued
    /// while it ran; the waiting duplicate does the same work, so this one is discarded instead.
    static let waitingDuplicateExists = """
        (j.uniqueness = 'waiting' AND EXISTS (SELECT 1 FROM queue.jobs d WHERE d.kind = j.kind AND d.unique_key = j.unique_key \
        AND d.state = 'available' AND d.id <> j.id))
        """

    /// Returns running jobs whose lease ran out (their worker died or stalled) to the queue, counting
    /// the attempt (or discarding the job when it was the last), at most `limit` at a time. A job
    /// whose cancellation was requested is cancelled instead: it never runs again.
    ///
    /// Jobs the calling process holds itself (`excluding`: running here, or with their outcome not
    /// written yet) are left alone even when their lease ran out: the process is alive, and its
    /// heartbeat extends them as soon as it reaches the server again — after a server restart or a
    /// failover that outlasted a lease, say. Other processes still rescue them by the normal rule.
    func rescue(limit: Int = 1000, excluding held: [UUID] = []) async throws -> [(id: UUID, state: JobState)] {
        let rows = try await self.client.rows("""
            WITH expired AS (
                SELECT id FROM queue.jobs
                WHERE state = 'running' AND lease_expires_at < now() AND id <> ALL(\(held)::uuid[])
                LIMIT \(limit)
                FOR NO KEY UPDATE SKIP LOCKED
            )
            UPDATE queue.jobs j SET
                state = CASE WHEN j.cancel_requested THEN 'cancelled'
                             WHEN j.attempt >= j.max_attempts OR \(unescaped: Self.waitingDuplicateExists) THEN 'discarded'
                             ELSE 'available' END,
                finalized_at = CASE WHEN j.cancel_requested OR j.attempt >= j.max_attempts OR \(unescaped: Self.waitingDuplicateExists) THEN now() END,
                scheduled_at = CASE WHEN j.cancel_requested OR j.attempt >= j.max_attempts THEN j.scheduled_at ELSE now() END,
                errors = j.errors || jsonb_build_array(jsonb_build_object(
                    'attempt', j.attempt, 'at', now(), 'reason', \(JobFailureReason.leaseExpired.rawValue)::text,
                    'message', 'the lease of worker ' || coalesce(j.worker, '?') || ' expired at ' || j.lease_expires_at::text || ' (worker presumed dead)')),
                lease_expires_at = NULL, updated_at = now()
            FROM expired WHERE j.id = expired.id
            RETURNING j.id, j.state
            """)
        return try rows.map { row in
            let (id, state) = try row.decode((UUID, String).self, context: .default)
            return (id, JobState(rawValue: state) ?? .available)
        }
    }

    /// Gives back, without counting the attempt, the jobs `worker` holds running on `queue` that the
    /// calling process does not hold (`holding`: running here, or with their outcome not written yet).
    /// Returns how many.
    ///
    /// Such jobs were claimed by a claim whose answer never arrived — the connection or the server
    /// died after the claim committed (a server restart, a failover to a standby that had received
    /// it) — or finished by their handler in a transaction whose completion was lost with a primary
    /// whose asynchronous standby had not received it. No handler runs them, so instead of waiting
    /// for their leases to run out, the claim loop gives them back before it claims again (after a
    /// failed claim, and after the client's primary changed). Only the claim loop of `queue` calls
    /// this, between its own claims, so no claim of `worker` is in flight meanwhile; worker names must
    /// be unique among running processes (``GhoulsConfiguration/workerName``). Rows another
    /// transaction holds are skipped (the rescuer gets them later if need be).
    func giveBackUnheld(queue: String, worker: String, holding held: [UUID]) async throws -> Int {
        let rows = try await self.client.rows("""
            WITH unheld AS (
                SELECT id FROM queue.jobs
                WHERE state = 'running' AND queue = \(queue) AND worker = \(worker) AND id <> ALL(\(held)::uuid[])
                FOR NO KEY UPDATE SKIP LOCKED
            )
            UPDATE queue.jobs j SET
                state = CASE WHEN j.cancel_requested THEN 'cancelled' WHEN \(unescaped: Self.waitingDuplicateExists) THEN 'discarded' ELSE 'available' END,
                finalized_at = CASE WHEN j.cancel_requested OR \(unescaped: Self.waitingDuplicateExists) THEN now() END,
                attempt = j.attempt - 1, scheduled_at = now(), lease_expires_at = NULL, updated_at = now()
            FROM unheld WHERE j.id = unheld.id
            RETURNING j.id
            """)
        return rows.count
    }

    /// Deletes finished jobs older than `retention`, `batchSize` rows per statement, so no statement
    /// holds locks for long. Returns the number deleted.
    func prune(olderThan retention: Duration, batchSize: Int = 5000) async throws -> Int {
        var total = 0
        while true {
            let rows = try await self.client.rows("""
                WITH old AS (
                    SELECT id FROM queue.jobs
                    WHERE finalized_at IS NOT NULL AND finalized_at < now() - make_interval(secs => \(retention.seconds))
                    ORDER BY finalized_at LIMIT \(batchSize)
                    FOR UPDATE SKIP LOCKED
                )
                DELETE FROM queue.jobs j USING old WHERE j.id = old.id RETURNING 1
                """)
            total += rows.count
            if rows.count < batchSize { return total }
        }
    }
}
