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
/// cancellation is abandoned: its job is given back anyway (or left to the rescuer while the handler
/// still holds its row), and the last outcomes get ``GhoulsConfiguration/outcomeFlushTimeout``, so
/// shutdown always ends (``DrainStateMachine``).
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
    let outcomes: OutcomeWriter
    let metrics: QueueMetrics
    private let stopping = Atomic<Bool>(false)
    private let listening = Atomic<Bool>(false)
    /// Fulfilled when graceful shutdown is asked for.
    private let shutdown = OneShot<Void>()
    /// Signalled whenever a job leaves ``running``: the drain looks again.
    private let jobEnded = WakeSignal()
    /// Signalled to run the heartbeat at once (a cancellation notification arrived).
    private let heartbeatNow = WakeSignal()
    /// Claim loops still claiming: the drain writes the last outcomes only once none can claim more.
    private let claimLoops: Atomic<Int>

    struct RunningJob {
        let job: ClaimedJob
        /// The handler's task, once it started.
        var task: Task<Void, Never>?
        /// The handler's return, or `nil` when the drain gave up waiting for it.
        let finished: OneShot<Result<HandlerReturn, any Error>?>
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
        self.outcomes = OutcomeWriter(client: client, batchSize: configuration.completionBatchSize, flushInterval: configuration.completionFlushInterval, logger: logger, metrics: self.metrics)
        var runners = [String: QueueRunner]()
        for (name, queue) in configuration.queues { runners[name] = QueueRunner(name: name, configuration: queue) }
        self.runners = runners
        self.claimLoops = Atomic(runners.count)
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
                start("heartbeat") { await self.every(self.configuration.heartbeatInterval, wake: self.heartbeatNow) { try await self.heartbeat() } }
                start("rescuer") { await self.every(self.configuration.rescueInterval) { try await self.rescue() } }
                if let retention = self.configuration.retention {
                    start("pruner") { await self.every(self.configuration.pruneInterval) { _ = try await self.store.prune(olderThan: retention) } }
                }
                if self.configuration.listens {
                    if self.client.sessionFeatures?.sessionAvailable == false {
                        // Through a transaction pooler a LISTEN would be forgotten as soon as its statement ends.
                        self.logger.warning("queue: no LISTEN through a transaction pooler without a session URL; polling instead", metadata: [
                            "poll": "\(self.configuration.pollInterval)", "fix": "set Options.sessionURL (database.sessionURL) to a direct connection",
                        ])
                    } else {
                        start("listener") { await self.listen() }
                    }
                }
                if !self.configuration.periodicJobs.isEmpty {
                    start("periodic scheduler") { await PeriodicScheduler(ghouls: self).run() }
                }
                await withDiscardingTaskGroup { loops in
                    for runner in self.runners.values {
                        loops.addTask { await runner.run(in: self) }
                    }
                    loops.addTask { await self.drainAtShutdown() }
                }
                background.cancelAll()
            }
        } onGracefulShutdown: {
            self.beginShutdown()
        }
        self.logger.info("ghouls stopped")
    }

    /// Stops claiming and starts the drain; what SIGTERM does through the service group.
    public func beginShutdown() {
        self.shutdown.fulfil(())
    }

    var isStopping: Bool { self.stopping.load(ordering: .acquiring) }

    /// Waits for the shutdown request, then runs the ``DrainStateMachine`` until every handler has
    /// ended (or was abandoned) and the last outcomes are written.
    private func drainAtShutdown() async {
        await withTaskCancellationHandler {
            await self.shutdown.wait()
        } onCancel: {
            self.shutdown.fulfil(())
        }
        let clock = ContinuousClock()
        var machine = DrainStateMachine<ContinuousClock>(
            gracePeriod: self.configuration.shutdownGracePeriod, abandonAfter: self.configuration.abandonAfter,
            flushTimeout: self.configuration.outcomeFlushTimeout)
        var actions = machine.shutdownRequested(at: clock.now, running: Set(self.runningJobIDs))
        while true {
            for action in actions {
                switch action {
                case .stopClaiming:
                    self.stopping.store(true, ordering: .releasing)
                    for runner in self.runners.values { runner.wake.signal() }
                case .cancel(let ids):
                    self.logger.warning("grace period over; cancelling running jobs and giving them back", metadata: ["running": "\(ids.count)"])
                    for id in ids { self.cancelRunning(id, reason: .shutdown) }
                case .abandon(let ids):
                    self.logger.warning("handlers still running after cancellation; giving their jobs back without them", metadata: ["running": "\(ids.count)"])
                    self.abandonRunning(ids)
                case .flushOutcomes(let limit):
                    self.logger.debug("ghouls: handlers ended; writing the last outcomes")
                    // Abandoned jobs hand their give-back over, and a claim still under way may yet
                    // return jobs (they are given back too): wait for both before the writer drains.
                    let deadline = clock.now + limit
                    while self.claimLoops.load(ordering: .acquiring) > 0 || !self.running.withLock({ $0.isEmpty }), clock.now < deadline {
                        await self.jobEnded.wait(timeout: deadline - clock.now)
                    }
                    await self.outcomes.drain(within: max(.zero, deadline - clock.now))
                    actions = machine.outcomesFlushed()
                case .finish:
                    return
                }
            }
            if machine.state == .flushing { continue }
            if case .finished = machine.state { return }
            if Task.isCancelled {
                // Cancelled rather than shut down gracefully: nothing to wait for; leases expire.
                let ids = Set(self.runningJobIDs)
                for id in ids { self.cancelRunning(id, reason: .shutdown) }
                self.abandonRunning(ids)
                return
            }
            await self.jobEnded.wait(timeout: machine.deadline.map { max(.zero, $0 - clock.now) })
            actions = machine.tick(at: clock.now, running: Set(self.runningJobIDs))
        }
    }

    /// Runs `body` every `interval` (or at once when `wake` is signalled) until cancelled; failures
    /// are logged and retried next round.
    private func every(_ interval: Duration, wake: WakeSignal? = nil, _ body: () async throws -> Void) async {
        while !Task.isCancelled {
            if let wake {
                await wake.wait(timeout: interval)
                if Task.isCancelled { return }
            } else {
                do { try await Task.sleep(for: interval) } catch { return }
            }
            do {
                try await body()
            } catch {
                if Task.isCancelled { return }
                self.logger.warning("queue maintenance failed; retrying next round", metadata: ["error": "\(error)"])
            }
        }
    }

    // MARK: - Running one job

    /// Runs one claimed job and hands its outcome to the ``OutcomeWriter``. Through the bootstrapped
    /// tracer the job leaves a trace: `job <kind>` with children `queue.claim`, `queue.handler` (the
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
        guard let finished = self.running.withLock({ $0[job.id]?.finished }) else { return }
        if let outcome = await self.outcome(of: job, finished: finished, trace: root.context) {
            let complete = startSpan("queue.complete", context: root.context)
            self.outcomes.submit(job, outcome, spans: JobSpans(root: root, complete: complete))
        } else {
            root.end()
        }
        // Only now, with its outcome handed over, does the job stop counting as running for the drain.
        self.running.withLock { _ = $0.removeValue(forKey: job.id) }
        self.jobEnded.signal()
    }

    private func outcome(of job: ClaimedJob, finished: OneShot<Result<HandlerReturn, any Error>?>, trace: ServiceContext) async -> JobOutcome? {
        guard let handler = self.handlers[job.kind] else {
            let delay = self.configuration.backoff.delay(afterAttempt: job.attempt)
            self.logger.error("no handler for job kind", metadata: ["kind": "\(job.kind)", "job": "\(job.id)"])
            return .failed(message: "no handler for kind '\(job.kind)' in worker \(self.configuration.workerName) (handled: \(self.handlers.kinds.joined(separator: ", ")))",
                           reason: .unknownKind, retryIn: delay, discard: false)
        }
        let prepared: @Sendable (JobContext) async throws -> HandlerReturn
        do {
            prepared = try handler.prepare(job.args)
        } catch {
            self.logger.error("job arguments no longer decode", metadata: ["kind": "\(job.kind)", "job": "\(job.id)", "error": "\(error)"])
            return .failed(message: "the arguments no longer decode as '\(job.kind)': \(error)", reason: .undecodable, retryIn: 0, discard: true)
        }
        var logger = self.logger
        logger[metadataKey: "job"] = "\(job.id)"
        logger[metadataKey: "kind"] = "\(job.kind)"
        let flag = CompletionFlag()
        let context = JobContext(id: job.id, kind: job.kind, queue: job.queue, attempt: job.attempt, maxAttempts: job.maxAttempts,
                                 client: self.client, logger: logger, token: job.token, completedInTransaction: flag)
        let task = Task {
            do {
                finished.fulfil(.success(try await withSpan("queue.handler", context: trace) { _ in try await prepared(context) }))
            } catch {
                finished.fulfil(.failure(error))
            }
        }
        let cancelledEarly = self.running.withLock { running -> Bool in
            running[job.id]?.task = task
            return running[job.id]?.cancelledBy != nil
        }
        if cancelledEarly { task.cancel() }
        let result = await finished.wait()
        let cancelledBy = self.running.withLock { $0[job.id]?.cancelledBy }
        guard let result else {
            // Abandoned by the drain: the handler ignored cancellation. Its job goes back to the
            // queue; the fence refuses whatever the handler still tries through the job's transaction.
            logger.warning("handler did not stop when cancelled; giving its job back without it")
            return .released
        }
        switch result {
        case .success(let returned):
            let note: String?, stored: RawJSONB?
            switch returned {
            case .none: (stored, note) = (nil, nil)
            case .result(let value): (stored, note) = (value, nil)
            case .unstorable(let problem):
                logger.warning("the handler's result cannot be stored; the job completes without it", metadata: ["problem": "\(problem)"])
                (stored, note) = (nil, StorableText.sanitized("the outcome could not be stored as reported: \(problem)"))
            }
            guard flag.isSet else { return .completed(result: stored, note: note) }
            // Completed by the handler's own transaction: only a result (or its problem) is left to write.
            guard stored != nil || note != nil else {
                self.metrics.finished(job, outcome: "completed")
                return nil
            }
            return .resultAfterTransaction(stored, note: note)
        case .failure(JobControl.snooze(let delay)):
            return .snoozed(after: delay.seconds)
        case .failure(JobControl.discard(let reason)):
            return .failed(message: reason, reason: .discarded, retryIn: 0, discard: true)
        case .failure(let error as PhylacteryError) where error.code == .leaseLost:
            logger.warning("job lost its lease; the attempt that replaced it decides", metadata: ["attempt": "\(job.attempt)"])
            self.metrics.finished(job, outcome: "lease_lost")
            return nil
        case .failure(let error):
            switch cancelledBy {
            case .request?:
                return .failed(message: "cancelled while running (attempt \(job.attempt))", reason: .cancelled, retryIn: 0, discard: true)
            case .shutdown?:
                return .released
            case nil:
                let delay = self.configuration.backoff.delay(afterAttempt: job.attempt)
                logger.info("job attempt failed", metadata: ["attempt": "\(job.attempt)/\(job.maxAttempts)", "error": "\(error)"])
                return .failed(message: String(describing: error), reason: .error, retryIn: delay, discard: false)
            }
        }
    }

    /// Counts claimed jobs as running from the moment the claim returns, so the drain waits for them.
    func register(_ jobs: [ClaimedJob]) {
        self.running.withLock { running in
            for job in jobs { running[job.id] = RunningJob(job: job, task: nil, finished: OneShot(), cancelledBy: nil) }
        }
    }

    /// Gives back jobs claimed while shutdown began, without running them.
    func giveBack(_ jobs: [ClaimedJob]) {
        for job in jobs { self.outcomes.submit(job, .released) }
        self.running.withLock { running in for job in jobs { running.removeValue(forKey: job.id) } }
        self.jobEnded.signal()
    }

    /// A claim loop stopped claiming (shutdown).
    func claimLoopStopped() {
        self.claimLoops.subtract(1, ordering: .acquiringAndReleasing)
        self.jobEnded.signal()
    }

    /// Cancels a job running in this process; returns whether it was running here.
    @discardableResult
    func cancelRunning(_ id: UUID, reason: CancelReason) -> Bool {
        let (found, task) = self.running.withLock { running -> (Bool, Task<Void, Never>?) in
            guard running[id] != nil else { return (false, nil) }
            if running[id]?.cancelledBy == nil { running[id]?.cancelledBy = reason }
            return (true, running[id]?.task)
        }
        task?.cancel()
        return found
    }

    /// Stops waiting for handlers still running after their cancellation: their jobs are given back
    /// as if they had stopped (``GhoulsConfiguration/abandonAfter``).
    func abandonRunning(_ ids: Set<UUID>) {
        let waits = self.running.withLock { running in ids.compactMap { running[$0]?.finished } }
        for finished in waits { finished.fulfil(nil) }
    }

    // MARK: - Maintenance

    /// Extends the leases of every job this process holds — running, or finished with its outcome
    /// not written yet (so no rescuer runs a finished job again) — and cancels the handlers whose
    /// cancellation was requested in their row. Only the row decides: a notification merely makes the
    /// heartbeat look now.
    private func heartbeat() async throws {
        let running = self.running.withLock { $0.values.map { (id: $0.job.id, token: $0.job.token) } }
        let (_, cancelRequested) = try await self.store.heartbeat(running + self.outcomes.held, lease: self.configuration.lease)
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
    /// the loops go on polling and the listener reconnects. The connection is the client's session
    /// connection (``PhylacteryClient/withSessionConnection(isolation:file:line:_:)``): the session URL
    /// when one is set, else a pooled one.
    private func listen() async {
        var failures = 0
        while !Task.isCancelled {
            do {
                try await self.client.withSessionConnection { connection in
                    do {
                        try await connection.listen(on: QueueChannel.wake) { wakes in
                            try await connection.listen(on: QueueChannel.cancel) { cancels in
                                self.listening.store(true, ordering: .relaxed)
                                failures = 0
                                // Enqueues made while no one listened went unannounced: look now.
                                for runner in self.runners.values { runner.wake.signal() }
                                try await withThrowingTaskGroup(of: Void.self) { group in
                                    group.addTask {
                                        for try await notification in wakes { self.runners[notification.payload]?.wake.signal() }
                                        throw ListenerEnded()
                                    }
                                    group.addTask {
                                        // Anyone may NOTIFY; the heartbeat cancels only jobs whose row says so.
                                        for try await notification in cancels {
                                            if let id = UUID(uuidString: notification.payload), self.running.withLock({ $0[id] != nil }) {
                                                self.heartbeatNow.signal()
                                            }
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
            failures += 1
            do { try await Task.sleep(for: RetryBackoff.writer.duration(afterAttempt: failures)) } catch { break }
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
            while !ghouls.isStopping && !Task.isCancelled {
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
                                globalConcurrency: self.configuration.globalConcurrency, rate: self.configuration.rateLimit,
                                skipping: ghouls.configuration.skippedKinds)
                            jobs = claimed.jobs
                            if let retryAfter = claimed.retryAfter { timeout = min(timeout, retryAfter) }
                        } else {
                            jobs = try await ghouls.store.claim(queue: self.name, limit: want, lease: lease, worker: worker, skipping: ghouls.configuration.skippedKinds)
                        }
                        failures = 0
                        if ghouls.isStopping {
                            ghouls.giveBack(jobs)
                            break
                        }
                        ghouls.register(jobs)
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
                        timeout = min(timeout, RetryBackoff.writer.duration(afterAttempt: failures))
                    }
                }
                if claimedFull && self.inFlight.load(ordering: .acquiring) < concurrency { continue }
                await self.wake.wait(timeout: timeout)
            }
            // Stopping: the handlers of this queue end (or are abandoned) under the drain
            // (``Ghouls/drainAtShutdown()``); the group waits for them.
            ghouls.claimLoopStopped()
        }
    }
}
