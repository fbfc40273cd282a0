public import Foundation

/// How one queue is worked.
public struct QueueConfiguration: Sendable, Hashable {
    /// Handlers running at once in this process.
    public var concurrency: Int
    /// Handlers running at once across every process, or `nil` for no global limit.
    public var globalConcurrency: Int?
    /// Claims per interval across every process, or `nil`.
    public var rateLimit: QueueRateLimit?
    /// Jobs claimed per round trip; `nil` for the concurrency.
    public var claimBatch: Int?

    /// A queue's settings.
    public init(concurrency: Int = 10, globalConcurrency: Int? = nil, rateLimit: QueueRateLimit? = nil, claimBatch: Int? = nil) {
        self.concurrency = concurrency
        self.globalConcurrency = globalConcurrency
        self.rateLimit = rateLimit
        self.claimBatch = claimBatch
    }
}

/// Job kinds a worker leaves alone: they are never claimed, so they stay waiting — attempts, errors
/// and schedule untouched — until a worker that handles them runs. A daemon fills it with the kinds
/// of the extensions its configuration disables.
public struct SkippedKinds: Sendable, Hashable {
    /// Kinds skipped exactly (`tasks.close`).
    public var kinds: Set<String>
    /// Kinds skipped by prefix (`tasks.`: every kind of the `tasks` extension).
    public var prefixes: Set<String>

    /// Skips `kinds` and every kind starting with one of `prefixes`.
    public init(kinds: Set<String> = [], prefixes: Set<String> = []) {
        self.kinds = kinds
        self.prefixes = prefixes
    }

    /// True when nothing is skipped.
    public var isEmpty: Bool { self.kinds.isEmpty && self.prefixes.isEmpty }

    /// Whether a job of `kind` is skipped.
    public func contains(_ kind: String) -> Bool {
        self.kinds.contains(kind) || self.prefixes.contains { kind.hasPrefix($0) }
    }
}

/// Everything a ``Ghouls`` worker needs besides its client and handlers.
public struct GhoulsConfiguration: Sendable {
    /// The queues worked, with their settings.
    public var queues: [String: QueueConfiguration]
    /// How long a claim holds a job without a heartbeat. A worker that dies loses its jobs to the
    /// rescuer this long after its last heartbeat.
    public var lease: Duration
    /// How often running jobs' leases are extended (must be well below ``lease``).
    public var heartbeatInterval: Duration
    /// How often each queue is polled when no notification arrives: the fallback when LISTEN is
    /// unavailable (a transaction-pooling proxy, a dropped connection) and for scheduled jobs.
    public var pollInterval: Duration
    /// Whether to LISTEN for enqueues (needs a direct, not transaction-pooled, connection).
    public var listens: Bool
    /// How often expired leases are looked for.
    public var rescueInterval: Duration
    /// After SIGTERM (graceful shutdown): how long running handlers may take before they are
    /// cancelled and their jobs given back to the queue.
    public var shutdownGracePeriod: Duration
    /// After the grace period, how long a cancelled handler may take to stop. One that is still
    /// running then (it ignores cancellation) has its job given back without it, so shutdown always
    /// ends; the fencing token refuses anything it later tries through the job's transaction.
    public var abandonAfter: Duration
    /// At shutdown, once every handler has ended (or was abandoned), how long writing the last
    /// outcomes may take. Outcomes still unwritten then are left to the rescuer (their leases expire).
    public var outcomeFlushTimeout: Duration
    /// Outcomes are written together once this many are waiting…
    public var completionBatchSize: Int
    /// …or once the oldest waited this long.
    public var completionFlushInterval: Duration
    /// Failed attempts wait this long before the next.
    public var backoff: RetryBackoff
    /// Finished jobs older than this are deleted; `nil` keeps them.
    public var retention: Duration?
    /// How often the pruner runs.
    public var pruneInterval: Duration
    /// Jobs enqueued on a schedule by exactly one process at a time.
    public var periodicJobs: [PeriodicJob]
    /// This worker's name in `queue.jobs.worker` (host and pid by default). Keep it unique among
    /// running workers: after a claim whose answer was lost, a worker gives back the running jobs
    /// under its name that it does not hold.
    public var workerName: String
    /// Kinds never claimed (a disabled extension's jobs); empty by default. A queue whose head holds
    /// many skipped jobs costs each claim a walk over them.
    public var skippedKinds: SkippedKinds = SkippedKinds()

    /// A configuration; every queue listed is worked.
    public init(
        queues: [String: QueueConfiguration] = [JobOptions.defaultQueue: QueueConfiguration()],
        lease: Duration = .seconds(30),
        heartbeatInterval: Duration? = nil,
        pollInterval: Duration = .seconds(1),
        listens: Bool = true,
        rescueInterval: Duration? = nil,
        shutdownGracePeriod: Duration = .seconds(10),
        abandonAfter: Duration = .seconds(5),
        outcomeFlushTimeout: Duration = .seconds(5),
        completionBatchSize: Int = 500,
        completionFlushInterval: Duration = .milliseconds(2),
        backoff: RetryBackoff = RetryBackoff(),
        retention: Duration? = .seconds(7 * 24 * 3600),
        pruneInterval: Duration = .seconds(60),
        periodicJobs: [PeriodicJob] = [],
        workerName: String = "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier)"
    ) {
        self.queues = queues
        self.lease = lease
        self.heartbeatInterval = heartbeatInterval ?? lease / 3
        self.pollInterval = pollInterval
        self.listens = listens
        self.rescueInterval = rescueInterval ?? lease / 2
        self.shutdownGracePeriod = shutdownGracePeriod
        self.abandonAfter = abandonAfter
        self.outcomeFlushTimeout = outcomeFlushTimeout
        self.completionBatchSize = completionBatchSize
        self.completionFlushInterval = completionFlushInterval
        self.backoff = backoff
        self.retention = retention
        self.pruneInterval = pruneInterval
        self.periodicJobs = periodicJobs
        self.workerName = workerName
    }

    func validate() throws {
        guard !self.queues.isEmpty else { throw PhylacteryError(.invalidArgument, "ghouls need at least one queue to work") }
        try StorableText.check(self.workerName, "The worker name")
        for (name, queue) in self.queues {
            try PendingJob.checkName(name, what: "queue name")
            guard queue.concurrency >= 1 else { throw PhylacteryError(.invalidArgument, "queue '\(name)': concurrency must be at least 1") }
            if let global = queue.globalConcurrency, global < 1 { throw PhylacteryError(.invalidArgument, "queue '\(name)': globalConcurrency must be at least 1") }
            if let rate = queue.rateLimit, rate.jobs < 1 || rate.interval <= .zero {
                throw PhylacteryError(.invalidArgument, "queue '\(name)': a rate limit needs at least 1 job per positive interval")
            }
        }
        guard self.heartbeatInterval < self.lease, self.heartbeatInterval > .zero else {
            throw PhylacteryError(.invalidArgument, "the heartbeat interval (\(self.heartbeatInterval)) must be positive and shorter than the lease (\(self.lease))")
        }
        for job in self.periodicJobs {
            guard let window = job.catchUp else { continue }
            guard window > .zero else { throw PhylacteryError(.invalidArgument, "periodic job '\(job.name)': catchUp must be positive") }
            if let retention = self.retention, window >= retention {
                throw PhylacteryError(.invalidArgument, "periodic job '\(job.name)': catchUp (\(window)) must be shorter than the retention (\(retention)), or a pruned fire could run again")
            }
        }
        guard self.shutdownGracePeriod >= .zero, self.abandonAfter >= .zero, self.outcomeFlushTimeout >= .zero else {
            throw PhylacteryError(.invalidArgument, "the shutdown grace period (\(self.shutdownGracePeriod)), abandonAfter (\(self.abandonAfter)) and outcomeFlushTimeout (\(self.outcomeFlushTimeout)) must not be negative")
        }
    }
}
