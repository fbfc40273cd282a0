import Foundation
import Logging
import Phylactery
import PostgresNIO
import ServiceLifecycle
import Tracing

/// `phylactery-bench traces`: the tracer's two costs.
///
/// - Hot path: what ending a span costs the instrumented code, `PhylacteryTracer` against
///   swift-distributed-tracing's `NoOpTracer` in alternating rounds of the same loop (child spans
///   of one parent, one attribute each); the writer is not running, so only the instrumented
///   thread's own work is timed.
/// - Ingest: spans per second stored in `traces.spans` through the tracer and its background
///   writer (from the first span started until the last one is committed), with the plain `COPY`
///   of the same rows as the ceiling measured in the same run.
struct TracesBenchmark {
    let client: PhylacteryClient
    let logger: Logger
    var results: [String: Double] = [:]

    mutating func run() async throws {
        let migrator = Migrator(client: self.client, federation: try Federation(core: Federation.coreModels))
        try await migrator.auto(message: "bench traces")
        try await self.hotPath()
        try await self.ingest()
    }

    // MARK: - Hot path

    /// `spans` child spans of one parent, each setting one attribute.
    @inline(never)
    static func loop<T: Tracer>(_ tracer: T, spans: Int) {
        tracer.withSpan("bench.parent") { _ in
            for i in 0..<spans {
                tracer.withSpan("bench.child") { span in
                    span.attributes["i"] = i
                }
            }
        }
    }

    mutating func hotPath() async throws {
        var configuration = PhylacteryTracer.Configuration(service: "bench")
        configuration.bufferCapacity = 100_000
        let tracer = PhylacteryTracer(client: self.client, configuration: configuration, logger: self.logger)
        let noop = NoOpTracer()
        let spans = 200_000, rounds = 9
        Self.loop(tracer, spans: spans)  // warm-up
        Self.loop(noop, spans: spans)
        var ours: [Double] = [], theirs: [Double] = [], added: [Double] = []
        for _ in 0..<rounds {
            let a = Self.time { Self.loop(tracer, spans: spans) } / Double(spans) * 1e9
            let b = Self.time { Self.loop(noop, spans: spans) } / Double(spans) * 1e9
            ours.append(a)
            theirs.append(b)
            added.append(a - b)
        }
        let hot = Measure.median(ours), base = Measure.median(theirs), extra = Measure.median(added)
        line("Hot path (\(spans) child spans × \(rounds) rounds, alternating): PhylacteryTracer \(String(format: "%.0f", hot)) ns/span, NoOpTracer \(String(format: "%.0f", base)) ns/span → \(String(format: "%.0f", extra)) ns added per span (target ≤ 2000)")
        self.results["hot_path_ns_per_span"] = hot
        self.results["noop_ns_per_span"] = base
        self.results["hot_path_added_ns_per_span"] = extra
    }

    static func time(_ body: () -> Void) -> Double {
        let start = ContinuousClock.now
        body()
        return Measure.seconds(ContinuousClock.now - start)
    }

    // MARK: - Ingest

    /// One trace: a root and nine children with three attributes each, one of them failing.
    static func trace<T: Tracer>(_ tracer: T, number: Int) {
        tracer.withSpan("bench.job", ofKind: .consumer) { job in
            job.attributes["job.queue"] = "bench"
            job.attributes["job.number"] = number
            for step in 0..<9 {
                tracer.withSpan(step == 4 ? "bench.fetch" : "bench.step") { span in
                    span.attributes["step"] = step
                    span.attributes["step.name"] = "step \(step)"
                    span.attributes["step.ratio"] = Double(step) / 9
                    if step == 4 && number % 10 == 0 { span.setStatus(SpanStatus(code: .error, message: "upstream timeout")) }
                }
            }
        }
    }

    mutating func ingest() async throws {
        let traces = 30_000, spansPerTrace = 10
        let total = traces * spansPerTrace
        var configuration = PhylacteryTracer.Configuration(service: "bench")
        configuration.bufferCapacity = total  // nothing may be dropped: the rate must count every span
        configuration.flushInterval = .milliseconds(50)
        let tracer = PhylacteryTracer(client: self.client, configuration: configuration, logger: self.logger)
        try await self.client.execute("TRUNCATE traces.spans")
        let group = ServiceGroup(configuration: .init(services: [tracer], logger: self.logger))
        var elapsed = 0.0
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            try await Task.sleep(for: .milliseconds(200))  // the writer has made its partitions
            let start = ContinuousClock.now
            for number in 0..<traces { Self.trace(tracer, number: number) }
            let produced = Measure.seconds(ContinuousClock.now - start)
            while tracer.storedSpans < total {
                if tracer.droppedSpans > 0 { throw BenchmarkError("the tracer dropped \(tracer.droppedSpans) spans") }
                try await Task.sleep(for: .milliseconds(5))
            }
            elapsed = Measure.seconds(ContinuousClock.now - start)
            line("Ingest: \(total) spans (\(traces) traces) started and ended in \(String(format: "%.2f", produced)) s, all stored after \(String(format: "%.2f", elapsed)) s")
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        let stored = try await self.client.query("SELECT count(*) FROM traces.spans").collect().first!.decode(Int.self)
        guard stored == total else { throw BenchmarkError("traces.spans holds \(stored) rows, expected \(total)") }
        let rate = Double(total) / elapsed
        line("  → \(String(format: "%.0f", rate)) spans/s stored through the tracer (target ≥ 50000)")

        // The ceiling: the same rows through one plain COPY each batch, no tracer in between.
        let rows = try await self.client.query("SELECT count(*) FROM traces.spans").collect().first!.decode(Int.self)
        try await self.client.execute("TRUNCATE traces.spans")
        let copyStart = ContinuousClock.now
        try await self.client.execute("""
            INSERT INTO traces.spans (id, trace_id, span_id, parent_span_id, name, kind, start_us, end_us, duration_us, status, status_message, attributes, events, links, service)
            SELECT gen_random_uuid(), gen_random_uuid(), i, CASE WHEN i % 10 = 0 THEN NULL ELSE i - i % 10 END, 'bench.step', 'internal',
                   (extract(epoch FROM now()) * 1e6)::int8 + i, (extract(epoch FROM now()) * 1e6)::int8 + i + 100, 100, 'unset', NULL,
                   jsonb_build_object('step', i % 10, 'step.name', 'step ' || (i % 10), 'step.ratio', (i % 10) / 9.0), '[]', '[]', 'bench'
            FROM generate_series(1, \(rows)) AS i
            """)
        let serverOnly = Double(rows) / Measure.seconds(ContinuousClock.now - copyStart)
        line("  baseline, the same number of rows generated inside the server (INSERT … SELECT, no client at all): \(String(format: "%.0f", serverOnly)) rows/s")
        self.results["spans_per_s"] = rate
        self.results["spans_stored"] = Double(total)
        self.results["server_insert_rows_per_s"] = serverOnly
        self.results["spans_per_s_vs_server_insert"] = rate / serverOnly
    }
}

struct BenchmarkError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
