import Foundation
import Logging
import Phylactery
import PhylacteryTestSupport
import PostgresNIO
import Synchronization
import Testing
import Tracing

// Jobs of the "nothing wedged" regressions.
struct NulFailure: Job { static let kind = "wedge.nul_failure"; static let maxAttempts = 2 }
struct NulResult: Job { static let kind = "wedge.nul_result" }
struct Plain: Job { static let kind = "wedge.plain"; var n: Int }
struct Gated: Job { static let kind = "wedge.gated" }
struct Blocked: Job { static let kind = "wedge.blocked" }

/// Something a handler reports that holds U+0000.
struct NulError: Error, CustomStringConvertible {
    var description: String { "tool output: \u{0}binary\u{0}" }
}
struct Answer: Codable, Sendable { var text: String }

/// A gate a handler waits at until the test opens it, and a count of the handler's runs.
final class Gate: Sendable {
    private let open = Atomic<Bool>(false)
    let runs = Atomic<Int>(0)
    func release() { self.open.store(true, ordering: .releasing) }
    func wait() async throws {
        while !self.open.load(ordering: .acquiring) { try await Task.sleep(for: .milliseconds(10)) }
    }
}

/// The reviewer's findings of issue 12, each as a regression test: a bad value or a failed write
/// never stops the queue or the tracer, and nothing a handler finished runs again.
@Suite("Nothing wedged")
struct NothingWedgedTests {
    func state(_ client: PhylacteryClient, _ id: UUID) async throws -> JobRecord? {
        try await client.jobs.job(id)
    }

    @Test("a NUL in an error text and in a result: the outcomes are stored safely and later jobs complete within 5 s")
    func nulErrorAndResult() async throws {
        try await withQueueDatabase("wedge_nul") { client in
            var handlers = JobHandlers()
            let resultRuns = Atomic<Int>(0)
            handlers.register(NulFailure.self) { _, _ in throw NulError() }
            handlers.register(AnyJobHandler(NulResult.self, returning: Answer.self) { _, _ in
                resultRuns.add(1, ordering: .relaxed)
                return Answer(text: "a\u{0}b")
            })
            handlers.register(Plain.self) { _, _ in }
            let ghouls = Ghouls(client: client, handlers: handlers, configuration: quickConfiguration())
            try await whileRunning(ghouls) {
                let failing = try await client.enqueue(NulFailure())
                let returning = try await client.enqueue(NulResult())
                try await eventually("the NUL outcomes are written", timeout: .seconds(30)) {
                    let failed = try await state(client, failing.id)
                    let done = try await state(client, returning.id)
                    return failed?.state == .discarded && done?.state == .completed
                }
                let plain = try await client.enqueue(contentsOf: (0..<5).map { Plain(n: $0) })
                let start = ContinuousClock.now
                try await eventually("five ordinary jobs complete after them", timeout: .seconds(5)) {
                    try await count(client, "SELECT count(*) FROM queue.jobs WHERE kind = 'wedge.plain' AND state = 'completed'") == 5
                }
                #expect(ContinuousClock.now - start < .seconds(5))
                #expect(plain.count == 5)

                let failed = try #require(try await state(client, failing.id))
                #expect(failed.errors.count == 2)
                #expect(failed.errors.allSatisfy { $0.reason == .error && $0.message == "tool output: \u{FFFD}binary\u{FFFD}" })

                let done = try #require(try await state(client, returning.id))
                #expect(done.result == nil)
                #expect(done.errors.map(\.reason) == [.unstorableOutcome])
                #expect(done.errors.first?.message.contains("U+0000") == true)
                #expect(resultRuns.load(ordering: .relaxed) == 1, "the handler finished: it is not run again")
            }
        }
    }

    @Test("an outcome write that fails completes within 5 s of the fault clearing, and the handler ran once")
    func failedOutcomeWriteRecovers() async throws {
        try await withQueueDatabase("wedge_check") { client in
            let gate = Gate()
            var handlers = JobHandlers()
            handlers.register(AnyJobHandler(Gated.self, returning: Answer.self) { _, _ in
                gate.runs.add(1, ordering: .relaxed)
                try await gate.wait()
                return Answer(text: "kept")
            })
            let ghouls = Ghouls(client: client, handlers: handlers, configuration: quickConfiguration())
            try await whileRunning(ghouls) {
                let job = try await client.enqueue(Gated())
                try await eventually("the job runs") { gate.runs.load(ordering: .relaxed) == 1 }
                // While it runs, the table gains a constraint that refuses its completion.
                try await client.execute("ALTER TABLE queue.jobs ADD CONSTRAINT wedge_block CHECK (state <> 'completed') NOT VALID")
                gate.release()
                try await eventually("the completion was refused at least once", timeout: .seconds(30)) {
                    try await state(client, job.id)?.state == .running && ghouls.runningJobIDs.isEmpty
                }
                try await Task.sleep(for: .milliseconds(2500))  // the fault lasts a while (not synchronisation)
                try await client.execute("ALTER TABLE queue.jobs DROP CONSTRAINT wedge_block")
                let cleared = ContinuousClock.now
                try await eventually("completed once the constraint is gone", timeout: .seconds(5)) {
                    try await state(client, job.id)?.state == .completed
                }
                #expect(ContinuousClock.now - cleared < .seconds(5))
                let record = try #require(try await state(client, job.id))
                #expect(record.attempt == 1 && record.claims == 1, "never claimed again")
                #expect(gate.runs.load(ordering: .relaxed) == 1, "the handler ran exactly once")
                #expect(try record.result?.decode(Answer.self).text == "kept", "the outcome as reported, result included")
            }
        }
    }

    @Test("a lease update refused for one job still extends the others' leases")
    func heartbeatIsolatesARefusedRow() async throws {
        try await withQueueDatabase("wedge_heartbeat") { client in
            let gate = Gate()
            var handlers = JobHandlers()
            handlers.register(Gated.self) { _, _ in
                gate.runs.add(1, ordering: .relaxed)
                try await gate.wait()
            }
            let configuration = GhoulsConfiguration(
                queues: ["default": QueueConfiguration(concurrency: 4)], lease: .seconds(30), heartbeatInterval: .milliseconds(300),
                pollInterval: .milliseconds(200), retention: nil, workerName: "test")
            let ghouls = Ghouls(client: client, handlers: handlers, configuration: configuration)
            try await whileRunning(ghouls) {
                let bad = try await client.enqueue(Gated()), good = try await client.enqueue(Gated())
                try await eventually("both run") { gate.runs.load(ordering: .relaxed) == 2 }
                try await client.execute(PostgresQuery(unsafeSQL: """
                    CREATE FUNCTION public.refuse_lease() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN
                        IF NEW.id = '\(bad.id)' AND NEW.lease_expires_at IS DISTINCT FROM OLD.lease_expires_at AND NEW.state = 'running' THEN
                            RAISE EXCEPTION 'lease refused' USING ERRCODE = '22023';
                        END IF;
                        RETURN NEW;
                    END $$
                    """))
                try await client.execute("CREATE TRIGGER refuse_lease BEFORE UPDATE ON queue.jobs FOR EACH ROW EXECUTE FUNCTION public.refuse_lease()")
                let badLease = try #require(try await state(client, bad.id)?.leaseExpiresAt)
                let goodLease = try #require(try await state(client, good.id)?.leaseExpiresAt)
                try await eventually("the other lease is extended", timeout: .seconds(10)) {
                    (try await state(client, good.id)?.leaseExpiresAt ?? goodLease) > goodLease
                }
                #expect(try await state(client, bad.id)?.leaseExpiresAt == badLease)
                try await client.execute("DROP TRIGGER refuse_lease ON queue.jobs")
                gate.release()
                try await eventually("both complete") {
                    try await count(client, "SELECT count(*) FROM queue.jobs WHERE state = 'completed'") == 2
                }
            }
        }
    }

    @Test("a bare NOTIFY on the cancel channel does not cancel a job: only its row can")
    func notifyAloneDoesNotCancel() async throws {
        try await withQueueDatabase("wedge_notify") { client in
            let gate = Gate()
            var handlers = JobHandlers()
            handlers.register(Gated.self) { _, _ in
                gate.runs.add(1, ordering: .relaxed)
                try await gate.wait()
            }
            let configuration = quickConfiguration(lease: .seconds(30))
            let ghouls = Ghouls(client: client, handlers: handlers, configuration: configuration)
            try await whileRunning(ghouls) {
                try await eventually("listening") { ghouls.isListening }
                let job = try await client.enqueue(Gated())
                try await eventually("the job runs") { gate.runs.load(ordering: .relaxed) == 1 }
                let lease = try #require(try await state(client, job.id)?.leaseExpiresAt)
                try await client.execute("SELECT pg_notify('phylactery_queue_cancel', \(job.id.uuidString))")
                // The notification makes the heartbeat look at the row at once (its lease moves on)…
                try await eventually("the heartbeat ran on the notification", timeout: .seconds(8)) {
                    (try await state(client, job.id)?.leaseExpiresAt ?? lease) > lease
                }
                // …and the row does not ask for cancellation, so the handler goes on.
                #expect(ghouls.runningJobIDs == [job.id])
                gate.release()
                try await eventually("completed, not cancelled") { try await state(client, job.id)?.state == .completed }
            }
        }
    }

    @Test("a job whose cancellation was requested is cancelled by the rescuer, never run again")
    func cancelledJobOfADeadWorker() async throws {
        try await withQueueDatabase("wedge_rescue_cancel") { client in
            let runs = Atomic<Int>(0)
            var handlers = JobHandlers()
            handlers.register(Plain.self) { _, _ in runs.add(1, ordering: .relaxed) }
            let job = try await client.enqueue(Plain(n: 1))
            // A worker claimed it, was asked to cancel it, and died.
            try await client.execute("""
                UPDATE queue.jobs SET state = 'running', attempt = 1, claims = 1, cancel_requested = true,
                    lease_expires_at = now() - interval '1 second', worker = 'dead:1:default' WHERE id = \(job.id)
                """)
            var configuration = quickConfiguration()
            configuration.rescueInterval = .milliseconds(200)
            let ghouls = Ghouls(client: client, handlers: handlers, configuration: configuration)
            try await whileRunning(ghouls) {
                try await eventually("cancelled by the rescuer") { try await state(client, job.id)?.state == .cancelled }
            }
            #expect(runs.load(ordering: .relaxed) == 0)
            #expect(try await state(client, job.id)?.errors.map(\.reason) == [.leaseExpired])
        }
    }

    @Test("shutdown ends within grace + abandonAfter + the flush bound while a handler is blocked inside its transaction")
    func shutdownBoundedByBlockedHandler() async throws {
        try await withQueueDatabase("wedge_blocked", connections: 8) { client in
            let started = Atomic<Bool>(false)
            var handlers = JobHandlers()
            handlers.register(Blocked.self) { _, context in
                try await context.transaction { tx in
                    started.store(true, ordering: .relaxed)
                    try await tx.execute("SELECT pg_sleep(600)")   // holds the job's row; ignores cancellation
                }
            }
            var configuration = quickConfiguration(grace: .seconds(1))
            configuration.abandonAfter = .seconds(1)
            configuration.outcomeFlushTimeout = .seconds(2)
            let ghouls = Ghouls(client: client, handlers: handlers, configuration: configuration)
            let task = Task { try await ghouls.run() }
            let job = try await client.enqueue(Blocked())
            try await eventually("the handler holds its row") { started.load(ordering: .relaxed) }
            let begun = ContinuousClock.now
            ghouls.beginShutdown()
            try await stopped(task)
            let took = ContinuousClock.now - begun
            #expect(took < .seconds(1 + 1 + 2 + 5), "shutdown took \(took)")   // the bound, with room for a loaded machine
            // The give-back could not touch the locked row: the job is left to the rescuer.
            #expect(try await state(client, job.id)?.state == .running)
        }
    }

    @Test("a span refused by the database is dropped and counted; the spans after it are stored by flush()")
    func badSpanDoesNotPoisonItsBatch() async throws {
        try await TestDatabase.withFreshDatabase("wedge_spans") { client in
            _ = try await TracesTests.migrate(client)
            let tracer = PhylacteryTracer(client: client, configuration: .init(service: "tests"), logger: TracesTests.logger)
            // A NUL in a name or attribute is made storable (U+FFFD)…
            let nul = tracer.startSpan("odd\u{0}name")
            nul.attributes["tool.output"] = "bytes\u{0}here"
            nul.end()
            // …and a span the table refuses for another reason is isolated.
            try await client.execute("ALTER TABLE traces.spans ADD CONSTRAINT wedge_no_poison CHECK (name <> 'poison')")
            tracer.startSpan("poison").end()
            for n in 0..<10 { tracer.startSpan("ordinary \(n)").end() }
            #expect(try await tracer.flush() == 11)
            #expect(tracer.unstorableSpans == 1)
            #expect(try await TracesTests.count(client, "name LIKE 'ordinary %'") == 10)
            #expect(try await TracesTests.count(client, "name = 'odd\u{FFFD}name' AND attributes->>'tool.output' = 'bytes\u{FFFD}here'") == 1)
        }
    }

    @Test("user values holding NUL are refused before anything is sent, naming the column or path")
    func userValuesAreRefused() async throws {
        try await withQueueDatabase("wedge_user_nul") { client in
            struct Arguments: Job { static let kind = "wedge.args"; var text: String }
            let job = await #expect(throws: PhylacteryError.self) { try await client.enqueue(Arguments(text: "x\u{0}")) }
            #expect(job?.code == .invalidArgument)
            #expect(job?.message.contains("'/text'") == true)
            let fact = await #expect(throws: PhylacteryError.self) {
                try await client.transaction { try await $0.facts.put("ns", key: "k\u{0}", value: 1, source: "test") }
            }
            #expect(fact?.code == .unstorableValue)
            let value = await #expect(throws: EncodingError.self) {
                try await client.transaction { try await $0.facts.put("ns", key: "k", value: ["a": "b\u{0}"], source: "test") }
            }
            #expect(value != nil)
            let raw = #expect(throws: JSONBError.self) { try RawJSONB(validating: #"{"a":"\u0000"}"#) }
            #expect(raw?.code == .unstorableCharacter)
            let facts = try await count(client, "SELECT count(*) FROM verbatim.facts")
            let jobs = try await count(client, "SELECT count(*) FROM queue.jobs")
            #expect(facts == 0 && jobs == 0)
        }
    }
}
