import Foundation
import Logging
import Phylactery
import PhylacteryTestSupport
import PostgresNIO
import Synchronization
import Testing

// Jobs used by the queue tests.

struct Effect: Job { static let kind = "test.effect"; var n: Int }
struct Poison: Job { static let kind = "test.poison"; static let maxAttempts = 3; var n: Int }
struct Orphan: Job { static let kind = "test.orphan"; static let maxAttempts = 2 }
struct Slow: Job { static let kind = "test.slow"; var milliseconds: Int }
struct Snoozer: Job { static let kind = "test.snoozer" }
/// Enqueued under `test.effect` but with arguments `Effect` cannot decode.
struct WrongShape: Job { static let kind = "test.effect"; var n: String }

/// Sets up the queue's tables in a fresh database.
func withQueueDatabase<Result: Sendable>(_ label: String, connections: Int = 6, _ body: (PhylacteryClient) async throws -> Result) async throws -> Result {
    var options = TestDatabase.defaultOptions
    options.maximumConnections = connections
    return try await TestDatabase.withFreshDatabase(label, options: options) { client in
        try await Migrator(client: client, federation: try Federation.standard(extensions: [])).apply(allowing: [])
        try await client.execute("CREATE TABLE public.effects (job_id uuid NOT NULL, n int NOT NULL)")
        return try await body(client)
    }
}

/// Settings that make tests quick: short lease, fast polling, tiny backoff.
/// The lease is long enough that a loaded CI machine does not see leases expire (tests that need
/// expiry force it).
func quickConfiguration(_ queues: [String: QueueConfiguration] = ["default": QueueConfiguration(concurrency: 8)], lease: Duration = .seconds(60), grace: Duration = .seconds(5)) -> GhoulsConfiguration {
    GhoulsConfiguration(
        queues: queues, lease: lease, pollInterval: .milliseconds(200), shutdownGracePeriod: grace,
        backoff: RetryBackoff(initial: .milliseconds(20), multiplier: 1.5, maximum: .milliseconds(200), jitter: 0.1),
        retention: nil, workerName: "test")
}

/// Runs `ghouls` while `body` runs, then shuts them down gracefully and waits for the drain — at
/// most a minute, so a drain that never ends fails the test instead of hanging the suite.
func whileRunning<Result: Sendable>(_ ghouls: Ghouls, _ body: () async throws -> Result) async throws -> Result {
    let task = Task { try await ghouls.run() }
    do {
        let result = try await body()
        ghouls.beginShutdown()
        try await stopped(task)
        return result
    } catch {
        ghouls.beginShutdown()
        _ = try? await stopped(task)
        throw error
    }
}

struct DrainTimedOut: Error {}

/// A continuation resumed by whichever of two tasks comes first.
final class OnceContinuation: Sendable {
    private let slot = Mutex<CheckedContinuation<Bool, Never>?>(nil)
    func set(_ continuation: CheckedContinuation<Bool, Never>) { self.slot.withLock { $0 = continuation } }
    func resume(_ value: Bool) { self.slot.withLock { $0.take() }?.resume(returning: value) }
}

/// Waits for the ghouls' task to end, or records an issue after a minute.
func stopped(_ task: Task<Void, any Error>) async throws {
    let done = OnceContinuation()
    let finished = await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
        done.set(continuation)
        Task {
            _ = try? await task.value
            done.resume(true)
        }
        Task {
            try? await Task.sleep(for: .seconds(60))
            done.resume(false)
        }
    }
    if !finished {
        Issue.record("the ghouls did not stop within 60 s of their graceful shutdown")
        task.cancel()
        throw DrainTimedOut()
    }
    try await task.value
}

func count(_ client: PhylacteryClient, _ sql: PostgresQuery) async throws -> Int {
    Int(try await client.query(sql).collect().first?.decode(Int64.self) ?? -1)
}

func effectHandlers() -> JobHandlers {
    var handlers = JobHandlers()
    handlers.register(Effect.self) { job, context in
        try await context.transaction { tx in
            try await tx.execute("INSERT INTO public.effects (job_id, n) VALUES (\(context.id), \(job.n))")
        }
    }
    return handlers
}

@Suite("Queue: enqueue")
struct QueueEnqueueTests {
    @Test("a job enqueued in a rolled-back transaction does not exist and never runs")
    func rolledBackEnqueue() async throws {
        try await withQueueDatabase("queue_rollback") { client in
            struct Boom: Error {}
            await #expect(throws: Boom.self) {
                try await client.transaction { tx in
                    try await tx.execute("CREATE TABLE public.state_rows (v int)")
                    try await tx.enqueue(Effect(n: 1))
                    throw Boom()
                }
            }
            #expect(try await count(client, "SELECT count(*) FROM queue.jobs") == 0)
            let ghouls = Ghouls(client: client, handlers: effectHandlers(), configuration: quickConfiguration())
            try await whileRunning(ghouls) { try await Task.sleep(for: .milliseconds(600)) }
            #expect(try await count(client, "SELECT count(*) FROM public.effects") == 0)
        }
    }

    @Test("a job and a state row commit together")
    func enqueueWithState() async throws {
        try await withQueueDatabase("queue_together") { client in
            try await client.execute("CREATE TABLE public.accounts (name text PRIMARY KEY)")
            let job = try await client.transaction { tx in
                try await tx.execute("INSERT INTO public.accounts VALUES ('ada')")
                return try await tx.enqueue(Effect(n: 7))
            }
            let record = try await client.jobs.job(job.id)
            #expect(record.kind == "test.effect")
            #expect(record.state == .available)
            #expect(try record.decodeArguments(as: Effect.self).n == 7)
        }
    }

    @Test("a duplicate unique key yields one job, in the states its uniqueness names")
    func uniqueKeys() async throws {
        try await withQueueDatabase("queue_unique") { client in
            let first = try await client.enqueue(Effect(n: 1), options: JobOptions(uniqueKey: "k1"))
            let second = try await client.enqueue(Effect(n: 2), options: JobOptions(uniqueKey: "k1"))
            #expect(!first.isDuplicate)
            #expect(second.isDuplicate)
            #expect(second.id == first.id)
            // In one batch, the same key twice and a new key.
            let batch = try await client.transaction { tx in
                try await tx.enqueue(contentsOf: [
                    try PendingJob(Effect(n: 3), options: JobOptions(uniqueKey: "k2")),
                    try PendingJob(Effect(n: 4), options: JobOptions(uniqueKey: "k2")),
                    try PendingJob(Effect(n: 5), options: JobOptions(uniqueKey: "k1")),
                ])
            }
            #expect(batch.map(\.isDuplicate) == [false, true, true])
            #expect(batch[1].id == batch[0].id)
            #expect(batch[2].id == first.id)
            #expect(try await count(client, "SELECT count(*) FROM queue.jobs") == 2)

            // Once the job finished, "while waiting or running" frees the key; "ever" does not.
            let ever = try await client.enqueue(Effect(n: 6), options: JobOptions(uniqueKey: "e", uniqueness: .ever))
            let ghouls = Ghouls(client: client, handlers: effectHandlers(), configuration: quickConfiguration())
            try await whileRunning(ghouls) {
                try await eventually("all jobs complete") { try await count(client, "SELECT count(*) FROM queue.jobs WHERE state <> 'completed'") == 0 }
            }
            let again = try await client.enqueue(Effect(n: 1), options: JobOptions(uniqueKey: "k1"))
            #expect(!again.isDuplicate)
            let everAgain = try await client.enqueue(Effect(n: 6), options: JobOptions(uniqueKey: "e", uniqueness: .ever))
            #expect(everAgain.isDuplicate)
            #expect(everAgain.id == ever.id)
        }
    }

    @Test("bad options are refused before anything is stored")
    func badInput() async throws {
        try await withQueueDatabase("queue_bad_input") { client in
            for options in [JobOptions(priority: -1), JobOptions(priority: 40_000), JobOptions(maxAttempts: 0),
                            JobOptions(scheduledAt: Date().addingTimeInterval(-3600)), JobOptions(queue: ""), JobOptions(uniqueKey: "")] {
                let error = await #expect(throws: PhylacteryError.self) { try await client.enqueue(Effect(n: 1), options: options) }
                #expect(error?.code == .invalidArgument)
            }
            // The database refuses the same through raw SQL.
            await #expect(throws: PhylacteryError.self) {
                try await client.execute("INSERT INTO queue.jobs (id, kind, args, priority) VALUES (gen_random_uuid(), 'x', '{}', -1)")
            }
            let stored = try await count(client, "SELECT count(*) FROM queue.jobs")
            #expect(stored == 0)
        }
    }

    @Test("batch enqueue through COPY and through one insert store every job")
    func batchEnqueue() async throws {
        try await withQueueDatabase("queue_batch") { client in
            let many = try await client.enqueue(contentsOf: (0..<1000).map { Effect(n: $0) })
            #expect(many.count == 1000)
            #expect(Set(many.map(\.id)).count == 1000)
            let few = try await client.enqueue(contentsOf: (0..<10).map { Effect(n: $0) }, options: JobOptions(queue: "other", priority: 3))
            #expect(few.count == 10)
            #expect(try await count(client, "SELECT count(*) FROM queue.jobs WHERE queue = 'default' AND priority = 10") == 1000)
            #expect(try await count(client, "SELECT count(*) FROM queue.jobs WHERE queue = 'other' AND priority = 3") == 10)
            #expect(try await count(client, "SELECT sum((args->>'n')::int) FROM queue.jobs WHERE queue = 'default'") == 999 * 1000 / 2)
        }
    }
}

@Suite("Queue: workers")
struct QueueWorkerTests {
    @Test("every job runs and its effect is written exactly once")
    func processesAll() async throws {
        try await withQueueDatabase("queue_process") { client in
            try await client.enqueue(contentsOf: (0..<500).map { Effect(n: $0) })
            let ghouls = Ghouls(client: client, handlers: effectHandlers(), configuration: quickConfiguration())
            try await whileRunning(ghouls) {
                try await eventually("500 jobs complete") { try await count(client, "SELECT count(*) FROM queue.jobs WHERE state = 'completed'") == 500 }
            }
            #expect(try await count(client, "SELECT count(*) FROM public.effects") == 500)
            #expect(try await count(client, "SELECT count(DISTINCT job_id) FROM public.effects") == 500)
        }
    }

    @Test("a poison job is discarded after its attempts, every error kept")
    func poison() async throws {
        try await withQueueDatabase("queue_poison") { client in
            struct Bad: Error, CustomStringConvertible { var n: Int; var description: String { "poisoned \(n)" } }
            var handlers = JobHandlers()
            handlers.register(Poison.self) { job, _ in throw Bad(n: job.n) }
            let job = try await client.enqueue(Poison(n: 42))
            let ghouls = Ghouls(client: client, handlers: handlers, configuration: quickConfiguration())
            let record = try await whileRunning(ghouls) {
                try await eventually("poison discarded") { try await client.jobs.job(job.id).state == .discarded }
                return try await client.jobs.job(job.id)
            }
            #expect(record.attempt == 3)
            #expect(record.errors.map(\.attempt) == [1, 2, 3])
            #expect(record.errors.allSatisfy { $0.message == "poisoned 42" && $0.reason == .error })
            #expect(record.finalizedAt != nil)
        }
    }

    @Test("a kind nobody handles and arguments that no longer decode end recorded, not in a crash loop")
    func unhandledAndUndecodable() async throws {
        try await withQueueDatabase("queue_unhandled") { client in
            let orphan = try await client.enqueue(Orphan())
            let wrong = try await client.enqueue(WrongShape(n: "not a number"))
            let ghouls = Ghouls(client: client, handlers: effectHandlers(), configuration: quickConfiguration())
            try await whileRunning(ghouls) {
                try await eventually("both discarded") {
                    try await count(client, "SELECT count(*) FROM queue.jobs WHERE state = 'discarded'") == 2
                }
            }
            let orphanRecord = try await client.jobs.job(orphan.id)
            #expect(orphanRecord.errors.map(\.reason) == [.unknownKind, .unknownKind])
            #expect(orphanRecord.errors.first?.message.contains("test.orphan") == true)
            let wrongRecord = try await client.jobs.job(wrong.id)
            #expect(wrongRecord.attempt == 1)
            #expect(wrongRecord.errors.map(\.reason) == [.undecodable])
            #expect(try await count(client, "SELECT count(*) FROM public.effects") == 0)
        }
    }

    @Test("a snoozed job runs again without spending an attempt")
    func snooze() async throws {
        try await withQueueDatabase("queue_snooze") { client in
            let runs = Atomic<Int>(0)
            var handlers = JobHandlers()
            handlers.register(Snoozer.self) { _, _ in
                if runs.add(1, ordering: .relaxed).newValue < 3 { throw JobControl.snooze(.milliseconds(50)) }
            }
            let job = try await client.enqueue(Snoozer())
            let ghouls = Ghouls(client: client, handlers: handlers, configuration: quickConfiguration())
            try await whileRunning(ghouls) {
                try await eventually("snoozer completes") { try await client.jobs.job(job.id).state == .completed }
            }
            let record = try await client.jobs.job(job.id)
            #expect(runs.load(ordering: .relaxed) == 3)
            #expect(record.attempt == 1)
            #expect(record.claims == 3)
            #expect(record.errors.isEmpty)
        }
    }

    @Test("cancelling a running job cancels its handler's task", .disabled(if: TestDatabase.throughTransactionPooler, "watches LISTEN, which a transaction pooler has not (the workers poll there)"))
    func cancelRunning() async throws {
        try await withQueueDatabase("queue_cancel") { client in
            let started = Atomic<Bool>(false)
            var handlers = JobHandlers()
            handlers.register(Slow.self) { job, _ in
                started.store(true, ordering: .relaxed)
                try await Task.sleep(for: .milliseconds(job.milliseconds))
            }
            let job = try await client.enqueue(Slow(milliseconds: 60_000))
            let waiting = try await client.enqueue(Slow(milliseconds: 1), options: JobOptions(scheduledAt: Date().addingTimeInterval(3600)))
            let ghouls = Ghouls(client: client, handlers: handlers, configuration: quickConfiguration())
            try await whileRunning(ghouls) {
                try await eventually("slow job starts") { started.load(ordering: .relaxed) }
                // The request travels by NOTIFY (the heartbeat would notice it only 20 s later).
                try await eventually("listening") { ghouls.isListening }
                #expect(try await client.jobs.cancel(job.id) == .requested)
                #expect(try await client.jobs.cancel(waiting.id) == .cancelled)
                try await eventually("slow job cancelled", timeout: .seconds(15)) { try await client.jobs.job(job.id).state == .cancelled }
            }
            #expect(try await client.jobs.job(waiting.id).state == .cancelled)
            #expect(try await client.jobs.cancel(job.id) == .alreadyFinished)
            // A cancelled job can be retried by the operator.
            #expect(try await client.jobs.retry(waiting.id).state == .available)
        }
    }

    @Test("graceful shutdown lets running jobs finish, and gives back those past the grace period")
    func drain() async throws {
        try await withQueueDatabase("queue_drain") { client in
            let started = Atomic<Int>(0)
            var handlers = JobHandlers()
            handlers.register(Slow.self) { job, _ in
                started.add(1, ordering: .relaxed)
                try await Task.sleep(for: .milliseconds(job.milliseconds))
            }
            // Finishing within the grace period: completed.
            try await client.enqueue(contentsOf: (0..<4).map { _ in Slow(milliseconds: 400) })
            let ghouls = Ghouls(client: client, handlers: handlers, configuration: quickConfiguration(grace: .seconds(10)))
            try await whileRunning(ghouls) {
                try await eventually("4 started") { started.load(ordering: .relaxed) == 4 }
            }
            #expect(try await count(client, "SELECT count(*) FROM queue.jobs WHERE state = 'completed'") == 4)

            // Outliving it: released, attempt given back, nothing running.
            try await client.execute("DELETE FROM queue.jobs")
            started.store(0, ordering: .relaxed)
            try await client.enqueue(contentsOf: (0..<3).map { _ in Slow(milliseconds: 60_000) })
            let short = Ghouls(client: client, handlers: handlers, configuration: quickConfiguration(grace: .milliseconds(300)))
            try await whileRunning(short) {
                try await eventually("3 started") { started.load(ordering: .relaxed) == 3 }
            }
            #expect(try await count(client, "SELECT count(*) FROM queue.jobs WHERE state = 'available' AND attempt = 0") == 3)
            #expect(try await count(client, "SELECT count(*) FROM queue.jobs WHERE state = 'running'") == 0)
        }
    }

    @Test("a handler that ignores cancellation cannot hold the shutdown: its job is given back and its late effect refused")
    func abandonedHandler() async throws {
        try await withQueueDatabase("queue_abandon") { client in
            let started = Atomic<Bool>(false)
            final class Outcome: Sendable { let text = Mutex<String?>(nil) }
            let late = Outcome()
            var handlers = JobHandlers()
            handlers.register(Effect.self) { job, context in
                started.store(true, ordering: .relaxed)
                // Work that cancellation does not reach (a detached task, a blocking call), which
                // then writes its effect through the job's transaction.
                await Task.detached {
                    try? await Task.sleep(for: .seconds(8))
                    do {
                        try await context.transaction { tx in
                            try await tx.execute("INSERT INTO public.effects (job_id, n) VALUES (\(context.id), \(job.n))")
                        }
                        late.text.withLock { $0 = "committed" }
                    } catch let error as PhylacteryError {
                        late.text.withLock { $0 = "\(error.code)" }
                    } catch {
                        late.text.withLock { $0 = "\(error)" }
                    }
                }.value
            }
            let job = try await client.enqueue(Effect(n: 7))
            var configuration = quickConfiguration(grace: .milliseconds(200))
            configuration.abandonAfter = .milliseconds(300)
            let ghouls = Ghouls(client: client, handlers: handlers, configuration: configuration)
            try await whileRunning(ghouls) {
                try await eventually("the handler runs") { started.load(ordering: .relaxed) }
            }
            // The drain ended without waiting for the handler, which is still sleeping.
            #expect(late.text.withLock { $0 } == nil)
            let released = try await client.jobs.job(job.id)
            #expect(released.state == .available && released.attempt == 0)
            try await eventually("the abandoned handler tries its transaction") { late.text.withLock { $0 } != nil }
            #expect(late.text.withLock { $0 } == "\(PhylacteryError.Code.leaseLost)")
            #expect(try await count(client, "SELECT count(*) FROM public.effects") == 0)
        }
    }

    @Test("a worker that lost its lease cannot overwrite the attempt that replaced it")
    func fencing() async throws {
        try await withQueueDatabase("queue_fencing") { client in
            let job = try await client.enqueue(Effect(n: 1))
            // A first worker claims, then stalls past its lease.
            let release = Atomic<Bool>(false)
            let firstStarted = Atomic<Bool>(false)
            var stalling = JobHandlers()
            stalling.register(Effect.self) { job, context in
                // Only the first attempt stalls: this worker is alive and may claim the retry too.
                let stalls = context.attempt == 1
                if stalls {
                    firstStarted.store(true, ordering: .relaxed)
                    while !release.load(ordering: .relaxed) { try? await Task.sleep(for: .milliseconds(20)) }
                }
                try await context.transaction { tx in
                    try await tx.execute("INSERT INTO public.effects (job_id, n) VALUES (\(context.id), \(stalls ? -1 : job.n))")
                }
            }
            // Its heartbeats are far apart; one may still come (it runs one when its listener
            // connects), so the wait below expires the first attempt's lease again until it is rescued.
            var stalled = quickConfiguration(lease: .seconds(60))
            stalled.heartbeatInterval = .seconds(55)
            let first = Ghouls(client: client, handlers: stalling, configuration: stalled)
            let firstRun = Task { try await first.run() }
            try await eventually("first worker holds the job") { firstStarted.load(ordering: .relaxed) }
            // It misses its heartbeats (a pause, a partition): its lease runs out.
            try await client.execute("UPDATE queue.jobs SET lease_expires_at = now() - interval '1 second' WHERE id = \(job.id)")
            // A second worker (healthy, rescuing) takes over once the lease expired.
            var rescuing = quickConfiguration(lease: .seconds(60))
            rescuing.rescueInterval = .milliseconds(200)
            let second = Ghouls(client: client, handlers: effectHandlers(), configuration: rescuing)
            try await whileRunning(second) {
                try await eventually("second attempt completes") {
                    try await client.execute("""
                        UPDATE queue.jobs SET lease_expires_at = now() - interval '1 second'
                        WHERE id = \(job.id) AND state = 'running' AND attempt = 1 AND lease_expires_at > now()
                        """)
                    return try await client.jobs.job(job.id).state == .completed
                }
            }
            release.store(true, ordering: .relaxed)
            first.beginShutdown()
            try await firstRun.value
            let record = try await client.jobs.job(job.id)
            #expect(record.state == .completed)
            #expect(record.attempt == 2)
            #expect(record.errors.map(\.reason) == [.leaseExpired])
            // Only the second attempt's effect exists; the stale one was refused before it ran.
            let effects = try await client.query("SELECT n FROM public.effects").collect().map { try $0.decode(Int.self) }
            #expect(effects == [1])
        }
    }

    @Test("with the listener's connection killed, jobs still run by polling, and the listener comes back", .disabled(if: TestDatabase.throughTransactionPooler, "watches LISTEN, which a transaction pooler has not (the workers poll there)"))
    func listenerFallback() async throws {
        try await withQueueDatabase("queue_listener") { client in
            let ghouls = Ghouls(client: client, handlers: effectHandlers(), configuration: quickConfiguration())
            try await whileRunning(ghouls) {
                try await eventually("listening") { ghouls.isListening }
                try await client.execute("""
                    SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                    WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()
                    """)
                try await client.enqueue(contentsOf: (0..<20).map { Effect(n: $0) })
                try await eventually("20 jobs complete") { try await count(client, "SELECT count(*) FROM public.effects") == 20 }
                try await eventually("listening again") { ghouls.isListening }
                try await client.enqueue(Effect(n: 99))
                try await eventually("woken job completes") { try await count(client, "SELECT count(*) FROM public.effects") == 21 }
            }
        }
    }

    @Test("a global concurrency limit holds across two worker processes")
    func globalConcurrency() async throws {
        try await withQueueDatabase("queue_global", connections: 10) { client in
            let current = Atomic<Int>(0), peak = Atomic<Int>(0)
            var handlers = JobHandlers()
            handlers.register(Slow.self) { job, _ in
                let now = current.add(1, ordering: .relaxed).newValue
                var seen = peak.load(ordering: .relaxed)
                while now > seen, !peak.compareExchange(expected: seen, desired: now, ordering: .relaxed).exchanged { seen = peak.load(ordering: .relaxed) }
                try await Task.sleep(for: .milliseconds(job.milliseconds))
                current.subtract(1, ordering: .relaxed)
            }
            try await client.enqueue(contentsOf: (0..<12).map { _ in Slow(milliseconds: 150) })
            let queues = ["default": QueueConfiguration(concurrency: 8, globalConcurrency: 2)]
            let a = Ghouls(client: client, handlers: handlers, configuration: quickConfiguration(queues))
            let b = Ghouls(client: client, handlers: handlers, configuration: quickConfiguration(queues))
            try await whileRunning(a) {
                try await whileRunning(b) {
                    try await eventually("12 complete") { try await count(client, "SELECT count(*) FROM queue.jobs WHERE state = 'completed'") == 12 }
                }
            }
            #expect(peak.load(ordering: .relaxed) <= 2)
            #expect(peak.load(ordering: .relaxed) >= 1)
        }
    }

    @Test("a rate limit caps claims per window")
    func rateLimit() async throws {
        try await withQueueDatabase("queue_rate") { client in
            // First start of each job (delivery is at-least-once: a job may start again after a rescue).
            let started = Mutex<[UUID: ContinuousClock.Instant]>([:])
            var handlers = JobHandlers()
            handlers.register(Slow.self) { _, context in
                let now = ContinuousClock.now
                started.withLock { if $0[context.id] == nil { $0[context.id] = now } }
            }
            try await client.enqueue(contentsOf: (0..<9).map { _ in Slow(milliseconds: 0) })
            let queues = ["default": QueueConfiguration(concurrency: 8, rateLimit: QueueRateLimit(jobs: 3, per: .milliseconds(700)))]
            let ghouls = Ghouls(client: client, handlers: handlers, configuration: quickConfiguration(queues))
            let begin = ContinuousClock.now
            try await whileRunning(ghouls) {
                try await eventually("9 complete") { try await count(client, "SELECT count(*) FROM queue.jobs WHERE state = 'completed'") == 9 }
            }
            // 9 jobs at 3 per window need at least three windows: the last starts ≥ 2 windows in.
            let starts = started.withLock { Array($0.values) }.sorted()
            #expect(starts.count == 9)
            #expect(starts[8] - begin >= .milliseconds(1400))
            // The claims themselves, by the database's clock (a handler's start may lag its claim on a
            // loaded machine): every fourth claim opens a new window, at least 700 ms after the last.
            let claims = try await client.query("SELECT extract(epoch FROM attempted_at)::float8 FROM queue.jobs ORDER BY attempted_at")
                .collect().map { try $0.decode(Double.self) }
            #expect(claims.count == 9)
            if claims.count == 9 {
                #expect(claims[3] - claims[0] >= 0.699 && claims[6] - claims[3] >= 0.699, "claims at \(claims.map { $0 - claims[0] })")
            }
        }
    }

    @Test("periodic jobs are enqueued once per fire, whichever process leads")
    func periodic() async throws {
        try await withQueueDatabase("queue_periodic", connections: 10) { client in
            var configuration = quickConfiguration()
            configuration.periodicJobs = [PeriodicJob(name: "tick", schedule: .every(.milliseconds(500))) { Effect(n: 0) }]
            let a = Ghouls(client: client, handlers: effectHandlers(), configuration: configuration)
            let b = Ghouls(client: client, handlers: effectHandlers(), configuration: configuration)
            let begin = Date()
            try await whileRunning(a) {
                try await whileRunning(b) {
                    try await eventually("four fires") {
                        try await count(client, "SELECT count(*) FROM queue.jobs WHERE unique_key LIKE 'periodic:tick:%'") >= 4
                    }
                }
            }
            let elapsed = Date().timeIntervalSince(begin)
            let fires = try await count(client, "SELECT count(*) FROM queue.jobs WHERE unique_key LIKE 'periodic:tick:%'")
            let distinct = try await count(client, "SELECT count(DISTINCT unique_key) FROM queue.jobs WHERE unique_key LIKE 'periodic:tick:%'")
            // Two processes, yet one job per fire time: never more jobs than fire times passed.
            #expect(fires == distinct)
            #expect(fires >= 4 && Double(fires) <= elapsed / 0.5 + 1, "fires: \(fires) in \(elapsed) s")
        }
    }

    @Test("a new leader makes up the latest missed fire once, when asked to", .disabled(if: TestDatabase.throughTransactionPooler, "watches the leader's session lock, which a transaction pooler has not (PoolerTests covers the fallback)"))
    func periodicCatchUp() async throws {
        try await withQueueDatabase("queue_catch_up") { client in
            var configuration = quickConfiguration()
            configuration.periodicJobs = [
                PeriodicJob(name: "hourly", schedule: .every(.seconds(3600)), catchUp: .seconds(3 * 3600)) { Effect(n: 1) },
                PeriodicJob(name: "skipping", schedule: .every(.seconds(3600))) { Effect(n: 2) },
            ]
            let lastHour = Int64(floor(Date().timeIntervalSince1970 / 3600) * 3600 * 1000)
            // Two leaders one after the other: the missed fire is enqueued by the first only.
            for _ in 0..<2 {
                let ghouls = Ghouls(client: client, handlers: effectHandlers(), configuration: configuration)
                try await whileRunning(ghouls) {
                    try await eventually("the missed fire is enqueued") {
                        try await count(client, "SELECT count(*) FROM queue.jobs WHERE unique_key LIKE 'periodic:hourly:%'") >= 1
                    }
                    try await eventually("this process leads") {
                        try await count(client, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())") >= 1
                    }
                    try await Task.sleep(for: .milliseconds(300))  // its catch-up follows the lock at once
                }
            }
            let keys = try await client.query("SELECT unique_key FROM queue.jobs WHERE unique_key LIKE 'periodic:%'").collect().map { try $0.decode(String.self) }
            // (An hour boundary crossed during the test would add that fire, once, for both jobs.)
            #expect(keys.filter { $0.hasPrefix("periodic:hourly:") }.contains("periodic:hourly:\(lastHour)"), "\(keys)")
            #expect(Set(keys).count == keys.count, "\(keys)")
            #expect(!keys.contains("periodic:skipping:\(lastHour)"), "\(keys)")
            // A window no shorter than the retention is refused: a pruned fire could run again.
            var unsafe = quickConfiguration()
            unsafe.retention = .seconds(3600)
            unsafe.periodicJobs = [PeriodicJob(name: "hourly", schedule: .every(.seconds(3600)), catchUp: .seconds(3600)) { Effect(n: 1) }]
            let refused = await #expect(throws: PhylacteryError.self) { try await Ghouls(client: client, handlers: effectHandlers(), configuration: unsafe).run() }
            #expect(refused?.code == .invalidArgument)
        }
    }

    @Test("pruning deletes old finished jobs in batches and nothing else")
    func prune() async throws {
        try await withQueueDatabase("queue_prune") { client in
            try await client.enqueue(contentsOf: (0..<300).map { Effect(n: $0) })
            try await client.execute("""
                UPDATE queue.jobs SET state = 'completed', finalized_at = now() - interval '2 days'
                WHERE id IN (SELECT id FROM queue.jobs ORDER BY id LIMIT 250)
                """)
            try await client.execute("""
                UPDATE queue.jobs SET state = 'discarded', finalized_at = now() - interval '1 hour'
                WHERE id IN (SELECT id FROM queue.jobs WHERE state = 'available' ORDER BY id LIMIT 10)
                """)
            #expect(try await client.jobs.prune(olderThan: .seconds(86_400)) == 250)
            #expect(try await count(client, "SELECT count(*) FROM queue.jobs") == 50)
            let stats = try await client.jobs.stats()
            #expect(stats.counts.first { $0.state == "available" }?.count == 40)
            #expect(stats.counts.first { $0.state == "discarded" }?.count == 10)
            #expect((stats.queues.first?.oldestAvailableAge ?? -1) >= 0)
        }
    }
}
