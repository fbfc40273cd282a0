public import Foundation
public import Logging
import PostgresNIO
public import ServiceLifecycle
import Synchronization
import Tracing

/// The queue's workers: a `Service` that claims jobs and runs their handlers.
///
/// ```swift
/// var handlers = JobHandlers()
/// handlers.register(SendDigest.self) { job, context in
///     try await context.transaction { tx in        // the effect and the completion commit together
///         try await tx.insert(DigestSent(workspace: job.workspace))
///     }
/// }
/// let ghouls = Ghouls(client: client, handlers: handlers, configuration: .init(queues: ["default": .init(concurrency: 20)]))
/// let group = ServiceGroup(services: [client, ghouls], gracefulShutdownSignals: [.sigterm], logger: logger)
/// try await group.run()
/// ```
///
/// Each queue has its own claim loop (``QueueConfiguration``); idle loops sleep until an enqueue's
/// NOTIFY wakes them, polling at ``GhoulsConfiguration/pollInterval`` as the fallback. Alongside
/// run a heartbeat (extends leases, notices cancellation requests), a rescuer (returns jobs whose
/// lease expired), a pruner, and the periodic scheduler when one is configured.
///
/// On graceful shutdown (SIGTERM through the service group) the loops stop claiming, running
/// handlers get ``GhoulsConfiguration/shutdownGracePeriod`` to finish, the rest are cancelled and
/// their jobs given back to the queue without counting the attempt, and every outcome is written
/// before `run()` returns. A handler still running ``GhoulsConfiguration/abandonAfter`` after its
/// cancellation is abandoned: its job is given back anyway, so shutdown always ends.
public final class Ghouls: Service, Sendable {
    /// The client the workers use.
    public let client: PhylacteryClient
    /// The handlers, by kind.
    public let handlers: JobHandlers
    /// The settings.
    public let configuration: GhoulsConfiguration
    let logger: Logger
    let store: QueueStore
    let runners: [String: QueueRunner]
    let running = Mutex<[UUID: RunningJob]>([:])
    let outcomes: OutcomeBatcher
    let metrics: QueueMetrics
    private let stopping = Atomic<Bool>(false)
    private let listening = Atomic<Bool>(false)

    struct RunningJob {
        let job: ClaimedJob
        let task: Task<Void, Never>
        /// The handler's result, or `nil` when the drain gave up waiting for it.
        let finished: OneShot<Result<String?, any Error>?>
        var cancelledBy: CancelReason?
    }

    enum CancelReason { case request, shutdown }

    /// Creates the workers. Nothing runs until ``run()``.
    public init(client: PhylacteryClient, handlers: JobHandlers, configuration: GhoulsConfiguration = GhoulsConfiguration(), logger: Logger = Logger(label: "phylactery.ghouls")) {
        self.client = client
        self.handlers = handlers
        self.configuration = configuration
        self.logger = logger
        self.store = QueueStore(client: client)
        self.metrics = QueueMetrics()
        self.outcomes = OutcomeBatcher(store: self.store, batchSize: configuration.completionBatchSize, flushInterval: configuration.completionFlushInterval, logger: logger, metrics: self.metrics)
        var runners = [String: QueueRunner]()
        for (name, queue) in configuration.queues { runners[name] = QueueRunner(name: name, configuration: queue) }
        self.runners = runners
    }

    /// Whether the LISTEN connection is up (otherwise the loops only poll).
    public var isListening: Bool { self.listening.load(ordering: .relaxed) }

    /// Jobs whose handlers run in this process now.
    public var runningJobIDs: [UUID] { self.running.withLock { Array($0.keys) } }

    /// Runs until graceful shutdown or cancellation; see the type's discussion for the drain.
    public func run() async throws {
        try self.configuration.validate()
        try await self.client.prepare()
        self.logger.info("ghouls started", metadata: [
            "queues": "\(self.configuration.queues.keys.sorted().joined(separator: ","))",
            "kinds": "\(self.handlers.kinds.joined(separator: ","))", "worker": "\(self.configuration.workerName)",
        ])
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { background in
                func start(_ name: String, _ body: @escaping @Sendable () async -> Void) {
                    background.addTask {
                        await body()
                        self.logger.debug("ghouls: \(name) stopped")
                    }
                }
                start("outcome writer") { await self.outcomes.run() }
                start("heartbeat") { await self.every(self.configuration.heartbeatInterval) { try await self.heartbeat() } }
                start("rescuer") { await self.every(self.configuration.rescueInterval) { try await self.rescue() } }
                if let retention = self.configuration.retention {
                    start("pruner") { await self.every(self.configuration.pruneInterval) { _ = try await self.store.prune(olderThan: retention) } }
                }
                if self.configuration.listens { start("listener") { await self.listen() } }
                if !self.configuration.periodicJobs.isEmpty {
                    start("periodic scheduler") { await PeriodicScheduler(ghouls: self).run() }
                }
                await withDiscardingTaskGroup { loops in
                    for runner in self.runners.values {
                        loops.addTask { await runner.run(in: self) }
                    }
                }
                // Every handler has ended and reported: write what is still waiting, then stop.
                self.logger.debug("ghouls: claim loops stopped; writing the last outcomes")
                await self.outcomes.drain()
                background.cancelAll()
            }
        } onGracefulShutdown: {
            self.beginShutdown()
        }
        self.logger.info("ghouls stopped")
    }

    /// Stops claiming and starts the drain; what SIGTERM does through the service group.
    public func beginShutdown() {
        self.stopping.store(true, ordering: .releasing)
        for runner in self.runners.values { runner.wake.signal() }
    }

    var isStopping: Bool { self.stopping.load(ordering: .acquiring) }

    /// Runs `body` every `interval` until cancelled; failures are logged and retried next round.
    private func every(_ interval: Duration, _ body: () async throws -> Void) async {
        while !Task.isCancelled {
            do { try await Task.sleep(for: interval) } catch { return }
            do {
                try await body()
            } catch {
                if Task.isCancelled { return }
                self.logger.warning("queue maintenance failed; retrying next round", metadata: ["error": "\(error)"])
            }
        }
    }

    // MARK: - Running one job

    /// Runs one claimed job and hands its outcome to the batcher. Through the bootstrapped tracer
    /// the job leaves a trace: `job <kind>` with children `queue.claim`, `queue.handler` (the
    /// handler's own spans nest under it) and `queue.complete` (until the outcome is written).
    func execute(_ job: ClaimedJob) async {
        self.metrics.started(job)
        let root = startSpan("job \(job.kind)", context: .topLevel, ofKind: .consumer, at: job.claimStarted)
        root.attributes["phylactery.job.id"] = job.id.uuidString
        root.attributes["phylactery.job.kind"] = job.kind
        root.attributes["phylactery.job.queue"] = job.queue
        root.attributes["phylactery.job.attempt"] = job.attempt
        let claim = startSpan("queue.claim", context: root.context, at: job.claimStarted)
        claim.end(at: job.claimEnded)
        let outcome = await self.outcome(of: job, trace: root.context)
        if let outcome {
            let complete = startSpan("queue.complete", context: root.context)
            self.outcomes.submit(job, outcome, spans: JobSpans(root: root, complete: complete))
        } else {
            root.end()
        }
    }

    private func outcome(of job: ClaimedJob, trace: ServiceContext) async -> JobOutcome? {
        guard let handler = self.handlers[job.kind] else {
            let delay = self.configuration.backoff.delay(afterAttempt: job.attempt)
            self.logger.error("no handler for job kind", metadata: ["kind": "\(job.kind)", "job": "\(job.id)"])
            return .failed(message: "no handler for kind '\(job.kind)' in worker \(self.configuration.workerName) (handled: \(self.handlers.kinds.joined(separator: ", ")))",
                           reason: "unknown_kind", retryIn: delay, discard: false)
        }
        let prepared: @Sendable (JobContext) async throws -> String?
        do {
            prepared = try handler.prepare(job.args)
        } catch {
            self.logger.error("job arguments no longer decode", metadata: ["kind": "\(job.kind)", "job": "\(job.id)", "error": "\(error)"])
            return .failed(message: "the arguments no longer decode as '\(job.kind)': \(error)", reason: "undecodable", retryIn: 0, discard: true)
        }
        var logger = self.logger
        logger[metadataKey: "job"] = "\(job.id)"
        logger[metadataKey: "kind"] = "\(job.kind)"
        let flag = CompletionFlag()
        let context = JobContext(id: job.id, kind: job.kind, queue: job.queue, attempt: job.attempt, maxAttempts: job.maxAttempts,
                                 client: self.client, logger: logger, token: job.token, completedInTransaction: flag)
        let finished = OneShot<Result<String?, any Error>?>()
        let task = Task {
            do {
                finished.fulfil(.success(try await withSpan("queue.handler", context: trace) { _ in try await prepared(context) }))
            } catch {
                finished.fulfil(.failure(error))
            }
        }
        self.running.withLock { $0[job.id] = RunningJob(job: job, task: task, finished: finished, cancelledBy: nil) }
        let result = await finished.wait()
        let cancelledBy = self.running.withLock { $0.removeValue(forKey: job.id)?.cancelledBy }
        guard let result else {
            // Abandoned by the drain: the handler ignored cancellation. Its job goes back to the
            // queue; the fence refuses whatever the handler still tries through the job's transaction.
            logger.warning("handler did not stop when cancelled; giving its job back without it")
            return .released
        }
        switch result {
        case .success(let value):
            guard flag.isSet else { return .completed(result: value) }
            if let value {
                _ = try? await self.client.rows("""
                    UPDATE queue.jobs SET result = \(value)::jsonb WHERE id = \(job.id) AND claims = \(job.token) AND state = 'completed'
                    """)
            }
            self.metrics.finished(job, outcome: "completed")
            return nil
        case .failure(JobControl.snooze(let delay)):
            return .snoozed(after: delay.seconds)
        case .failure(JobControl.discard(let reason)):
            return .failed(message: reason, reason: "discarded", retryIn: 0, discard: true)
        case .failure(let error as PhylacteryError) where error.code == .leaseLost:
            logger.warning("job lost its lease; the attempt that replaced it decides", metadata: ["attempt": "\(job.attempt)"])
            self.metrics.finished(job, outcome: "lease_lost")
            return nil
        case .failure(let error):
            switch cancelledBy {
            case .request?:
                return .cancelled(message: "cancelled while running (attempt \(job.attempt))")
            case .shutdown?:
                return .released
            case nil:
                let delay = self.configuration.backoff.delay(afterAttempt: job.attempt)
                logger.info("job attempt failed", metadata: ["attempt": "\(job.attempt)/\(job.maxAttempts)", "error": "\(error)"])
                return .failed(message: String(describing: error), reason: "error", retryIn: delay, discard: false)
            }
        }
    }

    /// Cancels a job running in this process; returns whether it was running here.
    @discardableResult
    func cancelRunning(_ id: UUID, reason: CancelReason) -> Bool {
        let task = self.running.withLock { running -> Task<Void, Never>? in
            guard running[id] != nil else { return nil }
            if running[id]?.cancelledBy == nil { running[id]?.cancelledBy = reason }
            return running[id]?.task
        }
        task?.cancel()
        return task != nil
    }

    /// Cancels every handler still running (the grace period is over).
    func cancelAllRunning(in queue: String) {
        let ids = self.running.withLock { $0.values.filter { $0.job.queue == queue }.map(\.job.id) }
        for id in ids { self.cancelRunning(id, reason: .shutdown) }
    }

    /// Stops waiting for the handlers still running after their cancellation: their jobs are given
    /// back as if they had stopped (``GhoulsConfiguration/abandonAfter``).
    func abandonAllRunning(in queue: String) {
        let waits = self.running.withLock { $0.values.filter { $0.job.queue == queue }.map(\.finished) }
        for finished in waits { finished.fulfil(nil) }
    }

    // MARK: - Maintenance

    private func heartbeat() async throws {
        let held = self.running.withLock { $0.values.map { (id: $0.job.id, token: $0.job.token) } }
        let (_, cancelRequested) = try await self.store.heartbeat(held, lease: self.configuration.lease)
        for id in cancelRequested { self.cancelRunning(id, reason: .request) }
    }

    private func rescue() async throws {
        let rescued = try await self.store.rescue()
        guard !rescued.isEmpty else { return }
        self.metrics.rescued(rescued.count)
        self.logger.warning("returned jobs whose lease expired", metadata: [
            "requeued": "\(rescued.filter { $0.state == .available }.count)", "discarded": "\(rescued.filter { $0.state == .discarded }.count)",
        ])
        for runner in self.runners.values { runner.wake.signal() }
    }

    /// Keeps a LISTEN connection open (no transaction, so it never holds back vacuum); when it drops,
    /// the loops go on polling and the listener reconnects.
    private func listen() async {
        var delay = Duration.milliseconds(250)
        while !Task.isCancelled {
            do {
                try await self.client.postgres.withConnection { connection in
                    do {
                        try await connection.listen(on: QueueChannel.wake) { wakes in
                            try await connection.listen(on: QueueChannel.cancel) { cancels in
                                self.listening.store(true, ordering: .relaxed)
                                delay = .milliseconds(250)
                                // Enqueues made while no one listened went unannounced: look now.
                                for runner in self.runners.values { runner.wake.signal() }
                                try await withThrowingTaskGroup(of: Void.self) { group in
                                    group.addTask {
                                        for try await notification in wakes { self.runners[notification.payload]?.wake.signal() }
                                        throw ListenerEnded()
                                    }
                                    group.addTask {
                                        for try await notification in cancels {
                                            if let id = UUID(uuidString: notification.payload) { self.cancelRunning(id, reason: .request) }
                                        }
                                        throw ListenerEnded()
                                    }
                                    try await group.next()
                                }
                            }
                        }
                    } catch {
                        // A listener that ended abnormally leaves no half-LISTENing connection in the pool.
                        try? await connection.close()
                        throw error
                    }
                }
            } catch {
                if Task.isCancelled { break }
                self.logger.warning("queue listener lost; polling until it is back", metadata: ["error": "\(String(reflecting: error))", "poll": "\(self.configuration.pollInterval)"])
            }
            self.listening.store(false, ordering: .relaxed)
            do { try await Task.sleep(for: delay) } catch { break }
            delay = min(delay * 2, .seconds(5))
        }
        self.listening.store(false, ordering: .relaxed)
    }

    private struct ListenerEnded: Error {}
}

/// One queue's claim loop.
final class QueueRunner: Sendable {
    let name: String
    let configuration: QueueConfiguration
    let wake = WakeSignal()
    let inFlight = Atomic<Int>(0)

    init(name: String, configuration: QueueConfiguration) {
        self.name = name
        self.configuration = configuration
    }

    var claimBatch: Int { max(1, min(self.configuration.claimBatch ?? self.configuration.concurrency, self.configuration.concurrency)) }

    func run(in ghouls: Ghouls) async {
        let concurrency = self.configuration.concurrency
        let limited = self.configuration.globalConcurrency != nil || self.configuration.rateLimit != nil
        let lease = ghouls.configuration.lease
        let worker = "\(ghouls.configuration.workerName):\(self.name)"
        var failures = 0
        await withDiscardingTaskGroup { handlers in
            while !ghouls.isStopping {
                let free = concurrency - self.inFlight.load(ordering: .acquiring)
                // Claim when a useful batch fits (or nothing runs), not for every single free slot.
                let worthClaiming = free >= max(1, self.claimBatch / 2) || free == concurrency
                var timeout = ghouls.configuration.pollInterval
                var claimedFull = false
                if free > 0 && worthClaiming {
                    let want = min(free, self.claimBatch)
                    do {
                        let jobs: [ClaimedJob]
                        if limited {
                            let claimed = try await ghouls.store.claimLimited(
                                queue: self.name, limit: want, lease: lease, worker: worker,
                                globalConcurrency: self.configuration.globalConcurrency, rate: self.configuration.rateLimit)
                            jobs = claimed.jobs
                            if let retryAfter = claimed.retryAfter { timeout = min(timeout, retryAfter) }
                        } else {
                            jobs = try await ghouls.store.claim(queue: self.name, limit: want, lease: lease, worker: worker)
                        }
                        failures = 0
                        for job in jobs {
                            self.inFlight.add(1, ordering: .acquiringAndReleasing)
                            handlers.addTask {
                                await ghouls.execute(job)
                                let left = self.inFlight.subtract(1, ordering: .acquiringAndReleasing).newValue
                                if left <= concurrency - self.claimBatch / 2 || left == 0 { self.wake.signal() }
                            }
                        }
                        claimedFull = jobs.count == want
                    } catch {
                        failures += 1
                        ghouls.logger.warning("claim failed; retrying", metadata: ["queue": "\(self.name)", "error": "\(error)"])
                        timeout = min(timeout, .milliseconds(100 * min(failures, 10)))
                    }
                }
                if claimedFull && self.inFlight.load(ordering: .acquiring) < concurrency { continue }
                await self.wake.wait(timeout: timeout)
            }
            // Draining: let handlers finish within the grace period, then cancel what is left; a
            // handler that ignores cancellation must not hold the shutdown forever either.
            if await !self.handlersFinish(within: ghouls.configuration.shutdownGracePeriod) {
                ghouls.logger.warning("grace period over; cancelling running jobs and giving them back", metadata: [
                    "queue": "\(self.name)", "running": "\(self.inFlight.load(ordering: .acquiring))",
                ])
                ghouls.cancelAllRunning(in: self.name)
                if await !self.handlersFinish(within: ghouls.configuration.abandonAfter) {
                    ghouls.logger.warning("handlers still running after cancellation; giving their jobs back without them", metadata: [
                        "queue": "\(self.name)", "running": "\(self.inFlight.load(ordering: .acquiring))",
                    ])
                    ghouls.abandonAllRunning(in: self.name)
                }
            }
        }
    }

    /// Waits up to `limit` for this queue's handlers to end; returns whether they all did.
    private func handlersFinish(within limit: Duration) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while self.inFlight.load(ordering: .acquiring) > 0 && ContinuousClock.now < deadline {
            await self.wake.wait(timeout: min(.milliseconds(50), deadline - ContinuousClock.now))
        }
        return self.inFlight.load(ordering: .acquiring) == 0
    }
}
