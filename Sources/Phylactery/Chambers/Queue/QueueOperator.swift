public import Foundation
import PostgresNIO

extension PhylacteryClient {
    /// The operator's view of the queue: stats, listing, retry, cancel, prune.
    public var jobs: QueueOperator { QueueOperator(client: self) }
}

/// Looks at and steers jobs from outside the workers (the `phylactery queue` commands).
///
/// Listing and stats read the `kind` column and never decode arguments.
public struct QueueOperator: Sendable {
    let client: PhylacteryClient

    /// One line of ``stats()``: how many jobs of one queue are in one state.
    public struct StateCount: Sendable, Hashable {
        /// The queue.
        public var queue: String
        /// A ``JobState`` raw value, or `scheduled` for available jobs not yet due.
        public var state: String
        /// Jobs in it.
        public var count: Int
    }

    /// Per-queue figures.
    public struct QueueFigures: Sendable, Hashable {
        /// The queue.
        public var queue: String
        /// Seconds the oldest due, unclaimed job has waited (0 when none waits).
        public var oldestAvailableAge: Double
        /// Jobs completed in the last minute.
        public var completedLastMinute: Int
    }

    /// What ``stats()`` returns.
    public struct Stats: Sendable, Hashable {
        /// Counts by queue and state.
        public var counts: [StateCount]
        /// Figures by queue.
        public var queues: [QueueFigures]
    }

    /// Counts by queue and state, the oldest due job's age and last minute's throughput per queue:
    /// ``activeCounts()`` + ``finishedCounts()`` + ``figures(queues:)``.
    public func stats() async throws -> Stats {
        let counts = try await self.activeCounts() + self.finishedCounts()
        let figures = try await self.figures(queues: Set(counts.map(\.queue)))
        return Stats(counts: counts.sorted { ($0.queue, $0.state) < ($1.queue, $1.state) }, queues: figures)
    }

    /// Exact counts of the jobs still to run (`available`, `scheduled`: available but not yet due) and
    /// of the `running` ones, by queue: read off the partial claim and lease indexes, so they cost what
    /// the backlog costs, however many finished jobs the table keeps.
    public func activeCounts() async throws -> [StateCount] {
        let rows = try await self.client.query("""
            SELECT queue, CASE WHEN scheduled_at > now() THEN 'scheduled' ELSE 'available' END, count(*)
            FROM queue.jobs WHERE state = 'available' GROUP BY 1, 2
            UNION ALL
            SELECT queue, 'running', count(*) FROM queue.jobs WHERE state = 'running' GROUP BY 1
            """).collect()
        return try rows.map(Self.stateCount)
    }

    /// Exact counts of the finished jobs (`completed`, `cancelled`, `discarded`) by queue: a scan of
    /// every finished row, which grows with what the queue keeps until ``prune(olderThan:)`` (about a
    /// second per million rows here). The console refreshes it in the background instead of per page.
    public func finishedCounts() async throws -> [StateCount] {
        let rows = try await self.client.query("""
            SELECT queue, state, count(*) FROM queue.jobs
            WHERE state IN ('completed', 'cancelled', 'discarded') GROUP BY 1, 2
            """).collect()
        return try rows.map(Self.stateCount)
    }

    static func stateCount(_ row: PostgresRow) throws -> StateCount {
        let (queue, state, count) = try row.decode((String, String, Int64).self, context: .default)
        return StateCount(queue: queue, state: state, count: Int(count))
    }

    /// Per-queue figures for `queues` (and any queue with a due job or a completion in the last
    /// minute), sorted by queue: the oldest due job's wait (the claim index) and the completions of the
    /// last minute (the finished-jobs index).
    public func figures(queues: Set<String>) async throws -> [QueueFigures] {
        var byQueue: [String: QueueFigures] = [:]
        for queue in queues { byQueue[queue] = QueueFigures(queue: queue, oldestAvailableAge: 0, completedLastMinute: 0) }
        let waits = try await self.client.query("""
            SELECT queue, extract(epoch FROM now() - min(scheduled_at))::float8 FROM queue.jobs
            WHERE state = 'available' AND scheduled_at <= now() GROUP BY queue
            """).collect()
        for row in waits {
            let (queue, age) = try row.decode((String, Double).self, context: .default)
            byQueue[queue, default: QueueFigures(queue: queue, oldestAvailableAge: 0, completedLastMinute: 0)].oldestAvailableAge = max(age, 0)
        }
        let completions = try await self.client.query("""
            SELECT queue, count(*) FROM queue.jobs
            WHERE finalized_at > now() - interval '1 minute' AND state = 'completed' GROUP BY queue
            """).collect()
        for row in completions {
            let (queue, count) = try row.decode((String, Int64).self, context: .default)
            byQueue[queue, default: QueueFigures(queue: queue, oldestAvailableAge: 0, completedLastMinute: 0)].completedLastMinute = Int(count)
        }
        return byQueue.values.sorted { $0.queue < $1.queue }
    }

    /// A job as listings show it (no arguments).
    public struct Summary: Sendable, Hashable {
        public var id: UUID
        public var kind: String
        public var queue: String
        public var state: JobState
        public var priority: Int
        public var attempt: Int
        public var maxAttempts: Int
        public var scheduledAt: Date
        public var finalizedAt: Date?
        /// The last error's message, if any attempt failed.
        public var lastError: String?
    }

    /// Jobs, newest first, filtered by state, queue and kind.
    public func list(state: JobState? = nil, queue: String? = nil, kind: String? = nil, limit: Int = 50) async throws -> [Summary] {
        guard limit > 0 else { throw PhylacteryError(.invalidArgument, "limit must be positive (got \(limit))") }
        let rows = try await self.client.query("""
            SELECT \(unescaped: Self.summaryColumns)
            FROM queue.jobs
            WHERE (\(state?.rawValue)::text IS NULL OR state = \(state?.rawValue))
              AND (\(queue)::text IS NULL OR queue = \(queue))
              AND (\(kind)::text IS NULL OR kind = \(kind))
            ORDER BY id DESC LIMIT \(limit)
            """).collect()
        return try rows.map(Self.summary)
    }

    /// One job with everything stored about it; ``PhylacteryError/Code/notFound`` if there is none.
    public func job(_ id: UUID) async throws -> JobRecord {
        guard let record = try await self.client.find(JobRecord.self, id: id) else {
            throw PhylacteryError(.notFound, "no job has the id \(id)")
        }
        return record
    }

    /// Puts a finished job (completed, cancelled or discarded) back in its queue to run now, with one
    /// more attempt allowed if it had used them all. A waiting job is made due now. Refused for a
    /// running job (cancel it first).
    @discardableResult
    public func retry(_ id: UUID) async throws -> JobRecord {
        try await self.client.transaction { tx in
            let rows = try await tx.query("SELECT state FROM queue.jobs WHERE id = \(id) FOR UPDATE").collect()
            guard let row = rows.first else { throw PhylacteryError(.notFound, "no job has the id \(id)") }
            let state = try row.decode(String.self, context: .default)
            guard state != JobState.running.rawValue else {
                throw PhylacteryError(.invalidArgument, "job \(id) is running; cancel it first, or let it finish")
            }
            try await tx.execute(Self.retrySQL(ids: [id]))
        }
        return try await self.job(id)
    }

    /// What ``cancel(_:)`` did.
    public enum CancelResult: String, Sendable, Hashable {
        /// The job was waiting; it is now `cancelled` and will not run.
        case cancelled
        /// The job is running; its worker was asked to cancel the handler's task (it ends `cancelled`).
        case requested
        /// The job had already finished; nothing changed.
        case alreadyFinished
    }

    /// Cancels a job: at once if it waits, by asking its worker if it runs.
    @discardableResult
    public func cancel(_ id: UUID) async throws -> CancelResult {
        try await self.client.transaction { tx in
            let rows = try await tx.query("SELECT state FROM queue.jobs WHERE id = \(id) FOR UPDATE").collect()
            guard let row = rows.first else { throw PhylacteryError(.notFound, "no job has the id \(id)") }
            switch JobState(rawValue: try row.decode(String.self, context: .default)) {
            case .available?:
                try await tx.execute(Self.cancelWaitingSQL(ids: [id]))
                return .cancelled
            case .running?:
                try await tx.execute(Self.requestCancelSQL(ids: [id]))
                return .requested
            default:
                return .alreadyFinished
            }
        }
    }

    /// What ``rescueExpiredLeases()`` did: the running jobs whose lease had run out, back in their
    /// queue (or discarded when that was their last attempt), and the running jobs whose lease still holds.
    public struct RescueResult: Sendable, Hashable {
        /// Jobs returned to their queue (their attempt counted, `lease_expired` recorded).
        public var requeued: Int
        /// Jobs discarded because the expired attempt was their last.
        public var discarded: Int
        /// Running jobs whose lease has not run out yet, and the latest time one runs out: the
        /// workers' rescuers return them then.
        public var stillLeased: Int
        public var latestLeaseExpiry: Date?

        public init(requeued: Int, discarded: Int, stillLeased: Int, latestLeaseExpiry: Date?) {
            self.requeued = requeued
            self.discarded = discarded
            self.stillLeased = stillLeased
            self.latestLeaseExpiry = latestLeaseExpiry
        }
    }

    /// Runs the workers' rescue rule once, now: every running job whose lease expired goes back to its
    /// queue, its attempt counted. (A restored database uses this: the jobs that were running at the
    /// restore point have no worker any more.)
    public func rescueExpiredLeases() async throws -> RescueResult {
        var requeued = 0, discarded = 0
        while true {
            let batch = try await QueueStore(client: self.client).rescue()
            requeued += batch.filter { $0.state == .available }.count
            discarded += batch.filter { $0.state == .discarded }.count
            if batch.count < 1000 { break }
        }
        let row = try await self.client.query(
            "SELECT count(*), max(lease_expires_at) FROM queue.jobs WHERE state = 'running'"
        ).collect().first
        let (count, latest): (Int64, Date?) = try row?.decode((Int64, Date?).self, context: .default) ?? (0, nil)
        return RescueResult(requeued: requeued, discarded: discarded, stillLeased: Int(count), latestLeaseExpiry: latest)
    }

    /// Deletes finished jobs older than `age`, in bounded batches; returns how many.
    @discardableResult
    public func prune(olderThan age: Duration) async throws -> Int {
        guard age >= .zero else { throw PhylacteryError(.invalidArgument, "the age to prune must not be negative") }
        return try await QueueStore(client: self.client).prune(olderThan: age)
    }
}
