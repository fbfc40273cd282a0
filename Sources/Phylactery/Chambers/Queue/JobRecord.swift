public import Foundation
import PostgresNIO

/// Where a job is in its life.
///
/// `available` jobs wait for a worker (possibly until a later `scheduled_at`); `running` jobs are
/// held under a lease; `completed`, `cancelled` and `discarded` are final and kept until pruned.
public enum JobState: String, PersistentEnum, CaseIterable, Codable {
    case available, running, completed, cancelled, discarded

    /// Whether the job will never run again.
    public var isFinal: Bool { self == .completed || self == .cancelled || self == .discarded }
}

/// One failed attempt, kept with the job.
public struct JobAttemptError: Codable, Sendable, Hashable {
    /// The attempt that failed (1 for the first run).
    public var attempt: Int
    /// When the failure was recorded.
    public var at: Date
    /// What went wrong, as the handler's error described itself.
    public var message: String
    /// Why the attempt did not complete (stored as its raw value: `error`, `lease_expired`, …).
    public var reason: JobFailureReason

    /// Describes a failed attempt.
    public init(attempt: Int, at: Date, message: String, reason: JobFailureReason) {
        self.attempt = attempt
        self.at = at
        self.message = message
        self.reason = reason
    }
}

/// A row of `queue.jobs`: everything about one job. The queue's own table, a core model.
///
/// Applications rarely build these: they enqueue ``Job`` values and read records back through
/// ``PhylacteryClient/job(_:)`` or `phylactery queue show`.
public struct JobRecord: PersistentModel, Hashable {
    public var id: UUID
    public var createdAt: Date
    public var updatedAt: Date
    /// The job type's ``Job/kind``.
    public var kind: String
    /// The queue it waits in.
    public var queue: String
    /// Where it is in its life.
    public var state: JobState
    /// Lower runs first.
    public var priority: Int16
    /// The encoded ``Job`` value.
    public var args: RawJSONB
    /// Attempts started so far (a snooze gives its attempt back).
    public var attempt: Int32
    /// Attempts allowed before the job is discarded.
    public var maxAttempts: Int32
    /// Claims so far: the fencing token of the current lease. An outcome reported with an older
    /// token (a worker that lost its lease) is refused.
    public var claims: Int64
    /// Not before this time.
    public var scheduledAt: Date
    /// When the current or last attempt started.
    public var attemptedAt: Date?
    /// When the job reached a final state.
    public var finalizedAt: Date?
    /// When the running attempt's lease runs out unless its worker heartbeats.
    public var leaseExpiresAt: Date?
    /// The worker holding the lease (`host:pid:queue`).
    public var worker: String?
    /// Set by `cancel` on a running job; the worker cancels the handler's task when it sees it.
    public var cancelRequested: Bool
    /// Every failed attempt, oldest first.
    public var errors: [JobAttemptError]
    /// What the handler returned, when it returned something.
    public var result: RawJSONB?
    /// The unique key, if the job was enqueued with one.
    public var uniqueKey: String?
    /// When the unique key holds.
    public var uniqueness: JobUniqueness?
    /// The trace of the last attempt whose outcome was written (its root span's trace id), when a
    /// ``PhylacteryTracer`` recorded it: `traces show` and the console follow it from the job.
    public var traceUUID: UUID?

    /// ``traceUUID`` as a trace id.
    public var traceID: TraceID? { self.traceUUID.map(TraceID.init(uuid:)) }

    /// Reads the kind's arguments.
    public func decodeArguments<J: Job>(as type: J.Type = J.self) throws -> J {
        try self.args.decode(J.self)
    }

    /// The claim ordering's index: exactly the claim query's filter and order.
    static let claimIndex = "jobs_claim_idx"
    /// Uniqueness: one partial unique index whose predicate follows each job's chosen scope.
    static let uniquePredicate = """
        unique_key IS NOT NULL AND (uniqueness = 'ever' OR (uniqueness = 'waiting' AND state = 'available') \
        OR (uniqueness = 'waiting_or_running' AND state IN ('available', 'running')))
        """

    public static let schema = ModelSchema(
        modelName: "JobRecord",
        table: "jobs",
        chamber: .queue,
        columns: [
            ModelSchema.column("kind", String.self),
            ModelSchema.column("queue", String.self, default: "'default'"),
            ModelSchema.column("state", JobState.self, default: "'available'"),
            ModelSchema.column("priority", Int16.self, default: "10"),
            ModelSchema.column("args", RawJSONB.self),
            ModelSchema.column("attempt", Int32.self, default: "0"),
            ModelSchema.column("maxAttempts", Int32.self, default: "25"),
            ModelSchema.column("claims", Int64.self, default: "0"),
            ModelSchema.column("scheduledAt", Date.self, default: "now()"),
            ModelSchema.column("attemptedAt", Date?.self),
            ModelSchema.column("finalizedAt", Date?.self),
            ModelSchema.column("leaseExpiresAt", Date?.self),
            ModelSchema.column("worker", String?.self),
            ModelSchema.column("cancelRequested", Bool.self, default: "false"),
            ModelSchema.column("errors", [JobAttemptError].self, default: "'[]'::jsonb"),
            ModelSchema.column("result", RawJSONB?.self),
            ModelSchema.column("uniqueKey", String?.self),
            ModelSchema.column("uniqueness", JobUniqueness?.self),
            ModelSchema.column("traceUUID", UUID?.self, name: "trace_id"),
        ],
        indexes: [
            // Claim: WHERE state = 'available' AND queue = $1 AND scheduled_at <= now()
            //        ORDER BY priority, scheduled_at, id — read straight off this index.
            IndexDescription(name: claimIndex, columns: ["queue", "priority", "scheduled_at", "id"], predicate: "state = 'available'"),
            // The rescuer and the per-queue running counts (global concurrency limits).
            IndexDescription(name: "jobs_running_idx", columns: ["queue", "lease_expires_at"], predicate: "state = 'running'"),
            // Pruning finished jobs oldest first, in bounded batches.
            IndexDescription(name: "jobs_finalized_idx", columns: ["finalized_at"], predicate: "finalized_at IS NOT NULL"),
            IndexDescription(name: "jobs_unique_idx", columns: ["kind", "unique_key"], isUnique: true, predicate: uniquePredicate),
        ],
        checks: [
            CheckConstraint(name: "jobs_priority_check", expression: "priority >= 0"),
            CheckConstraint(name: "jobs_max_attempts_check", expression: "max_attempts >= 1"),
            CheckConstraint(name: "jobs_unique_check", expression: "(unique_key IS NULL) = (uniqueness IS NULL)"),
        ],
        // A queue table churns: every job is inserted, updated two or three times and deleted. The
        // defaults (vacuum after 20% of the table is dead) let dead tuples pile up in the claim
        // index between vacuums, and every claim then walks over them. Vacuum after 1% (plus a
        // small floor), never throttle it, and analyze often so the planner keeps using the claim
        // index; leave room on each page for the updates.
        storage: [
            "fillfactor": "80",
            "autovacuum_vacuum_scale_factor": "0.01",
            "autovacuum_vacuum_threshold": "500",
            "autovacuum_vacuum_insert_scale_factor": "0.05",
            "autovacuum_analyze_scale_factor": "0.02",
            "autovacuum_vacuum_cost_delay": "0",
        ]
    )

    public func bindColumns(to row: inout ModelRowWriter) throws {
        try row.write(self.kind)
        try row.write(self.queue)
        try row.write(self.state)
        try row.write(self.priority)
        try row.write(self.args)
        try row.write(self.attempt)
        try row.write(self.maxAttempts)
        try row.write(self.claims)
        try row.write(self.scheduledAt)
        try row.write(self.attemptedAt)
        try row.write(self.finalizedAt)
        try row.write(self.leaseExpiresAt)
        try row.write(self.worker)
        try row.write(self.cancelRequested)
        try row.write(self.errors)
        try row.write(self.result)
        try row.write(self.uniqueKey)
        try row.write(self.uniqueness)
        try row.write(self.traceUUID)
    }

    public init(row: inout ModelRowReader) throws {
        (self.id, self.createdAt, self.updatedAt) = try row.readBase()
        self.kind = try row.read(String.self)
        self.queue = try row.read(String.self)
        self.state = try row.read(JobState.self)
        self.priority = try row.read(Int16.self)
        self.args = try row.read(RawJSONB.self)
        self.attempt = try row.read(Int32.self)
        self.maxAttempts = try row.read(Int32.self)
        self.claims = try row.read(Int64.self)
        self.scheduledAt = try row.read(Date.self)
        self.attemptedAt = try row.read(Date?.self)
        self.finalizedAt = try row.read(Date?.self)
        self.leaseExpiresAt = try row.read(Date?.self)
        self.worker = try row.read(String?.self)
        self.cancelRequested = try row.read(Bool.self)
        self.errors = try row.read([JobAttemptError].self)
        self.result = try row.read(RawJSONB?.self)
        self.uniqueKey = try row.read(String?.self)
        self.uniqueness = try row.read(JobUniqueness?.self)
        self.traceUUID = try row.read(UUID?.self)
    }
}

extension JobUniqueness: PersistentEnum {}

