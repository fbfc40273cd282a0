public import Foundation

/// A unit of background work: its arguments are the value itself, stored as jsonb.
///
/// ```swift
/// struct SendDigest: Job {
///     static let kind = "mail.send_digest"
///     var workspace: UUID
/// }
/// try await client.transaction { tx in
///     try await tx.update(workspace)
///     try await tx.enqueue(SendDigest(workspace: workspace.id))   // exists only if this commits
/// }
/// ```
///
/// The kind is a column of its own, so listing jobs and counting them never decodes arguments.
/// Defaults (queue, priority, attempts) can be overridden per type and per enqueue (``JobOptions``).
public protocol Job: Codable, Sendable {
    /// A stable name for this kind of job, e.g. `tasks.remind`. Renaming it orphans queued jobs.
    static var kind: String { get }
    /// The queue the job goes to unless the enqueue says otherwise. Default `default`.
    static var queue: String { get }
    /// Lower runs first; 0 is the most urgent. Default ``JobOptions/defaultPriority``.
    static var priority: Int { get }
    /// Attempts before the job is discarded (kept, with its errors). Default 25.
    static var maxAttempts: Int { get }
}

extension Job {
    public static var queue: String { JobOptions.defaultQueue }
    public static var priority: Int { JobOptions.defaultPriority }
    public static var maxAttempts: Int { JobOptions.defaultMaxAttempts }
}

/// When a unique key keeps a second enqueue from creating a duplicate.
public enum JobUniqueness: String, Sendable, Hashable, CaseIterable, Codable {
    /// While a job with the key waits to run (available or scheduled). Once it runs, the key is free.
    case whileWaiting = "waiting"
    /// While a job with the key waits or runs. Once it finished, the key is free.
    case whileWaitingOrRunning = "waiting_or_running"
    /// As long as a job with the key exists at all (until it is pruned).
    case ever

    /// The states in which the key is held.
    public var states: [JobState] {
        switch self {
        case .whileWaiting: [.available]
        case .whileWaitingOrRunning: [.available, .running]
        case .ever: JobState.allCases
        }
    }
}

/// How one job is enqueued; every field left `nil` takes the job type's default.
public struct JobOptions: Sendable, Hashable {
    /// The queue used when neither the type nor the options name one.
    public static let defaultQueue = "default"
    /// The priority used when neither the type nor the options give one.
    public static let defaultPriority = 10
    /// The attempts used when neither the type nor the options give a number.
    public static let defaultMaxAttempts = 25
    /// Highest priority number accepted (the column is a smallint).
    public static let maximumPriority = Int(Int16.max)

    /// The queue; `nil` for the type's.
    public var queue: String?
    /// Lower runs first; must be 0…32767. `nil` for the type's.
    public var priority: Int?
    /// Attempts before discarding; must be ≥ 1. `nil` for the type's.
    public var maxAttempts: Int?
    /// Not before this time. `nil` runs as soon as a worker is free. Must not lie in the past by
    /// more than ``JobOptions/scheduleTolerance`` (a stale time is almost always a bug).
    public var scheduledAt: Date?
    /// A key that makes a second enqueue of the same kind return the existing job.
    public var uniqueKey: String?
    /// When the unique key holds. Default ``JobUniqueness/whileWaitingOrRunning``.
    public var uniqueness: JobUniqueness

    /// How far in the past a schedule may lie (clock skew between processes) before it is refused.
    public static let scheduleTolerance: TimeInterval = 60

    /// Options for one enqueue.
    public init(
        queue: String? = nil,
        priority: Int? = nil,
        maxAttempts: Int? = nil,
        scheduledAt: Date? = nil,
        uniqueKey: String? = nil,
        uniqueness: JobUniqueness = .whileWaitingOrRunning
    ) {
        self.queue = queue
        self.priority = priority
        self.maxAttempts = maxAttempts
        self.scheduledAt = scheduledAt
        self.uniqueKey = uniqueKey
        self.uniqueness = uniqueness
    }

    /// The default options.
    public static let `default` = JobOptions()
}

/// What an enqueue returns: the job's id, and whether an existing job with the same unique key was
/// returned instead of a new one.
public struct EnqueuedJob: Sendable, Hashable {
    /// The job's id (UUID v7, so ids sort by enqueue time).
    public var id: UUID
    /// The kind, as stored.
    public var kind: String
    /// `true` when the unique key matched a job that already existed; nothing new was inserted.
    public var isDuplicate: Bool

    /// Describes an enqueued job.
    public init(id: UUID, kind: String, isDuplicate: Bool) {
        self.id = id
        self.kind = kind
        self.isDuplicate = isDuplicate
    }
}
