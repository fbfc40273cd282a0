import CoreMetrics
import Foundation
import Logging
import Phylactery
import PhylacteryTestSupport
import PostgresNIO
import ServiceLifecycle
import Synchronization
import Testing
import Tracing

/// The traces chamber against a real server: the tracer writes, the store reads, partitions come
/// and go by day.
@Suite struct TracesTests {
    struct Timeout: Error, CustomStringConvertible {
        var description: String { "upstream did not answer in 3 ms" }
    }

    static func migrate(_ client: PhylacteryClient) async throws -> Migrator {
        let migrator = Migrator(client: client, federation: try Federation(core: Federation.coreModels))
        try await migrator.auto(message: "traces")
        return migrator
    }

    static func count(_ client: PhylacteryClient, _ condition: String = "true") async throws -> Int {
        try await client.query(PostgresQuery(unsafeSQL: "SELECT count(*) FROM traces.spans WHERE \(condition)")).collect().first!.decode(Int.self)
    }

    static var logger: Logger {
        var logger = Logger(label: "phylactery.tests.traces")
        logger.logLevel = .critical
        return logger
    }

    // MARK: - Round trip

    @Test func nestedTreeIsWrittenAndReadBackIntact() async throws {
        try await TestDatabase.withFreshDatabase("traces_tree") { client in
            let migrator = try await Self.migrate(client)
            // The federation's spans table is partitioned by day and keyed by (id, start_us); planning again finds nothing.
            #expect(try await migrator.plan().isEmpty)
            let key = try await client.query("""
                SELECT pg_get_partkeydef('traces.spans'::regclass), pg_get_constraintdef(c.oid)
                FROM pg_constraint c WHERE c.conrelid = 'traces.spans'::regclass AND c.contype = 'p'
                """).collect().first!.decode((String, String).self)
            #expect(key.0 == "RANGE (start_us)")
            #expect(key.1 == "PRIMARY KEY (id, start_us)")

            let tracer = PhylacteryTracer(client: client, configuration: .init(service: "tests"), logger: Self.logger)
            let other = tracer.startSpan("elsewhere")
            other.end()
            let (traceID, rootID) = await tracer.withSpan("job.run", ofKind: .consumer) { job -> (TraceID, SpanID) in
                job.attributes["job.queue"] = "mail"
                job.attributes["job.attempt"] = 2
                job.attributes["job.weight"] = 0.5
                job.attributes["job.urgent"] = true
                job.attributes["job.tags"] = ["a", "b\t\"c\"\\"]
                await tracer.withSpan("queue.claim") { span in
                    span.attributes["queue.lock"] = "SKIP LOCKED"
                }
                await tracer.withSpan("handler") { handler in
                    handler.addEvent(SpanEvent(name: "cache miss", attributes: ["key": "user:1"]))
                    _ = try? await tracer.withSpan("fetch", ofKind: .client) { _ in
                        throw Timeout()
                    }
                }
                await tracer.withSpan("queue.complete") { span in
                    span.addLink(SpanLink(context: other.context, attributes: ["why": "follows"]))
                    span.setStatus(SpanStatus(code: .ok))
                }
                return (job.spanContext.traceID, job.spanContext.spanID)
            }
            #expect(try await tracer.flush() == 6)
            #expect(tracer.storedSpans == 6 && tracer.droppedSpans == 0)

            let trace = try await client.traces.trace(traceID)
            #expect(trace.spans.count == 5)
            let byName = Dictionary(uniqueKeysWithValues: trace.spans.map { ($0.name, $0) })
            let root = try #require(byName["job.run"])
            #expect(root.spanID == rootID && root.parentSpanID == nil && root.kind == .consumer && root.service == "tests")
            #expect(root.attributes == ["job.queue": .string("mail"), "job.attempt": .int(2), "job.weight": .double(0.5), "job.urgent": .bool(true), "job.tags": .strings(["a", "b\t\"c\"\\"])])
            #expect(trace.roots.map(\.name) == ["job.run"])
            #expect(trace.children(of: root).map(\.name) == ["queue.claim", "handler", "queue.complete"])
            let handler = try #require(byName["handler"])
            #expect(handler.parentSpanID == rootID)
            #expect(handler.events.map(\.name) == ["cache miss"] && handler.events.first?.attributes == ["key": .string("user:1")])
            let fetch = try #require(byName["fetch"])
            #expect(fetch.parentSpanID == handler.spanID && fetch.kind == .client)
            #expect(fetch.status == .error)
            #expect(fetch.statusMessage == "upstream did not answer in 3 ms")
            #expect(fetch.events.first?.name == "exception")
            #expect(fetch.events.first?.attributes["exception.message"] == .string("upstream did not answer in 3 ms"))
            let complete = try #require(byName["queue.complete"])
            #expect(complete.status == .ok)
            #expect(complete.links == [SpanRecord.Link(traceID: other.spanContext.traceID.description, spanID: other.spanContext.spanID.description, attributes: ["why": .string("follows")])])
            #expect(byName["queue.claim"]?.status == .unset)
            for span in trace.spans {
                #expect(span.startMicroseconds >= root.startMicroseconds && span.endMicroseconds <= root.endMicroseconds)
                #expect(span.durationMicroseconds == span.endMicroseconds - span.startMicroseconds)
            }

            // The timeline draws the tree, indented, with the error.
            let text = TraceTimeline.render(trace)
            #expect(text.hasPrefix("trace \(traceID) · job.run · 5 spans"), "\(text)")
            #expect(text.contains("· 1 error"))
            #expect(text.contains("  job.run\n"), "\(text)")
            #expect(text.contains("├─ handler"))
            #expect(text.contains("│  └─ fetch  ✗ upstream did not answer in 3 ms"), "\(text)")
            #expect(text.contains("└─ queue.complete"))

            // The list: roots only, with counts, and its filters.
            let all = try await client.traces.list()
            #expect(Set(all.map(\.rootName)) == ["job.run", "elsewhere"])
            let summary = try #require(all.first { $0.traceID == traceID })
            #expect(summary.spanCount == 5 && summary.errorCount == 1 && summary.durationMicroseconds == root.durationMicroseconds)
            #expect(try await client.traces.list(TraceFilter(name: "job.run")).map(\.traceID) == [traceID])
            #expect(try await client.traces.list(TraceFilter(status: .error)).map(\.traceID) == [traceID])
            #expect(try await client.traces.list(TraceFilter(status: .ok)).map(\.rootName) == ["elsewhere"])
            #expect(try await client.traces.list(TraceFilter(minimumDuration: .seconds(3600))).isEmpty)
            #expect(try await client.traces.list(TraceFilter(limit: 1)).count == 1)
            #expect(try await client.traces.slowSpans(atLeast: .zero, limit: 100).count == 6)

            // An unknown trace is a typed error.
            await #expect(throws: PhylacteryError.self) { try await client.traces.trace(TraceID(high: 1, low: 2)) }
        }
    }

    @Test func contextTravelsAsTraceparent() async throws {
        try await TestDatabase.withFreshDatabase("traces_propagation") { client in
            _ = try await Self.migrate(client)
            let tracer = PhylacteryTracer(client: client, configuration: .init(service: "tests"), logger: Self.logger)
            struct Headers: Injector, Extractor {
                func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) { carrier[key] = value }
                func extract(key: String, from carrier: [String: String]) -> String? { carrier[key] }
            }
            var headers: [String: String] = [:]
            let parent = tracer.startSpan("client.call", ofKind: .client)
            tracer.inject(parent.context, into: &headers, using: Headers())
            #expect(headers["traceparent"] == "00-\(parent.spanContext.traceID)-\(parent.spanContext.spanID)-01")
            // The other side of the call: a new process would start from the header alone.
            var received = ServiceContext.topLevel
            tracer.extract(headers, into: &received, using: Headers())
            let server = tracer.startSpan("server.handle", context: received, ofKind: .server)
            server.end()
            parent.end()
            try await tracer.flush()
            let trace = try await client.traces.trace(parent.spanContext.traceID)
            #expect(trace.spans.count == 2)
            let handled = trace.spans.first { $0.name == "server.handle" }
            #expect(handled?.parentSpanID == parent.spanContext.spanID && handled?.hasRemoteParent == true)
            #expect(trace.spans.first { $0.name == "client.call" }?.hasRemoteParent == false)
            // Both sides in one database: the trace is listed once, by its root.
            #expect(try await client.traces.list().filter { $0.traceID == parent.spanContext.traceID }.map(\.rootName) == ["client.call"])

            // A call from a process that keeps its spans elsewhere: this side is where the trace is
            // entered, so it is listed by that span, and shown as the root of what is stored here.
            var incoming = ServiceContext.topLevel
            tracer.extract(["traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"], into: &incoming, using: Headers())
            let entry = tracer.startSpan("rpc.serve", context: incoming, ofKind: .server)
            tracer.startSpan("rpc.work", context: entry.context).end()
            entry.end()
            try await tracer.flush()
            let remoteTrace = try TraceID(parsing: "4bf92f3577b34da6a3ce929d0e0e4736")
            let listed = try await client.traces.list().filter { $0.traceID == remoteTrace }
            #expect(listed.map(\.rootName) == ["rpc.serve"] && listed.first?.spanCount == 2, "\(listed)")
            #expect(try await client.traces.list(TraceFilter(name: "rpc.serve")).map(\.traceID) == [remoteTrace])
            let stored = try await client.traces.trace(remoteTrace)
            #expect(stored.roots.map(\.name) == ["rpc.serve"] && stored.roots.first?.hasRemoteParent == true)
            // An invalid header is ignored: a new trace starts.
            var fresh = ServiceContext.topLevel
            tracer.extract(["traceparent": "00-00000000000000000000000000000000-0000000000000000-01"], into: &fresh, using: Headers())
            #expect(fresh.spanContext == nil)
        }
    }

    // MARK: - Shutdown, outage, recovery

    @Test func gracefulShutdownFlushesEverything() async throws {
        try await TestDatabase.withFreshDatabase("traces_shutdown") { client in
            _ = try await Self.migrate(client)
            var configuration = PhylacteryTracer.Configuration(service: "tests")
            configuration.flushInterval = .seconds(3600)  // nothing is written before shutdown unless shutdown writes it
            configuration.batchSize = 1_000_000
            let tracer = PhylacteryTracer(client: client, configuration: configuration, logger: Self.logger)
            let group = ServiceGroup(configuration: .init(services: [tracer], logger: Self.logger))
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                for i in 0..<5000 {
                    await tracer.withSpan("unit \(i % 10)") { span in span.attributes["i"] = i }
                }
                try await Task.sleep(for: .milliseconds(100))
                #expect(try await Self.count(client) == 0)
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
            #expect(try await Self.count(client) == 5000)
            #expect(tracer.storedSpans == 5000 && tracer.droppedSpans == 0 && tracer.bufferedSpans == 0)
            // Partitions were made ahead of time: today and the next two days.
            #expect(try await client.traces.partitions().count >= 3)
        }
    }

    @Test(.disabled(if: TestDatabase.throughTransactionPooler, "needs the server over a Unix socket it can hide; the pooler is reached over TCP")) func databaseDownDropsAndCountsWithoutBlockingThenRecovers() async throws {
        try await TestDatabase.withFreshDatabase("traces_outage") { client in
            _ = try await Self.migrate(client)
            // The tracer reaches the server through a socket directory of its own: while the socket
            // file is missing there, the database is "down" for it (connections are refused at once);
            // linking it to the real socket brings the database "back". The shared server is never touched.
            let real = client.configuration.url
            guard case .unixSocket(_, let port) = real.endpoint, let socket = real.endpoint.socketPath else {
                Issue.record("this test needs the server over a Unix socket; PHYLACTERY_DATABASE_URL is \(real)")
                return
            }
            let directory = "/tmp/phyl-tr-\(String(UInt32.random(in: .min ... .max), radix: 16))"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            var url = real
            url.endpoint = .unixSocket(directory: directory, port: port)
            let link = url.endpoint.socketPath!

            var options = TestDatabase.defaultOptions
            options.connectTimeout = .seconds(2)
            let metrics = CountingMetrics()
            try await PhylacteryClient.withClient(configuration: .init(url: url, options: options), logger: Self.logger) { flaky in
                var configuration = PhylacteryTracer.Configuration(service: "tests")
                configuration.bufferCapacity = 1000
                configuration.batchSize = 200
                configuration.flushInterval = .milliseconds(20)
                configuration.maximumBackoff = .milliseconds(100)
                configuration.metricsFactory = metrics
                let tracer = PhylacteryTracer(client: flaky, configuration: configuration, logger: Self.logger)
                let group = ServiceGroup(configuration: .init(services: [tracer], logger: Self.logger))
                try await withThrowingTaskGroup(of: Void.self) { tasks in
                    tasks.addTask { try await group.run() }
                    // Down: 5000 spans go into a buffer of 1000; ending them never waits on the database.
                    let clock = ContinuousClock()
                    var slowest = Duration.zero
                    let start = clock.now
                    for i in 0..<5000 {
                        let before = clock.now
                        await tracer.withSpan("while down") { span in span.attributes["i"] = i }
                        slowest = max(slowest, clock.now - before)
                        if i % 1000 == 0 { try await Task.sleep(for: .milliseconds(30)) }  // let the writer try and fail meanwhile
                    }
                    let elapsed = clock.now - start
                    // Let the batch the writer may be failing to send right now come back to the buffer.
                    let settle = clock.now + .seconds(10)
                    repeat { try await Task.sleep(for: .milliseconds(100)) }
                    while (tracer.droppedSpans + tracer.bufferedSpans != 5000 || metrics.value("phylactery_traces_spans_dropped") != tracer.droppedSpans) && clock.now < settle
                    // A tracer that waited for the database would never get here (it stays down until we link
                    // the socket below); one that merely slowed down would show in the slowest span.
                    #expect(slowest < .seconds(1), "one span took \(slowest) while the database was down (all: \(elapsed))")
                    #expect(tracer.storedSpans == 0)
                    #expect(tracer.bufferedSpans <= 1000)
                    #expect(tracer.droppedSpans >= 4000, "dropped \(tracer.droppedSpans)")
                    #expect(tracer.droppedSpans + tracer.bufferedSpans == 5000)
                    #expect(metrics.value("phylactery_traces_spans_dropped") == tracer.droppedSpans)

                    // Back: the socket appears, the writer's next attempt goes through, the buffer drains.
                    try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: socket)
                    let deadline = clock.now + .seconds(30)
                    while tracer.storedSpans + tracer.droppedSpans < 5000, clock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
                    #expect(tracer.bufferedSpans == 0)
                    #expect(tracer.storedSpans == 1000, "stored \(tracer.storedSpans) after recovery")
                    // And it keeps working.
                    for i in 0..<100 { await tracer.withSpan("after recovery") { span in span.attributes["i"] = i } }
                    while tracer.storedSpans < 1100, clock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
                    await group.triggerGracefulShutdown()
                    try await tasks.waitForAll()
                    #expect(tracer.bufferedSpans == 0)
                    #expect(tracer.storedSpans == 1100 && tracer.droppedSpans == 4000, "stored \(tracer.storedSpans), dropped \(tracer.droppedSpans)")
                    #expect(metrics.value("phylactery_traces_spans_stored") == tracer.storedSpans)
                    #expect(metrics.value("phylactery_traces_spans_dropped") == 4000)
                }
                // What the tracer says it stored is what the database holds: the newest spans of the outage and all the later ones.
                #expect(try await Self.count(client) == tracer.storedSpans)
                #expect(try await Self.count(client, "name = 'after recovery'") == 100)
                #expect(try await Self.count(client, "name = 'while down' AND (attributes->>'i')::int >= 4000") == 1000)
            }
        }
    }

    // MARK: - Retention

    @Test func pruneDropsWholeDaysAndKeepsTheRest() async throws {
        try await TestDatabase.withFreshDatabase("traces_retention") { client in
            _ = try await Self.migrate(client)
            let tracer = PhylacteryTracer(client: client, configuration: .init(service: "tests"), logger: Self.logger)
            // Four fixed UTC days, 2026-01-10 … 2026-01-13, with 1, 2, 3 and 4 spans at midday.
            let firstDay: TimeInterval = 1_768_003_200  // 2026-01-10T00:00:00Z
            try await client.traces.createPartitions(from: Date(timeIntervalSince1970: firstDay), days: 4)
            for day in 0..<4 {
                for i in 0...day {
                    let at = UInt64((firstDay + Double(day) * 86_400 + 43_200 + Double(i)) * 1e9)
                    let span = tracer.startSpan("day \(day)", at: DefaultTracerClock.Instant(nanosecondsSinceEpoch: at))
                    span.end(at: DefaultTracerClock.Instant(nanosecondsSinceEpoch: at + 1_000_000))
                }
            }
            try await tracer.flush()
            let before = try await client.traces.partitions().map(\.name)
            #expect(Array(before.prefix(4)) == ["spans_p20260110", "spans_p20260111", "spans_p20260112", "spans_p20260113"])
            #expect(try await Self.count(client) == 10)

            // Cut at 2026-01-11 12:00: only the 10th has ended by then.
            let dropped = try await client.traces.prune(olderThan: Date(timeIntervalSince1970: firstDay + 86_400 + 43_200))
            #expect(dropped == ["spans_p20260110"])
            let after = try await client.traces.partitions().map(\.name)
            #expect(!after.contains("spans_p20260110") && after.contains("spans_p20260111"))
            #expect(try await Self.count(client) == 9)
            #expect(try await Self.count(client, "name = 'day 0'") == 0)
            #expect(try await Self.count(client, "name = 'day 1'") == 2)
            #expect(try await Self.count(client, "name = 'day 3'") == 4)
            // Nothing older left: a second prune drops nothing.
            #expect(try await client.traces.prune(olderThan: Date(timeIntervalSince1970: firstDay + 86_400 + 43_200)).isEmpty)
        }
    }

    // MARK: - Partitioning in migrations

    @Test func partitioningOfAnExistingTableIsNotChanged() async throws {
        try await TestDatabase.withFreshDatabase("traces_repartition") { client in
            // A plain table where the federation wants a partitioned one.
            try await client.execute("CREATE TABLE traces.spans (id uuid PRIMARY KEY)")
            let migrator = Migrator(client: client, federation: try Federation(core: Federation.coreModels))
            let plan = try await migrator.plan()
            let refusal = try #require(plan.refusals.first { $0.contains("traces.spans") }, "\(plan.refusals)")
            #expect(refusal.contains("cannot change the partitioning of traces.spans from none to PARTITION BY RANGE (start_us)"), "\(refusal)")
            await #expect(throws: PhylacteryError.self) { try await migrator.auto() }
        }
    }

    @Test func constraintsAndIndexesAddedToAnExistingPartitionedTable() async throws {
        try await TestDatabase.withFreshDatabase("partitioned_changes") { client in
            func events(_ unique: [UniqueConstraint], _ indexes: [IndexDescription]) -> ModelSchema {
                var schema = ModelSchema(modelName: "Event", table: "events", columns: [
                    ModelSchema.column("at", Int64.self), ModelSchema.column("code", String.self),
                ], indexes: indexes, uniqueConstraints: unique)
                schema.partitioning = .range("at")
                return schema
            }
            _ = try await Migrator(client: client, federation: try Federation(core: [ModelRegistration(schema: events([], []))])).auto()
            try await client.execute("CREATE TABLE public.events_all PARTITION OF public.events FOR VALUES FROM (MINVALUE) TO (MAXVALUE)")
            try await client.execute("INSERT INTO public.events (id, at, code) VALUES (gen_random_uuid(), 1, 'a'), (gen_random_uuid(), 2, 'b')")
            // PostgreSQL builds neither CONCURRENTLY nor UNIQUE USING INDEX on a partitioned table:
            // the plan must do without both.
            let wanted = events([UniqueConstraint(columns: ["code", "at"])], [IndexDescription(columns: ["code"])])
            let migrator = Migrator(client: client, federation: try Federation(core: [ModelRegistration(schema: wanted)]))
            _ = try await migrator.auto()
            #expect(try await migrator.plan().isEmpty)
            let duplicate = await #expect(throws: PhylacteryError.self) {
                try await client.execute("INSERT INTO public.events (id, at, code) VALUES (gen_random_uuid(), 1, 'a')")
            }
            #expect(duplicate?.sqlState == "23505")
        }
    }

    @Test func modelsWhosePartitioningPostgreSQLWouldRefuseAreRefusedFirst() throws {
        var schema = ModelSchema(modelName: "Event", table: "events", columns: [
            ModelSchema.column("at", Int64.self), ModelSchema.column("code", String.self, unique: true),
        ])
        schema.partitioning = .range("at")
        #expect(throws: PhylacteryError.self) { try Federation(core: [ModelRegistration(schema: schema)]) }
        schema.partitioning = .range("missing")
        #expect(throws: PhylacteryError.self) { try Federation(core: [ModelRegistration(schema: schema)]) }
    }
}

/// Counters kept in memory, to read what the tracer reported.
final class CountingMetrics: MetricsFactory, Sendable {
    final class Handler: CounterHandler, Sendable {
        let value = Mutex<Int64>(0)
        func increment(by amount: Int64) { self.value.withLock { $0 += amount } }
        func reset() { self.value.withLock { $0 = 0 } }
    }

    private let counters = Mutex<[String: Handler]>([:])

    func value(_ label: String) -> Int { Int(self.counters.withLock { $0[label]?.value.withLock { $0 } ?? 0 }) }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        self.counters.withLock { counters in
            if let existing = counters[label] { return existing }
            let handler = Handler()
            counters[label] = handler
            return handler
        }
    }
    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler { NOOPMetricsHandler.instance }
    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler { NOOPMetricsHandler.instance }
    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler { NOOPMetricsHandler.instance }
    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler { NOOPMetricsHandler.instance }
    func destroyCounter(_ handler: any CounterHandler) {}
    func destroyMeter(_ handler: any MeterHandler) {}
    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {}
    func destroyRecorder(_ handler: any RecorderHandler) {}
    func destroyTimer(_ handler: any TimerHandler) {}
}
