import Foundation
import Logging
import Phylactery
import PhylacteryEmbedded
import PhylacteryTestSupport
import PostgresNIO
import Synchronization
import Testing
import Tracing

// Jobs of the fault-injection suite.
struct FaultEffect: Job { static let kind = "fault.effect"; var n: Int }
struct FaultResult: Job { static let kind = "fault.result"; var n: Int }
struct FaultAnswer: Codable, Sendable { var n: Int }

/// Fault injection for every background writer — the queue's outcome writer and heartbeat, and the
/// tracer — against each class of failure: a data error on one row, a constraint violation, killed
/// connections, a restarted server, statement timeouts. Each asserts that nothing a handler finished
/// is lost or run again and that the writers recover by themselves.
///
/// Each test runs its own server (a restart must not disturb the rest of the suite).
@Suite(.serialized, .timeLimit(.minutes(5))) struct WriterFaultTests {
    enum Fault: String, CaseIterable, CustomTestStringConvertible {
        case dataErrorOnOneRow, constraintViolation, killedConnections, serverRestart, statementTimeout
        var testDescription: String { self.rawValue }
    }

    /// What the handlers did, by job: runs, and whether it waits at the gate.
    final class Book: Sendable {
        let runs = Mutex<[UUID: Int]>([:])
        let open = Atomic<Bool>(false)
        let waiting = Atomic<Int>(0)
        func ran(_ id: UUID) { self.runs.withLock { $0[id, default: 0] += 1 } }
    }

    static let jobs = 24

    @Test("every writer recovers and loses or repeats nothing", arguments: Fault.allCases)
    func writersSurvive(_ fault: Fault) async throws {
        let home = try TestDatabase.temporaryHome("fault")
        let server = EmbeddedServer(configuration: .init(home: home, pgBinOverride: try TestDatabase.installedBinaries()))
        defer { _ = try? server.stop(); try? FileManager.default.removeItem(atPath: home) }
        _ = try await server.start(installIfNeeded: false)
        var options = PhylacteryClient.Configuration.Options()
        options.maximumConnections = 12
        var logger = Logger(label: "phylactery.tests.faults")
        logger.logLevel = ProcessInfo.processInfo.environment["PHYLACTERY_VERBOSE"] == nil ? .critical : .debug
        try await PhylacteryClient.withClient(configuration: .init(url: server.url, options: options), logger: logger) { client in
            try await Migrator(client: client, federation: try Federation.standard(extensions: [])).auto(message: "faults")
            try await client.execute("CREATE TABLE public.effects (job_id uuid PRIMARY KEY, n int NOT NULL)")
            let tracer = PhylacteryTracer(client: client, configuration: .init(service: "faults"), logger: logger)
            let book = Book()
            var handlers = JobHandlers()
            handlers.register(FaultEffect.self) { job, context in
                book.ran(context.id)
                book.waiting.add(1, ordering: .relaxed)
                while !book.open.load(ordering: .acquiring) { try await Task.sleep(for: .milliseconds(10)) }
                try await context.transaction { tx in
                    try await tx.execute("INSERT INTO public.effects (job_id, n) VALUES (\(context.id), \(job.n))")
                }
                tracer.startSpan(job.n == 0 ? "fault.bad" : "fault.span").end()
            }
            handlers.register(AnyJobHandler(FaultResult.self, returning: FaultAnswer.self) { job, context in
                book.ran(context.id)
                book.waiting.add(1, ordering: .relaxed)
                while !book.open.load(ordering: .acquiring) { try await Task.sleep(for: .milliseconds(10)) }
                tracer.startSpan("fault.span").end()
                return FaultAnswer(n: job.n)
            })
            let configuration = GhoulsConfiguration(
                queues: ["default": QueueConfiguration(concurrency: Self.jobs)], lease: .seconds(20), heartbeatInterval: .milliseconds(500),
                pollInterval: .milliseconds(200), shutdownGracePeriod: .seconds(5),
                backoff: RetryBackoff(initial: .milliseconds(50), maximum: .milliseconds(200), jitter: 0.1), retention: nil, workerName: "faults")
            let ghouls = Ghouls(client: client, handlers: handlers, configuration: configuration, logger: logger)
            let ghoulsTask = Task { try await ghouls.run() }
            let tracerTask = Task { try await tracer.run() }
            defer { tracerTask.cancel() }

            let half = Self.jobs / 2
            let effects = try await client.enqueue(contentsOf: (0..<half).map { FaultEffect(n: $0) })
            let results = try await client.enqueue(contentsOf: (0..<half).map { FaultResult(n: $0) })
            try await eventually("every handler waits at the gate") { book.waiting.load(ordering: .relaxed) == Self.jobs }

            // Inject the fault, let every handler finish into it, hold it, clear it.
            let clear = try await Self.inject(fault, client: client, server: server, badEffect: effects[0].id, badResult: results[0].id)
            book.open.store(true, ordering: .releasing)
            try await eventually("every handler finished") { ghouls.runningJobIDs.isEmpty }
            try await Task.sleep(for: .seconds(2))   // the fault lasts (not synchronisation)
            try await clear()

            // Recovery by themselves: every job completes, each handler ran once, every effect once.
            try await eventually("every job completed", timeout: .seconds(60), retryingErrors: true) {
                try await Self.count(client, "SELECT count(*) FROM queue.jobs WHERE state = 'completed'") == Self.jobs
            }
            // A handler that finished (the result jobs: nothing of theirs touches the database) ran once,
            // and its job was never claimed again.
            let resultIDs = Set(results.map(\.id))
            let reruns = book.runs.withLock { runs in runs.filter { resultIDs.contains($0.key) && $0.value != 1 } }
            #expect(reruns.isEmpty, "finished handlers ran again: \(reruns)")
            #expect(try await Self.count(client, "SELECT count(*) FROM queue.jobs WHERE kind = 'fault.result' AND attempt = 1 AND claims = 1") == half)
            // A handler whose own transaction failed in the fault was not finished: it ran again, and
            // its effect exists exactly once (the effects table's key would refuse a second).
            #expect(try await Self.count(client, "SELECT count(*) FROM public.effects") == half)
            #expect(book.runs.withLock { $0.count } == Self.jobs)
            let stored = try await Self.count(client, "SELECT count(*) FROM queue.jobs WHERE kind = 'fault.result' AND result IS NOT NULL")
            if fault == .dataErrorOnOneRow {
                // The refused result was dropped, and the job says so.
                #expect(stored == half - 1)
                let reasons = try await client.jobs.job(results[0].id).errors.map(\.reason)
                #expect(reasons == [.unstorableOutcome])
            } else {
                #expect(stored == half)
            }
            // The tracer: every span stored, except the one the table refuses (counted). The refused
            // one is counted when the writer's pass over its batch ends, after the batch's other spans
            // were stored, so the wait covers both.
            let refusesOne = fault == .dataErrorOnOneRow || fault == .constraintViolation
            try await eventually("every span stored", timeout: .seconds(60), retryingErrors: true) {
                _ = try? await tracer.flush()
                return try await Self.count(client, "SELECT count(*) FROM traces.spans WHERE name = 'fault.span'") == Self.jobs - 1
                    && (!refusesOne || tracer.unstorableSpans > 0)
            }
            let bad = try await Self.count(client, "SELECT count(*) FROM traces.spans WHERE name = 'fault.bad'")
            if refusesOne {
                #expect(bad == 0 && tracer.unstorableSpans == 1)
            } else {
                #expect(bad == 1 && tracer.unstorableSpans == 0)
            }
            #expect(tracer.droppedSpans == 0)
            ghouls.beginShutdown()
            try await ghoulsTask.value
        }
    }

    /// Starts `fault`; returns what clears it.
    static func inject(
        _ fault: Fault, client: PhylacteryClient, server: EmbeddedServer, badEffect: UUID, badResult: UUID
    ) async throws -> @Sendable () async throws -> Void {
        switch fault {
        case .dataErrorOnOneRow:
            // The server refuses one job's result (a data exception), and one span.
            try await control(client, PostgresQuery(unsafeSQL: """
                CREATE FUNCTION public.refuse_result() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF NEW.id = '\(badResult)' AND NEW.result IS NOT NULL THEN
                        RAISE EXCEPTION 'this result is refused' USING ERRCODE = '22023';
                    END IF;
                    RETURN NEW;
                END $$
                """))
            try await control(client, "CREATE TRIGGER refuse_result BEFORE UPDATE ON queue.jobs FOR EACH ROW EXECUTE FUNCTION public.refuse_result()")
            try await control(client, "ALTER TABLE traces.spans ADD CONSTRAINT no_bad_span CHECK (name <> 'fault.bad')")
            return {
                try await control(client, "DROP TRIGGER refuse_result ON queue.jobs")
            }
        case .constraintViolation:
            // One job's completion violates a constraint for as long as it exists.
            try await control(client, PostgresQuery(unsafeSQL: """
                ALTER TABLE queue.jobs ADD CONSTRAINT hold_one CHECK (NOT (id = '\(badEffect)' AND state = 'completed')) NOT VALID
                """))
            try await control(client, "ALTER TABLE traces.spans ADD CONSTRAINT no_bad_span CHECK (name <> 'fault.bad')")
            return {
                try await control(client, "ALTER TABLE queue.jobs DROP CONSTRAINT hold_one")
            }
        case .killedConnections:
            let killer = Task {
                while !Task.isCancelled {
                    try? await client.withDirectConnection { connection in
                        _ = try await connection.query("""
                            SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                            WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
                            """, logger: Logger(label: "faults")).collect()
                    }
                    try? await Task.sleep(for: .milliseconds(150))
                }
            }
            return { killer.cancel() }
        case .serverRestart:
            _ = try server.stop()
            return {
                _ = try await server.start(installIfNeeded: false)
            }
        case .statementTimeout:
            // Every new session times out after 100 ms, and the queue's and spans' tables are locked.
            let database = client.configuration.url.database
            try await control(client, PostgresQuery(unsafeSQL: "ALTER DATABASE \(SQLIdentifier.quote(database)) SET statement_timeout = '100ms'"))
            try await control(client, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'")
            let holder = Task {
                try await client.withDirectConnection { connection in
                    let log = Logger(label: "faults")
                    _ = try await connection.query("SET statement_timeout = 0", logger: log).collect()
                    _ = try await connection.query("BEGIN", logger: log).collect()
                    _ = try await connection.query("LOCK TABLE queue.jobs, traces.spans IN EXCLUSIVE MODE", logger: log).collect()
                    _ = try await connection.query("SELECT pg_sleep(3)", logger: log).collect()
                    _ = try await connection.query("COMMIT", logger: log).collect()
                }
            }
            return {
                try await holder.value
                try await control(client, PostgresQuery(unsafeSQL: "ALTER DATABASE \(SQLIdentifier.quote(database)) RESET statement_timeout"))
                try await control(client, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'")
            }
        }
    }

    /// Runs a statement of the test's own on a connection of its own (the pool's may just have been terminated).
    static func control(_ client: PhylacteryClient, _ sql: PostgresQuery) async throws {
        try await client.withDirectConnection { connection in
            _ = try await connection.query(sql, logger: Logger(label: "faults")).collect()
        }
    }

    /// A count read through the guarded path: a pooled connection left half-dead by the fault fails
    /// the read within 10 s (and is retried by `eventually`) instead of holding the test.
    static func count(_ client: PhylacteryClient, _ sql: PostgresQuery) async throws -> Int {
        Int(try await client.rows(sql, timeout: .seconds(10)).first?.decode(Int64.self) ?? -1)
    }
}
