import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Phylactery
import PhylacteryConsole
import PostgresNIO

/// `phylactery-bench console`: the console's pages over a database of 1,000,000 jobs and 1,000,000
/// spans.
///
/// Seeds the rows with `COPY` (jobs in every state over the last week, with errors on the failed
/// ones; spans as 100,000 traces of 10 spans over the last three days, each root tagged with a job),
/// analyses the tables, then measures the server time of the pages — the job list (`/queue`), the
/// trace list (`/traces`), one job's detail (`/jobs/ID`) and the overview (`/`) — requested through
/// the console's router in-process (HummingbirdTesting's router framework: routing, the security
/// middleware, the queries and the Mustache rendering, no sockets), as the median of repeated
/// requests, and the library calls behind them. Baselines in the same run: a `SELECT 1` round trip (the floor of any page) and the
/// trace list's deep page read with `OFFSET` instead of a cursor.
struct ConsoleBenchmark {
    let client: PhylacteryClient
    let logger: Logger
    var jobs = 1_000_000
    var traces = 100_000
    var spansPerTrace = 10
    var repeats = 31
    var results: [String: Double] = [:]
    /// Generate the rows inside the server (`INSERT … SELECT`) instead of sending them with COPY.
    var seedInServer = false
    /// Jobs seeded, so pages can ask for one by id.
    var sampleJob: UUID?

    mutating func run() async throws {
        try await Migrator(client: self.client, federation: try Federation.standard(extensions: [])).apply(allowing: [])
        try await self.seed()
        try await self.measureLibrary()
        try await self.measurePages()
    }

    // MARK: - Seeding

    /// `2026-11-30 09:12:03.123456+00` for microseconds since the epoch (what COPY reads as timestamptz).
    static func timestamp(_ microseconds: Int64) -> String {
        let seconds = microseconds / 1_000_000, fraction = microseconds % 1_000_000
        let (y, m, d) = TraceStore.civilDate(day: seconds / 86_400)
        let rest = seconds % 86_400
        func two<N: BinaryInteger>(_ n: N) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let micros = String(fraction)
        return "\(y)-\(two(m))-\(two(d)) \(two(rest / 3600)):\(two(rest / 60 % 60)):\(two(rest % 60)).\(String(repeating: "0", count: 6 - micros.count))\(micros)+00"
    }

    static let kinds = ["mail.send", "report.build", "memory.embed", "feed.fetch", "cleanup.sweep"]
    static let queues = ["default", "mail", "reports"]

    mutating func seed() async throws {
        if self.seedInServer { return try await self.seedInsideServer() }
        try await self.client.execute("TRUNCATE queue.jobs")
        try await self.client.execute("TRUNCATE traces.spans")
        let now = Int64(Date().timeIntervalSince1970 * 1_000_000)
        let week: Int64 = 7 * 86_400_000_000
        var random = SystemRandomNumberGenerator()
        var jobIDs: [UUID] = []
        jobIDs.reserveCapacity(self.jobs)
        let jobCount = self.jobs
        let start = ContinuousClock.now
        try await self.client.transaction { tx in
            try await tx.copy(into: "jobs", schema: Chamber.queue.schema, columns: [
                "id", "created_at", "updated_at", "kind", "queue", "state", "priority", "args", "attempt", "max_attempts",
                "scheduled_at", "attempted_at", "finalized_at", "worker", "errors",
            ]) { rows in
                jobIDs.removeAll(keepingCapacity: true)  // the body runs again if the transaction is retried
                for n in 0..<jobCount {
                    // Oldest first, spread over the week; the newest 2% still waiting or running.
                    let created = now - week + week * Int64(n) / Int64(jobCount)
                    let id = UUID.v7(at: Date(timeIntervalSince1970: TimeInterval(created) / 1_000_000))
                    jobIDs.append(id)
                    let roll = Int.random(in: 0..<100, using: &random)
                    let state: JobState = n >= jobCount * 98 / 100 ? (roll < 10 ? .running : .available)
                        : roll < 90 ? .completed : roll < 95 ? .discarded : roll < 98 ? .cancelled : .completed
                    let attempt = state == .available ? 0 : state == .discarded ? 5 : 1
                    let finished = created + Int64.random(in: 1_000...2_000_000, using: &random)
                    try rows.field(id.uuidString)
                    try rows.field(Self.timestamp(created))
                    try rows.field(Self.timestamp(finished))
                    try rows.field(Self.kinds[n % Self.kinds.count])
                    try rows.field(Self.queues[n % Self.queues.count])
                    try rows.field(state.rawValue)
                    rows.field(10)
                    try rows.field(json: ["to": "user\(n)@example.org", "subject": "note \(n)"])
                    rows.field(attempt)
                    rows.field(5)
                    try rows.field(Self.timestamp(created))
                    try rows.field(attempt > 0 ? Self.timestamp(created + 500) : nil)
                    try rows.field(state.isFinal ? Self.timestamp(finished) : nil)
                    try rows.field(attempt > 0 ? "bench-worker-\(n % 4)" : nil)
                    let errors = state == .discarded
                        ? (1...5).map { JobAttemptError(attempt: $0, at: Date(timeIntervalSince1970: TimeInterval(created) / 1_000_000), message: "upstream timed out after 30 s (attempt \($0))", reason: .error) }
                        : []
                    try rows.field(json: errors)
                    try await rows.endRow()
                }
            }
        }
        let jobSeconds = Measure.seconds(ContinuousClock.now - start)
        line("Seeded \(jobCount) jobs with COPY in \(String(format: "%.1f", jobSeconds)) s")
        self.sampleJob = jobIDs[jobCount / 2]

        // Spans: 100,000 traces of 10 over the last three days; each root runs one of the jobs.
        let span = 3 * 86_400_000_000 as Int64
        try await self.client.traces.createPartitions(from: Date(timeIntervalSince1970: TimeInterval(now - span) / 1_000_000), days: 4)
        let traceCount = self.traces, perTrace = self.spansPerTrace
        let spanStart = ContinuousClock.now
        try await self.client.transaction { tx in
            try await tx.copy(into: SpanRecord.table, schema: Chamber.traces.schema, columns: [
                "id", "trace_id", "span_id", "parent_span_id", "name", "kind", "start_us", "end_us", "duration_us",
                "status", "status_message", "attributes", "events", "links", "service", "remote_parent",
            ]) { rows in
                for t in 0..<traceCount {
                    let traceID = TraceID(high: UInt64(t + 1), low: UInt64.random(in: 1...UInt64.max, using: &random))
                    let rootStart = now - span + span * Int64(t) / Int64(traceCount)
                    let job = jobIDs[t * (jobIDs.count / traceCount)]
                    let failing = t % 20 == 0
                    for s in 0..<perTrace {
                        let spanID = SpanID(UInt64(t) << 8 | UInt64(s + 1))
                        let begin = rootStart + Int64(s) * 100, duration: Int64 = s == 0 ? Int64(perTrace) * 100 + 50 : 80
                        let status: SpanRecord.Status = failing && s == 4 ? .error : .unset
                        var attributes: [String: TraceValue] = ["step": .int(Int64(s))]
                        if s == 0 {
                            attributes = ["phylactery.job.id": .string(job.uuidString), "phylactery.job.kind": .string(Self.kinds[t % Self.kinds.count]),
                                          "phylactery.job.queue": .string("default"), "phylactery.job.attempt": .int(1)]
                        }
                        try rows.field(SpanRecord.rowID(startMicroseconds: begin, spanID: spanID).uuidString)
                        try rows.field(traceID.uuid.uuidString)
                        rows.field(spanID.storedValue)
                        if s == 0 { try rows.field(nil) } else { rows.field(SpanID(UInt64(t) << 8 | 1).storedValue) }
                        try rows.field(s == 0 ? "job \(Self.kinds[t % Self.kinds.count])" : s == 4 ? "fetch" : "step")
                        try rows.field(s == 0 ? "consumer" : "internal")
                        rows.field(begin)
                        rows.field(begin + duration)
                        rows.field(duration)
                        try rows.field(status.rawValue)
                        try rows.field(status == .error ? "upstream timed out" : nil)
                        try rows.field(json: attributes)
                        try rows.field(json: [SpanRecord.Event]())
                        try rows.field(json: [SpanRecord.Link]())
                        try rows.field("bench")
                        try rows.field("f")
                        try await rows.endRow()
                    }
                }
            }
        }
        let spanSeconds = Measure.seconds(ContinuousClock.now - spanStart)
        line("Seeded \(traceCount * perTrace) spans (\(traceCount) traces) with COPY in \(String(format: "%.1f", spanSeconds)) s")
        try await self.client.execute("VACUUM ANALYZE queue.jobs")
        try await self.client.execute("VACUUM ANALYZE traces.spans")
        self.results["jobs_seeded"] = Double(jobCount)
        self.results["spans_seeded"] = Double(traceCount * perTrace)
    }

    /// The same rows as ``seed()``, generated by the server: the ids are v7 UUIDs of the rows' times
    /// (`uuidv7(shift)`), span rows get ``SpanRecord/rowID(startMicroseconds:spanID:)``'s id.
    mutating func seedInsideServer() async throws {
        try await self.client.execute("TRUNCATE queue.jobs")
        try await self.client.execute("TRUNCATE traces.spans")
        let errors = try JSONBEncoder().encodeToBuffer((1...5).map {
            JobAttemptError(attempt: $0, at: Date(), message: "upstream timed out after 30 s (attempt \($0))", reason: .error)
        })
        let start = ContinuousClock.now
        try await self.client.execute(PostgresQuery(unsafeSQL: """
            INSERT INTO queue.jobs (id, created_at, updated_at, kind, queue, state, priority, args, attempt, max_attempts,
                                    scheduled_at, attempted_at, finalized_at, worker, errors)
            SELECT uuidv7(created - now()), created, created + d, (ARRAY['mail.send', 'report.build', 'memory.embed', 'feed.fetch', 'cleanup.sweep'])[1 + n % 5],
                   (ARRAY['default', 'mail', 'reports'])[1 + n % 3], state, 10,
                   jsonb_build_object('to', 'user' || n || '@example.org', 'subject', 'note ' || n),
                   CASE state WHEN 'available' THEN 0 WHEN 'discarded' THEN 5 ELSE 1 END, 5, created,
                   CASE WHEN state <> 'available' THEN created + interval '500 microseconds' END,
                   CASE WHEN state IN ('completed', 'discarded', 'cancelled') THEN created + d END,
                   CASE WHEN state <> 'available' THEN 'bench-worker-' || n % 4 END,
                   CASE WHEN state = 'discarded' THEN $2::text::jsonb ELSE '[]'::jsonb END
            FROM (SELECT n, now() - interval '7 days' + interval '7 days' * n / $1 AS created,
                         make_interval(secs => 0.001 + random() * 2) AS d,
                         CASE WHEN n >= $1 * 98 / 100 THEN (CASE WHEN random() < 0.1 THEN 'running' ELSE 'available' END)
                              ELSE (CASE WHEN r < 0.90 THEN 'completed' WHEN r < 0.95 THEN 'discarded' WHEN r < 0.98 THEN 'cancelled' ELSE 'completed' END) END AS state
                  FROM (SELECT n, random() AS r FROM generate_series(0, $1 - 1) AS n) AS g) AS rows
            """, binds: {
                var binds = PostgresBindings()
                binds.append(Int64(self.jobs))
                binds.append(String(buffer: errors))
                return binds
            }()))
        line("Seeded \(self.jobs) jobs inside the server in \(String(format: "%.1f", Measure.seconds(ContinuousClock.now - start))) s")
        self.sampleJob = try await self.client.query("SELECT id FROM queue.jobs ORDER BY id OFFSET \(self.jobs / 2) LIMIT 1").collect().first?.decode(UUID.self)

        let now = Int64(Date().timeIntervalSince1970 * 1_000_000)
        let window: Int64 = 3 * 86_400_000_000
        try await self.client.traces.createPartitions(from: Date(timeIntervalSince1970: TimeInterval(now - window) / 1_000_000), days: 4)
        let spanStart = ContinuousClock.now
        // The row id as SpanRecord.rowID builds it: start milliseconds, version 7 and 12 bits of the
        // sub-millisecond part, the variant, then the span id's bits.
        try await self.client.execute(PostgresQuery(unsafeSQL: """
            WITH j AS (SELECT row_number() OVER (ORDER BY id) - 1 AS k, id FROM queue.jobs),
            s AS (
                SELECT t, step, ($1 - $2 + $2 * t / $3) + step * 100 AS begin, (t << 8) | (step + 1) AS span,
                       CASE WHEN step = 0 THEN $4 * 100 + 50 ELSE 80 END AS duration
                FROM generate_series(0, $3 - 1) AS t, generate_series(0, $4 - 1) AS step)
            INSERT INTO traces.spans (id, trace_id, span_id, parent_span_id, name, kind, start_us, end_us, duration_us,
                                      status, status_message, attributes, events, links, service, remote_parent)
            SELECT (lpad(to_hex(s.begin / 1000), 12, '0') || '7' || lpad(to_hex((s.begin % 1000) * 4096 / 1000), 3, '0')
                    || lpad(to_hex(128 | ((s.span >> 56) & 63)), 2, '0') || lpad(to_hex(s.span & 72057594037927935), 14, '0'))::uuid,
                   (lpad(to_hex(s.t + 1), 16, '0') || lpad(to_hex(hashint8(s.t)), 16, '0'))::uuid, s.span,
                   CASE WHEN s.step = 0 THEN NULL ELSE (s.t << 8) | 1 END,
                   CASE WHEN s.step = 0 THEN 'job ' || (ARRAY['mail.send', 'report.build', 'memory.embed', 'feed.fetch', 'cleanup.sweep'])[1 + s.t % 5]
                        WHEN s.step = 4 THEN 'fetch' ELSE 'step' END,
                   CASE WHEN s.step = 0 THEN 'consumer' ELSE 'internal' END,
                   s.begin, s.begin + s.duration, s.duration,
                   CASE WHEN s.t % 20 = 0 AND s.step = 4 THEN 'error' ELSE 'unset' END,
                   CASE WHEN s.t % 20 = 0 AND s.step = 4 THEN 'upstream timed out' END,
                   CASE WHEN s.step = 0 THEN jsonb_build_object('phylactery.job.id', upper(j.id::text), 'phylactery.job.queue', 'default', 'phylactery.job.attempt', 1)
                        ELSE jsonb_build_object('step', s.step) END,
                   '[]', '[]', 'bench', false
            FROM s LEFT JOIN j ON s.step = 0 AND j.k = s.t * ($5 / $3)
            """, binds: {
                var binds = PostgresBindings()
                binds.append(now)
                binds.append(window)
                binds.append(Int64(self.traces))
                binds.append(Int64(self.spansPerTrace))
                binds.append(Int64(self.jobs))
                return binds
            }()))
        line("Seeded \(self.traces * self.spansPerTrace) spans (\(self.traces) traces) inside the server in \(String(format: "%.1f", Measure.seconds(ContinuousClock.now - spanStart))) s")
        try await self.client.execute("VACUUM ANALYZE queue.jobs")
        try await self.client.execute("VACUUM ANALYZE traces.spans")
        self.results["jobs_seeded"] = Double(self.jobs)
        self.results["spans_seeded"] = Double(self.traces * self.spansPerTrace)
    }

    // MARK: - Timing

    /// The median milliseconds of `repeats` runs of `body`, after two untimed warm-up runs.
    func median(_ body: () async throws -> Void) async throws -> Double {
        try await body()
        try await body()
        var times: [Double] = []
        for _ in 0..<self.repeats {
            let start = ContinuousClock.now
            try await body()
            times.append(Measure.seconds(ContinuousClock.now - start) * 1000)
        }
        return Measure.median(times)
    }

    static func ms(_ value: Double) -> String { String(format: "%.2f ms", value) }

    /// The library calls the pages make, and the baselines.
    mutating func measureLibrary() async throws {
        let client = self.client
        let floor = try await self.median { _ = try await client.query("SELECT 1").collect() }
        line("Baseline: a SELECT 1 round trip \(Self.ms(floor))")
        self.results["select1_ms"] = floor

        let first = try await self.median { blackHole(try await client.traces.page(TraceFilter(limit: 50))) }
        line("traces.page (first 50 of \(self.traces)): \(Self.ms(first))")
        self.results["library_traces_page_ms"] = first

        // Deep in the list: the page after the 50,000th trace, by cursor and (the baseline) by OFFSET.
        let depth = self.traces / 2
        let deep = try await client.traces.list(TraceFilter(limit: depth))
        let cursor = try requireValue(deep.last?.cursor)
        let deepPage = try await self.median { blackHole(try await client.traces.page(TraceFilter(limit: 50, after: cursor))) }
        let offset = try await self.median {
            blackHole(try await client.query("""
                SELECT r.trace_id FROM traces.spans r WHERE (r.parent_span_id IS NULL OR r.remote_parent)
                ORDER BY r.start_us DESC, r.id DESC OFFSET \(depth) LIMIT 50
                """).collect())
        }
        line("traces.page after the \(depth)th trace: \(Self.ms(deepPage)) by cursor, \(Self.ms(offset)) by OFFSET (\(String(format: "%.0f", offset / deepPage))× slower)")
        self.results["library_traces_deep_page_ms"] = deepPage
        self.results["offset_traces_deep_page_ms"] = offset

        let errors = try await self.median { blackHole(try await client.traces.page(TraceFilter(status: .error, limit: 50))) }
        line("traces.page with status error: \(Self.ms(errors))")
        self.results["library_traces_error_page_ms"] = errors

        let job = try requireValue(self.sampleJob)
        let ofJob = try await self.median { blackHole(try await client.traces.traces(ofJob: job)) }
        line("traces(ofJob:): \(Self.ms(ofJob))")
        self.results["library_traces_of_job_ms"] = ofJob

        let waterfallTrace = try requireValue(deep.first?.traceID)
        let waterfall = try await self.median { blackHole(try await client.traces.waterfall(waterfallTrace)) }
        line("traces.waterfall (10 spans): \(Self.ms(waterfall))")
        self.results["library_waterfall_ms"] = waterfall

        let overview = try await self.median { blackHole(try await client.serverOverview()) }
        line("serverOverview: \(Self.ms(overview))")
        self.results["library_overview_ms"] = overview

        // The job counts the queue page and the overview show: the waiting and running jobs counted at
        // each request (partial indexes), the finished ones by a scan the console runs in the
        // background at most every 15 s; and the old one-statement count of everything, for scale.
        let active = try await self.median { blackHole(try await client.jobs.activeCounts()) }
        let finished = try await self.median { blackHole(try await client.jobs.finishedCounts()) }
        let everything = try await self.median {
            blackHole(try await client.query("""
                SELECT queue, CASE WHEN state = 'available' AND scheduled_at > now() THEN 'scheduled' ELSE state END, count(*)
                FROM queue.jobs GROUP BY 1, 2
                """).collect())
        }
        line("jobs.activeCounts: \(Self.ms(active)); jobs.finishedCounts (background): \(Self.ms(finished)); every job in one GROUP BY: \(Self.ms(everything))")
        self.results["library_active_counts_ms"] = active
        self.results["library_finished_counts_ms"] = finished
        self.results["all_counts_group_by_ms"] = everything
    }
}

extension ConsoleBenchmark {
    /// The pages, through the console's router in-process, with a bearer token as a script sends it.
    mutating func measurePages() async throws {
        let token = String(repeating: "b7", count: 32)
        let home = NSTemporaryDirectory() + "phylactery-bench-console-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: home) }
        let console = try PhylacteryConsole(client: self.client, configuration: ConsoleConfiguration(home: home), access: ConsoleAccess(token: token), logger: self.logger)
        let job = try requireValue(self.sampleJob)
        let bench = self
        let pages: [(key: String, uri: String)] = [
            ("jobs_page_ms", "/queue"), ("traces_page_ms", "/traces"), ("job_detail_ms", "/jobs/\(job)"), ("overview_ms", "/"),
            ("jobs_api_ms", "/api/v1/jobs"), ("traces_api_ms", "/api/v1/traces"),
        ]
        let figures = try await console.application().test(.router) { http -> [String: Double] in
            let headers: HTTPFields = [.authorization: "Bearer \(token)"]
            var figures: [String: Double] = [:]
            for page in pages {
                var bytes = 0
                figures[page.key] = try await bench.median {
                    let response = try await http.execute(uri: page.uri, method: .get, headers: headers)
                    guard response.status == .ok else {
                        throw BenchmarkError("\(page.uri) answered \(response.status): \(String(buffer: response.body).prefix(300))")
                    }
                    bytes = response.body.readableBytes
                }
                line("GET \(page.uri): \(Self.ms(figures[page.key]!)) (median of \(bench.repeats), \(bytes) bytes)")
            }
            return figures
        }
        self.results.merge(figures) { _, new in new }
        if let floor = self.results["select1_ms"] {
            for key in ["jobs_page_ms", "traces_page_ms"] {
                if let value = figures[key] { self.results[key.replacingOccurrences(of: "_ms", with: "_vs_select1")] = value / floor }
            }
        }
    }
}

/// The value, or a benchmark error naming what was missing.
func requireValue<T>(_ value: T?, _ what: String = #function) throws -> T {
    guard let value else { throw BenchmarkError("expected a value (\(what))") }
    return value
}
