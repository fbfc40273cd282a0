public import Foundation
import PostgresNIO

/// The channel every enqueue notifies (payload: the queue name) and idle workers listen on.
enum QueueChannel {
    static let wake = "phylactery_queue"
    static let cancel = "phylactery_queue_cancel"
    /// NOTIFY fails the committing transaction when the server's notification queue is full (a
    /// session that LISTENs inside a long transaction holds it back). Past half full, enqueues stop
    /// notifying: the job still commits, and workers find it at their next poll.
    static let notifyRoom = "pg_notification_queue_usage() < 0.5"
}

extension Transaction {
    /// Enqueues one job in this transaction: it exists, and workers are woken, only once the
    /// transaction commits.
    ///
    /// With a unique key, an existing job of the same kind holding that key (in the states
    /// ``JobUniqueness`` names) is returned instead, with ``EnqueuedJob/isDuplicate`` set.
    @discardableResult
    public func enqueue<J: Job>(_ job: J, options: JobOptions = .default, file: String = #fileID, line: Int = #line) async throws -> EnqueuedJob {
        try await self.enqueue(contentsOf: [PendingJob(job, options: options)], file: file, line: line)[0]
    }

    /// Enqueues many jobs of one type with the same options, in one round trip.
    ///
    /// Large batches without unique keys are streamed with COPY (the arguments encoded straight into
    /// the stream); the others go in one multi-row insert. Results come back in input order.
    @discardableResult
    public func enqueue<J: Job>(contentsOf jobs: [J], options: JobOptions = .default, file: String = #fileID, line: Int = #line) async throws -> [EnqueuedJob] {
        if options.uniqueKey == nil, jobs.count >= Self.copyThreshold {
            return try await self.copyJobs(jobs, options: options, file: file, line: line)
        }
        let now = Date()
        return try await self.enqueue(contentsOf: jobs.map { try PendingJob($0, options: options, now: now) }, file: file, line: line)
    }

    /// Enqueues prepared jobs (of any kinds, each with its own options) in one statement.
    @discardableResult
    public func enqueue(contentsOf jobs: [PendingJob], file: String = #fileID, line: Int = #line) async throws -> [EnqueuedJob] {
        try await PendingJob.insert(jobs, file: file, line: line) { query in try await self.query(query, file: file, line: line).collect() }
    }

    /// Batches at least this large (and without unique keys) go through COPY.
    static var copyThreshold: Int { 256 }

    private func copyJobs<J: Job>(_ jobs: [J], options: JobOptions, file: String, line: Int) async throws -> [EnqueuedJob] {
        // Options are checked once, on the first job (they are the same for all).
        let probe = try PendingJob(jobs[0], options: options)
        var columns = ["id", "kind", "queue", "priority", "args", "max_attempts"]
        // A value-type format style: a shared ISO8601DateFormatter is not safe to use from several tasks.
        let scheduled = probe.scheduledAt.map { $0.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)) }
        if scheduled != nil { columns.append("scheduled_at") }
        var results = [EnqueuedJob]()
        results.reserveCapacity(jobs.count)
        try await self.copy(into: JobRecord.schema.table, schema: Chamber.queue.schema, columns: columns, file: file, line: line) { rows in
            for job in jobs {
                let id = UUID.v7()
                try rows.field(id.uuidString)
                try rows.field(probe.kind)
                try rows.field(probe.queue)
                rows.field(probe.priority)
                do {
                    try rows.field(json: job)
                } catch {
                    throw PhylacteryError(.invalidArgument, "job '\(probe.kind)': its arguments cannot be encoded as JSON: \(error)", underlying: error)
                }
                rows.field(probe.maxAttempts)
                if let scheduled { try rows.field(scheduled) }
                try await rows.endRow()
                results.append(EnqueuedJob(id: id, kind: probe.kind, isDuplicate: false))
            }
        }
        if probe.scheduledAt.map({ $0 <= Date() }) ?? true {
            try await self.execute("SELECT pg_notify('\(unescaped: QueueChannel.wake)', \(probe.queue)) WHERE \(unescaped: QueueChannel.notifyRoom)", file: file, line: line)
        }
        return results
    }
}

extension PendingJob {
    /// Inserts `jobs` with one statement (plus a look-up per duplicate unique key), through `run`:
    /// a transaction's connection, or a pooled one in autocommit.
    static func insert(_ jobs: [PendingJob], file: String, line: Int, run: (PostgresQuery) async throws -> [PostgresRow]) async throws -> [EnqueuedJob] {
        guard !jobs.isEmpty else { return [] }
        var ids = [UUID](), kinds = [String](), queues = [String](), priorities = [Int16](), arguments = [RawJSONB]()
        var attempts = [Int32](), schedules = [Date?](), keys = [String?](), scopes = [String?]()
        for job in jobs {
            ids.append(job.id); kinds.append(job.kind); queues.append(job.queue); priorities.append(job.priority)
            arguments.append(job.arguments); attempts.append(job.maxAttempts)
            schedules.append(job.scheduledAt); keys.append(job.uniqueKey); scopes.append(job.uniqueness?.rawValue)
        }
        // One array per column, in binary (the arguments as jsonb[]): nothing for the server to parse.
        let rows = try await run("""
            WITH input AS (
                SELECT * FROM unnest(\(ids)::uuid[], \(kinds)::text[], \(queues)::text[], \(priorities)::int2[],
                                     \(arguments)::jsonb[], \(attempts)::int4[], \(NullableArray(schedules))::timestamptz[],
                                     \(NullableArray(keys))::text[], \(NullableArray(scopes))::text[])
                    AS t(id, kind, queue, priority, args, max_attempts, scheduled, unique_key, uniqueness)
            ), inserted AS (
                INSERT INTO queue.jobs (id, kind, queue, priority, args, max_attempts, scheduled_at, unique_key, uniqueness)
                SELECT id, kind, queue, priority, args, max_attempts, coalesce(scheduled, now()), unique_key, uniqueness
                FROM input
                ON CONFLICT (kind, unique_key) WHERE \(unescaped: JobRecord.uniquePredicate) DO NOTHING
                RETURNING id, queue, scheduled_at
            ), woken AS (
                SELECT pg_notify('\(unescaped: QueueChannel.wake)', queue) FROM (SELECT DISTINCT queue FROM inserted WHERE scheduled_at <= now()) q
                WHERE \(unescaped: QueueChannel.notifyRoom)
            )
            SELECT id, (SELECT count(*) FROM woken) FROM inserted
            """)
        let inserted = Set(try rows.map { try $0.decode(UUID.self, context: .default) })
        var results = [EnqueuedJob]()
        results.reserveCapacity(jobs.count)
        var duplicates = [Int]()
        for (index, job) in jobs.enumerated() {
            if inserted.contains(job.id) {
                results.append(EnqueuedJob(id: job.id, kind: job.kind, isDuplicate: false))
            } else {
                duplicates.append(index)
                results.append(EnqueuedJob(id: job.id, kind: job.kind, isDuplicate: true))
            }
        }
        for index in duplicates {
            let job = jobs[index]
            if let existing = try await job.holderOfKey(file: file, line: line, run: run) {
                results[index].id = existing
            } else if let earlier = jobs[..<index].firstIndex(where: { $0.kind == job.kind && $0.uniqueKey == job.uniqueKey }) {
                results[index].id = results[earlier].id  // the same key twice in this batch
            } else {
                throw job.holderFinished(file: file, line: line)
            }
        }
        return results
    }

    /// Inserts this one job alone, autocommitted: ``SingleEnqueueStatement``, prepared on the pooled
    /// connection (unnamed behind a transaction pooler), and the look-up of the holder when the unique
    /// key is taken.
    func insertAlone(client: PhylacteryClient, file: String, line: Int) async throws -> EnqueuedJob {
        let rows = try await client.rows(prepared: SingleEnqueueStatement(self), file: file, line: line)
        if let id = try SingleEnqueueStatement.insertedID(rows) {
            return EnqueuedJob(id: id, kind: self.kind, isDuplicate: false)
        }
        guard let existing = try await self.holderOfKey(file: file, line: line, run: { try await client.rows($0, file: file, line: line) }) else {
            throw self.holderFinished(file: file, line: line)
        }
        return EnqueuedJob(id: existing, kind: self.kind, isDuplicate: true)
    }

    /// The id of the job holding this job's unique key, which kept this one from being inserted; `nil`
    /// when no job holds it any more (it finished after the insert looked).
    func holderOfKey(file: String, line: Int, run: (PostgresQuery) async throws -> [PostgresRow]) async throws -> UUID? {
        guard let key = self.uniqueKey else {
            throw PhylacteryError(.queryFailed, "job '\(self.kind)' was not inserted and has no unique key", file: file, line: line)
        }
        // The holder committed before our insert looked (the insert waits for in-flight ones).
        let existing = try await run("""
            SELECT id FROM queue.jobs WHERE kind = \(self.kind) AND unique_key = \(key) AND \(unescaped: JobRecord.uniquePredicate)
            ORDER BY id LIMIT 1
            """)
        return try existing.first?.decode(UUID.self, context: .default)
    }

    /// The error for a unique key whose holder finished between the insert and the look-up.
    func holderFinished(file: String, line: Int) -> PhylacteryError {
        PhylacteryError(.queryFailed, "job '\(self.kind)' with unique key '\(self.uniqueKey ?? "")' conflicted with a job that finished meanwhile; enqueue it again", file: file, line: line)
    }
}

extension PhylacteryClient {
    /// Enqueues one job: inside the task's current transaction of this client if there is one (it
    /// then exists only if that transaction commits), else as one autocommitted statement — the insert,
    /// the unique-key check and the workers' wake-up together, in one round trip, prepared once per
    /// pooled connection (see the queue article). A duplicate unique key costs a second statement, the
    /// look-up of the job that holds it.
    @discardableResult
    public func enqueue<J: Job>(_ job: J, options: JobOptions = .default, file: String = #fileID, line: Int = #line) async throws -> EnqueuedJob {
        if let outer = CurrentTransaction.context, outer.client == ObjectIdentifier(self), outer.task == CurrentTransaction.currentTask {
            return try await outer.transaction.enqueue(job, options: options, file: file, line: line)
        }
        // One statement is atomic on its own: no BEGIN/COMMIT round trips.
        return try await PendingJob(job, options: options).insertAlone(client: self, file: file, line: line)
    }

    /// Enqueues many jobs in one transaction (see ``Transaction/enqueue(contentsOf:options:file:line:)``).
    @discardableResult
    public func enqueue<J: Job>(contentsOf jobs: [J], options: JobOptions = .default, file: String = #fileID, line: Int = #line) async throws -> [EnqueuedJob] {
        try await self.transaction(file: file, line: line) { try await $0.enqueue(contentsOf: jobs, options: options, file: file, line: line) }
    }
}
