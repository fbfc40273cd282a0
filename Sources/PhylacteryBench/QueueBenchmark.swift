import Foundation
import Logging
import Phylactery
import PhylacteryEmbedded
import PostgresNIO
import Synchronization

/// `phylactery-bench queue`: the job queue against a naive PostgreSQL queue, in one run.
///
/// - batch enqueue: one transaction per batch (COPY for large batches);
/// - single enqueue: one job per call (autocommitted), from 8 concurrent tasks, against its ceiling —
///   the server's `pgbench` sending the same statement from 8 clients (``SingleEnqueueBound``);
/// - processing: no-op jobs through ``Ghouls`` (batched claims and completions, LISTEN wake-ups),
///   until every job is recorded completed;
/// - naive baseline: the same number of jobs, each claimed and completed in its own transaction
///   with `SELECT … FOR UPDATE SKIP LOCKED LIMIT 1`, from as many connections;
/// - pickup latency: 200 jobs enqueued 20 ms apart to idle, listening workers, from the enqueue
///   call to the handler's start.
struct QueueBenchmark {
    let url: DatabaseURL
    let logger: Logger
    /// The embedded server the run started (its bin directory holds `pgbench`); `nil` with an external URL.
    var server: EmbeddedServer?
    /// Run only the single-enqueue part (`--single-enqueue-only`).
    var singleEnqueueOnly = false
    var results: [String: Double] = [:]

    struct Noop: Job { static let kind = "bench.noop"; var n: Int }
    struct Timed: Job { static let kind = "bench.timed"; static let queue = "latency"; var n: Int }

    func count(_ client: PhylacteryClient, _ sql: PostgresQuery) async throws -> Int {
        Int(try await client.query(sql).collect().first?.decode(Int64.self) ?? 0)
    }

    mutating func run() async throws {
        var options = PhylacteryClient.Configuration.Options()
        options.maximumConnections = 16
        let cores = ProcessInfo.processInfo.activeProcessorCount
        try await PhylacteryClient.withClient(configuration: .init(url: self.url, options: options), logger: self.logger) { client in
            try await Migrator(client: client, federation: try Federation.standard(extensions: [])).apply(allowing: [])
            line("Machine: \(cores) cores, server on the same machine.")

            // Single enqueue: one job per call, 8 tasks, against pgbench sending the same statement.
            let tasks = 8
            let bound = SingleEnqueueBound(
                pgbench: try SingleEnqueueBound.locatePgbench(server: self.server), url: self.url, clients: tasks, jobsPerRound: 2_000, rounds: 5)
            let probe = try PendingJob(Noop(n: 1_000_000))
            let single = try await bound.run(client: client, enqueue: { n in _ = try await client.enqueue(Noop(n: n)) }, variables: [
                "kind": probe.kind, "queue": probe.queue, "priority": String(probe.priority), "max_attempts": String(probe.maxAttempts),
                "args": String(decoding: try JSONEncoder().encode(Noop(n: 1_000_000)), as: UTF8.self),
            ])
            line("single enqueue (one job per call, \(tasks) tasks): \(Int(single.ours)) jobs/s; pgbench, the same statement, \(tasks) clients: \(Int(single.bound)) jobs/s; ours ÷ pgbench \(String(format: "%.2f", single.ratio)) (medians of \(bound.rounds) alternating rounds of \(bound.jobsPerRound) jobs)")
            if self.singleEnqueueOnly {
                self.results = [
                    "single_enqueue_jobs_per_s": single.ours.rounded(), "single_enqueue_bound_jobs_per_s": single.bound.rounded(),
                    "single_enqueue_vs_bound": single.ratio, "cores": Double(cores),
                ]
                return
            }

            // Batch enqueue.
            let batch = 20_000
            var batchRates = [Double]()
            for _ in 0..<5 {
                try await client.execute("TRUNCATE queue.jobs")
                let jobs = (0..<batch).map { Noop(n: $0) }
                let start = ContinuousClock.now
                try await client.enqueue(contentsOf: jobs)
                batchRates.append(Double(batch) / Measure.seconds(ContinuousClock.now - start))
            }
            let batchRate = Measure.median(batchRates)
            line("batch enqueue (\(batch) per transaction): \(Int(batchRate)) jobs/s (median of 5)")

            // Processing through the ghouls.
            let processed = 60_000
            try await client.execute("TRUNCATE queue.jobs")
            try await client.execute("VACUUM ANALYZE queue.jobs")
            for chunk in stride(from: 0, to: processed, by: 20_000) {
                try await client.enqueue(contentsOf: (chunk..<min(processed, chunk + 20_000)).map { Noop(n: $0) })
            }
            var handlers = JobHandlers()
            handlers.register(Noop.self) { _, _ in }
            let ghouls = Ghouls(client: client, handlers: handlers, configuration: GhoulsConfiguration(
                queues: ["default": QueueConfiguration(concurrency: 512, claimBatch: 256)],
                completionBatchSize: 1000, completionFlushInterval: .milliseconds(2), retention: nil, workerName: "bench"))
            var start = ContinuousClock.now
            let run = Task { try await ghouls.run() }
            while try await self.count(client, "SELECT count(*) FROM queue.jobs WHERE state <> 'completed'") > 0 {
                try await Task.sleep(for: .milliseconds(20))
            }
            let processSeconds = Measure.seconds(ContinuousClock.now - start)
            ghouls.beginShutdown()
            try await run.value
            let processRate = Double(processed) / processSeconds
            line("processing (no-op handlers, one process): \(Int(processRate)) jobs/s (\(processed) jobs in \(String(format: "%.2f", processSeconds)) s)")

            // Naive baseline: one job per transaction.
            let naive = 10_000, naiveWorkers = 8
            try await client.execute("TRUNCATE queue.jobs")
            try await client.enqueue(contentsOf: (0..<naive).map { Noop(n: $0) }, options: JobOptions(queue: "naive"))
            try await client.execute("VACUUM ANALYZE queue.jobs")
            start = ContinuousClock.now
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<naiveWorkers {
                    group.addTask {
                        while true {
                            let got = try await client.transaction { tx -> Bool in
                                let rows = try await tx.query("""
                                    SELECT id FROM queue.jobs WHERE state = 'available' AND queue = 'naive' AND scheduled_at <= now()
                                    ORDER BY priority, scheduled_at, id LIMIT 1 FOR UPDATE SKIP LOCKED
                                    """).collect()
                                guard let id = try rows.first?.decode(UUID.self) else { return false }
                                try await tx.execute("UPDATE queue.jobs SET state = 'running', attempt = attempt + 1, attempted_at = now() WHERE id = \(id)")
                                try await tx.execute("UPDATE queue.jobs SET state = 'completed', finalized_at = now() WHERE id = \(id)")
                                return true
                            }
                            if !got { return }
                        }
                    }
                }
                try await group.waitForAll()
            }
            let naiveRate = Double(naive) / Measure.seconds(ContinuousClock.now - start)
            line("naive baseline (SKIP LOCKED LIMIT 1, one job per transaction, \(naiveWorkers) connections): \(Int(naiveRate)) jobs/s")

            // Pickup latency with idle listening workers.
            try await client.execute("TRUNCATE queue.jobs")
            let starts = Mutex<[Int: ContinuousClock.Instant]>([:])
            var timed = JobHandlers()
            timed.register(Timed.self) { job, _ in
                let now = ContinuousClock.now
                starts.withLock { $0[job.n] = now }
            }
            let idle = Ghouls(client: client, handlers: timed, configuration: GhoulsConfiguration(
                queues: ["latency": QueueConfiguration(concurrency: 8)], pollInterval: .seconds(5), retention: nil, workerName: "bench-latency"))
            let idleRun = Task { try await idle.run() }
            while !idle.isListening { try await Task.sleep(for: .milliseconds(10)) }
            try await Task.sleep(for: .milliseconds(200))
            var enqueued = [Int: ContinuousClock.Instant]()
            for n in 0..<200 {
                enqueued[n] = ContinuousClock.now
                try await client.enqueue(Timed(n: n))
                try await Task.sleep(for: .milliseconds(20))
            }
            while starts.withLock({ $0.count }) < 200 { try await Task.sleep(for: .milliseconds(10)) }
            idle.beginShutdown()
            try await idleRun.value
            let latencies = starts.withLock { $0 }.map { n, started in Measure.seconds(started - enqueued[n]!) * 1000 }.sorted()
            let p50 = latencies[latencies.count / 2], p99 = latencies[Int(Double(latencies.count) * 0.99) - 1]
            line("pickup latency (200 jobs, 20 ms apart, idle listening workers): p50 \(String(format: "%.2f", p50)) ms, p99 \(String(format: "%.2f", p99)) ms")

            self.results = [
                "batch_enqueue_jobs_per_s": batchRate.rounded(),
                "single_enqueue_jobs_per_s": single.ours.rounded(),
                "single_enqueue_bound_jobs_per_s": single.bound.rounded(),
                "single_enqueue_vs_bound": single.ratio,
                "process_jobs_per_s": processRate.rounded(),
                "naive_process_jobs_per_s": naiveRate.rounded(),
                "process_vs_naive": processRate / naiveRate,
                "pickup_p50_ms": p50,
                "pickup_p99_ms": p99,
                "cores": Double(cores),
            ]
        }
    }
}
