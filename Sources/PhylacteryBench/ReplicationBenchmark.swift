import Foundation
import Logging
import Phylactery
import PhylacteryEmbedded
import PhylacteryTestSupport
import PostgresNIO
import Synchronization

/// `phylactery-bench replication`: what a streaming standby costs the queue, on a primary and a
/// standby of its own (``ReplicatedPair``, two clusters in temporary homes on this machine).
///
/// The load is the queue's enqueue and process path at once: 8 tasks enqueue `--jobs` jobs, one job
/// per transaction (every one a commit that may wait for the standby), while the ghouls claim and
/// complete them (batched claims and completions, also commits); a round lasts until every job is
/// completed. The same load runs with no standby (stopped), an asynchronous standby and a synchronous
/// one (`synchronous_commit = remote_apply`: each commit waits until the standby has applied it), the
/// three in turn within each of 3 rounds (the order rotates), so all see the same machine.
///
/// The replica lag is sampled every 50 ms on the primary (`pg_stat_replication`) during the
/// asynchronous rounds: bytes of WAL written but not replayed there, and `replay_lag` (how long the
/// newest acknowledged WAL took to be applied).
struct ReplicationBenchmark {
    let logger: Logger
    let jobs: Int
    var results: [String: Double] = [:]

    struct Noop: Job { static let kind = "bench.replication"; var n: Int }

    enum Setup: String, CaseIterable {
        case none, async, sync
    }

    /// One lag sample: bytes not yet replayed, and `replay_lag` in ms.
    struct LagSample: Sendable {
        var bytes: Int64
        var milliseconds: Double
    }

    mutating func run() async throws {
        let pair = try await ReplicatedPair.start("bench", mode: .asynchronous)
        do {
            try await self.measure(pair)
        } catch {
            await pair.stop()
            throw error
        }
        await pair.stop()
    }

    mutating func measure(_ pair: ReplicatedPair) async throws {
        var options = PhylacteryClient.Configuration.Options()
        options.maximumConnections = 16
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let standbyName = ReplicatedPair.standbyName
        let logger = self.logger, jobs = self.jobs
        try await PhylacteryClient.withClient(configuration: .init(url: pair.primary.url, options: options), logger: logger) { client in
            try await Migrator(client: client, federation: try Federation.standard(extensions: [])).apply(allowing: [])
            line("Machine: \(cores) cores; primary and standby on the same machine, the client on the primary's Unix socket.")
            line("Load: \(jobs) jobs per round, enqueued one per transaction by 8 tasks while the ghouls process them.")

            var rates: [Setup: [Double]] = [:]
            var lag: [LagSample] = []
            var standbyRunning = true
            for round in 0..<3 {
                // Rotated, so no setup always runs first (or right after a standby restart).
                let order = (0..<Setup.allCases.count).map { Setup.allCases[($0 + round) % Setup.allCases.count] }
                for setup in order {
                    switch setup {
                    case .none:
                        try await pair.primary.setSynchronousStandby(nil)
                        if standbyRunning { try await pair.stopStandby() }
                        standbyRunning = false
                    case .async, .sync:
                        if !standbyRunning { try await pair.startStandby() }
                        standbyRunning = true
                        try await pair.primary.setSynchronousStandby(setup == .sync ? standbyName : nil)
                        try await Self.waitForStandby(client, name: standbyName, sync: setup == .sync)
                    }
                    try await client.execute("TRUNCATE queue.jobs")
                    if standbyRunning { try await Self.waitForStandby(client, name: standbyName, sync: setup == .sync) }
                    let samples = Mutex<[LagSample]>([])
                    let sampler: Task<Void, any Error>? = setup == .async ? Task {
                        while !Task.isCancelled {
                            let row = try await client.query("""
                                SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::int8, COALESCE(EXTRACT(epoch FROM replay_lag), 0)::float8
                                FROM pg_stat_replication WHERE application_name = \(standbyName)
                                """).collect().first
                            if let (bytes, seconds) = try row?.decode((Int64?, Double).self) {
                                samples.withLock { $0.append(LagSample(bytes: bytes ?? 0, milliseconds: seconds * 1000)) }
                            }
                            try? await Task.sleep(for: .milliseconds(50))
                        }
                    } : nil
                    let seconds = try await Self.load(client, jobs: jobs, logger: logger)
                    sampler?.cancel()
                    _ = await sampler?.result
                    lag += samples.withLock { $0 }
                    rates[setup, default: []].append(Double(jobs) / seconds)
                    line("round \(round + 1), \(setup.rawValue) standby: \(Int(Double(jobs) / seconds)) jobs/s (\(String(format: "%.2f", seconds)) s)")
                }
            }
            try await pair.primary.setSynchronousStandby(nil)

            let none = Measure.median(rates[.none] ?? []), async = Measure.median(rates[.async] ?? []), sync = Measure.median(rates[.sync] ?? [])
            let bytes = lag.map { Double($0.bytes) }.sorted(), times = lag.map(\.milliseconds).sorted()
            let bytesP50 = bytes.isEmpty ? 0 : Measure.median(bytes), bytesMax = bytes.last ?? 0
            let timeP50 = times.isEmpty ? 0 : Measure.median(times), timeMax = times.last ?? 0
            line("enqueue + process, no standby:           \(Int(none)) jobs/s (median of 3)")
            line("enqueue + process, asynchronous standby: \(Int(async)) jobs/s (\(String(format: "%.2f", async / none))× no standby)")
            line("enqueue + process, synchronous standby:  \(Int(sync)) jobs/s (\(String(format: "%.2f", sync / none))× no standby, remote_apply)")
            line("replica lag under the load (asynchronous, \(lag.count) samples every 50 ms): bytes p50 \(Int(bytesP50)), max \(Int(bytesMax)); replay_lag p50 \(String(format: "%.2f", timeP50)) ms, max \(String(format: "%.2f", timeMax)) ms")
            self.results = [
                "jobs_per_s_none": none.rounded(),
                "jobs_per_s_async": async.rounded(),
                "jobs_per_s_sync": sync.rounded(),
                "async_vs_none": async / none,
                "sync_vs_none": sync / none,
                "lag_bytes_p50": bytesP50.rounded(),
                "lag_bytes_max": bytesMax,
                "lag_ms_p50": timeP50,
                "lag_ms_max": timeMax,
                "lag_samples": Double(lag.count),
                "jobs": Double(jobs),
                "cores": Double(cores),
            ]
        }
    }

    /// Enqueues `jobs` jobs from 8 tasks (one per transaction) while ghouls process them; returns the
    /// seconds until every one is completed.
    static func load(_ client: PhylacteryClient, jobs: Int, logger: Logger) async throws -> Double {
        var handlers = JobHandlers()
        handlers.register(Noop.self) { _, _ in }
        let ghouls = Ghouls(client: client, handlers: handlers, configuration: GhoulsConfiguration(
            queues: ["default": QueueConfiguration(concurrency: 64, claimBatch: 64)],
            completionBatchSize: 256, completionFlushInterval: .milliseconds(2), retention: nil, workerName: "bench-replication"))
        let start = ContinuousClock.now
        let run = Task { try await ghouls.run() }
        let tasks = 8
        try await withThrowingTaskGroup(of: Void.self) { group in
            for t in 0..<tasks {
                group.addTask {
                    for i in stride(from: t, to: jobs, by: tasks) { try await client.enqueue(Noop(n: i)) }
                }
            }
            try await group.waitForAll()
        }
        while Int(try await client.query("SELECT count(*) FROM queue.jobs WHERE state <> 'completed'").collect().first?.decode(Int64.self) ?? 1) > 0 {
            try await Task.sleep(for: .milliseconds(10))
        }
        let seconds = Measure.seconds(ContinuousClock.now - start)
        ghouls.beginShutdown()
        try await run.value
        return seconds
    }

    /// Waits until the standby streams, has replayed everything, and (when `sync`) is synchronous.
    static func waitForStandby(_ client: PhylacteryClient, name: String, sync: Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            let row = try await client.query("""
                SELECT state, sync_state, pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::int8
                FROM pg_stat_replication WHERE application_name = \(name)
                """).collect().first
            if let (state, syncState, behind) = try row?.decode((String, String, Int64?).self),
               state == "streaming", syncState == (sync ? "sync" : "async"), behind == 0 {
                return
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw PhylacteryError(.invalidConfiguration, "The standby '\(name)' did not stream \(sync ? "synchronously " : "")within 60 s.")
    }
}
