import Foundation
import Logging
import Phylactery
import PhylacteryTestSupport
import PostgresNIO
import Synchronization
import Testing

/// A job kind the tests' own CHECK constraint refuses: a row the server rejects.
struct Refused: Job { static let kind = "test.refused"; var n: Int }

/// The autocommitted single enqueue (`client.enqueue(job)` outside a transaction): one statement that
/// inserts, checks the unique key and notifies, prepared once per pooled connection.
@Suite("Queue: single enqueue")
struct QueueSingleEnqueueTests {
    @Test("it stores exactly what a transaction's enqueue stores, with every option")
    func sameRows() async throws {
        try await withQueueDatabase("queue_single_same") { client in
            let later = Date().addingTimeInterval(3600)
            func options(_ key: String) -> JobOptions {
                JobOptions(queue: "mail", priority: 3, maxAttempts: 4, scheduledAt: later, uniqueKey: key, uniqueness: .ever)
            }
            let alone = try await client.enqueue(Effect(n: 41), options: options("a"))
            let inTransaction = try await client.transaction { tx in try await tx.enqueue(Effect(n: 41), options: options("b")) }
            let plainAlone = try await client.enqueue(Effect(n: 42))
            let plainInTransaction = try await client.transaction { tx in try await tx.enqueue(Effect(n: 42)) }
            #expect(!alone.isDuplicate && !inTransaction.isDuplicate && !plainAlone.isDuplicate && !plainInTransaction.isDuplicate)
            #expect(alone.kind == Effect.kind)

            func comparable(_ record: JobRecord) -> [String] {
                [record.kind, record.queue, record.state.rawValue, "\(record.priority)", "\(record.maxAttempts)", "\(record.attempt)",
                 "\(try! record.decodeArguments(as: Effect.self).n)", record.uniqueness?.rawValue ?? "-", "\(record.errors.count)"]
            }
            let a = try await client.jobs.job(alone.id), b = try await client.jobs.job(inTransaction.id)
            #expect(comparable(a) == comparable(b))
            #expect(a.uniqueKey == "a" && b.uniqueKey == "b")
            #expect(abs(a.scheduledAt.timeIntervalSince(later)) < 0.001 && abs(b.scheduledAt.timeIntervalSince(later)) < 0.001)
            let c = try await client.jobs.job(plainAlone.id), d = try await client.jobs.job(plainInTransaction.id)
            #expect(comparable(c) == comparable(d))
            #expect(c.uniqueKey == nil && c.uniqueness == nil && c.queue == "default" && c.priority == 10)
            // Not scheduled: due at the enqueuing statement's time (the server's now()).
            #expect(abs(c.scheduledAt.timeIntervalSince(c.createdAt)) < 0.001)
            // The many calls that follow reuse the prepared statement on each pooled connection.
            let many = try await withThrowingTaskGroup(of: EnqueuedJob.self) { group in
                for n in 0..<40 { group.addTask { try await client.enqueue(Effect(n: n)) } }
                return try await group.reduce(into: [EnqueuedJob]()) { $0.append($1) }
            }
            #expect(Set(many.map(\.id)).count == 40)
            #expect(try await count(client, "SELECT count(*) FROM queue.jobs WHERE id = ANY(\(many.map(\.id))::uuid[])") == 40)
        }
    }

    @Test("a duplicate unique key returns the job that holds it, and stores nothing")
    func duplicates() async throws {
        try await withQueueDatabase("queue_single_dup") { client in
            let first = try await client.enqueue(Effect(n: 1), options: JobOptions(uniqueKey: "k"))
            // The holder enqueued in a transaction, the duplicate alone, and the other way round.
            let held = try await client.transaction { tx in try await tx.enqueue(Effect(n: 2), options: JobOptions(uniqueKey: "t")) }
            for _ in 0..<3 {
                let again = try await client.enqueue(Effect(n: 9), options: JobOptions(uniqueKey: "k"))
                #expect(again.isDuplicate && again.id == first.id)
                let other = try await client.enqueue(Effect(n: 9), options: JobOptions(uniqueKey: "t"))
                #expect(other.isDuplicate && other.id == held.id)
            }
            let inTransaction = try await client.transaction { tx in try await tx.enqueue(Effect(n: 9), options: JobOptions(uniqueKey: "k")) }
            #expect(inTransaction.isDuplicate && inTransaction.id == first.id)
            // The same key under another kind is another job.
            let otherKind = try await client.enqueue(Poison(n: 1), options: JobOptions(uniqueKey: "k"))
            #expect(!otherKind.isDuplicate)
            #expect(try await count(client, "SELECT count(*) FROM queue.jobs") == 3)
            #expect(try await count(client, "SELECT count(*) FROM queue.jobs WHERE (args->>'n')::int = 9") == 0)
        }
    }

    @Test("listeners are woken by a due job, not by a scheduled one nor a duplicate", .disabled(if: TestDatabase.throughTransactionPooler, "LISTENs, which a transaction pooler has not"))
    func notifies() async throws {
        try await withQueueDatabase("queue_single_notify") { client in
            try await client.enqueue(Effect(n: 0), options: JobOptions(queue: "dup", uniqueKey: "d"))
            try await withListener(client) { next in
                // Notifications arrive in commit order: had the scheduled job or the duplicate notified,
                // their queue would come first.
                try await client.enqueue(Effect(n: 1), options: JobOptions(queue: "later", scheduledAt: Date().addingTimeInterval(600)))
                let duplicate = try await client.enqueue(Effect(n: 2), options: JobOptions(queue: "dup", uniqueKey: "d"))
                #expect(duplicate.isDuplicate)
                try await client.enqueue(Effect(n: 3), options: JobOptions(queue: "now"))
                #expect(try await next() == "now")
                try await client.enqueue(Effect(n: 4), options: JobOptions(queue: "again"))
                #expect(try await next() == "again")
            }
        }
    }

    @Test("a row the server refuses leaves nothing written nor notified, and the next enqueue works")
    func refusedRow() async throws {
        try await withQueueDatabase("queue_single_refused") { client in
            try await client.execute("ALTER TABLE queue.jobs ADD CONSTRAINT test_refuse CHECK (kind <> 'test.refused')")
            try await client.enqueue(Effect(n: 0))  // the statement is prepared on the connection before the failure
            func refuseAndGoOn(then queue: String) async throws {
                for _ in 0..<3 {
                    let error = await #expect(throws: PhylacteryError.self) {
                        try await client.enqueue(Refused(n: 1), options: JobOptions(queue: "refused"))
                    }
                    #expect(error?.sqlState == "23514")
                    #expect(error?.code == .queryFailed)
                }
                let next = try await client.enqueue(Effect(n: 2), options: JobOptions(queue: queue))
                #expect(!next.isDuplicate)
                #expect(try await client.jobs.job(next.id).queue == queue)
            }
            if TestDatabase.throughTransactionPooler {
                try await refuseAndGoOn(then: "after")
            } else {
                try await withListener(client) { next in
                    try await refuseAndGoOn(then: "after")
                    // The refused statements' notifications were rolled back with them.
                    #expect(try await next() == "after")
                }
            }
            #expect(try await count(client, "SELECT count(*) FROM queue.jobs WHERE kind = 'test.refused'") == 0)
            #expect(try await count(client, "SELECT count(*) FROM queue.jobs") == 2)
        }
    }

    @Test("an enqueue whose connection is killed while it waits fails with a typed error, stores nothing, and the next one works")
    func killedConnection() async throws {
        try await withQueueDatabase("queue_single_killed") { client in
            struct Rollback: Error {}
            let waitingInsert = """
                FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO queue.jobs%'
                """
            await #expect(throws: Rollback.self) {
                try await client.transaction { tx in
                    // Holds the key uncommitted: an enqueue of the same key waits for this transaction.
                    try await tx.enqueue(Effect(n: 1), options: JobOptions(uniqueKey: "held"))
                    let blocked = Task { try await client.enqueue(Effect(n: 2), options: JobOptions(uniqueKey: "held")) }
                    try await eventually("the single enqueue waits on the held key", timeout: .seconds(60)) {
                        try await count(client, PostgresQuery(unsafeSQL: "SELECT count(*) " + waitingInsert)) == 1
                    }
                    try await client.execute(PostgresQuery(unsafeSQL: "SELECT pg_terminate_backend(pid) " + waitingInsert))
                    let outcome = await blocked.result
                    switch outcome {
                    case .success(let job):
                        Issue.record("the enqueue whose session was terminated returned \(job)")
                    case .failure(let error):
                        let typed = error as? PhylacteryError
                        #expect(typed != nil, "not a PhylacteryError: \(String(reflecting: error))")
                        #expect(typed?.code == .connectionFailed || typed?.sqlState?.hasPrefix("57P") == true, "\(String(reflecting: error))")
                    }
                    throw Rollback()
                }
            }
            #expect(try await count(client, "SELECT count(*) FROM queue.jobs") == 0)
            // The pool dropped the dead connection: the next enqueues of the key work.
            let next = try await client.enqueue(Effect(n: 3), options: JobOptions(uniqueKey: "held"))
            #expect(!next.isDuplicate)
            let duplicate = try await client.enqueue(Effect(n: 4), options: JobOptions(uniqueKey: "held"))
            #expect(duplicate.isDuplicate && duplicate.id == next.id)
            #expect(try await count(client, "SELECT count(*) FROM queue.jobs") == 1)
        }
    }

    @Test("it is one round trip, and the statement is parsed once per connection")
    func oneRoundTrip() async throws {
        try await TestDatabase.withFreshDatabaseURL("queue_single_trip") { url in
            let log = CapturedLogs()
            var options = TestDatabase.defaultOptions
            options.maximumConnections = 1
            try await PhylacteryClient.withClient(configuration: .init(url: url, options: options), logger: log.logger()) { client in
                try await Migrator(client: client, federation: try Federation.standard(extensions: [])).apply(allowing: [])
                try await client.enqueue(Effect(n: 0))
                try await client.enqueue(Effect(n: 0))
                let pooled = client.sessionFeatures?.transactionPooler != false
                for n in 1...5 {
                    log.clear()
                    try await client.enqueue(Effect(n: n), options: JobOptions(uniqueKey: "trip-\(n)"))
                    let entries = log.all
                    // What went out: PostgresNIO logs each message it sends as a "Run action send…", each
                    // ending with a Sync, so one of them is one round trip. (The previous call's
                    // ReadyForQuery may be logged after it returned: sends are what this call caused.)
                    let actions = entries.compactMap { entry -> String? in
                        guard entry.contains(" Run action "), let range = entry.range(of: "psql_connection_action=send") else { return nil }
                        return String(entry[range.upperBound...].prefix(while: { $0.isLetter }))
                    }
                    if pooled {
                        // Behind a transaction pooler: the same statement unnamed, still one round trip.
                        #expect(actions == ["ParseDescribeBindExecuteSync"], "\(actions)")
                    } else {
                        // Prepared already: only Bind/Execute/Sync goes out.
                        #expect(actions == ["BindExecuteSync"], "\(actions)")
                    }
                }
                #expect(try await count(client, "SELECT count(*) FROM queue.jobs") == 7)
            }
        }
    }
}

/// LISTENs on the queue's wake-up channel on a connection of its own and runs `body` with a function
/// returning the next notification's payload (the queue), waiting for it at most 30 s.
private func withListener<R: Sendable>(_ client: PhylacteryClient, _ body: (@Sendable () async throws -> String) async throws -> R) async throws -> R {
    try await client.withDirectConnection { connection in
        try await connection.listen(on: "phylactery_queue") { notifications in
            let received = Payloads()
            let feeder = Task {
                for try await notification in notifications { received.append(notification.payload) }
            }
            defer { feeder.cancel() }
            return try await body {
                let index = received.take()
                try await eventually("notification \(index + 1) on phylactery_queue", timeout: .seconds(30)) { received.count > index }
                return received[index]
            }
        }
    }
}

/// Notification payloads in arrival order, and how many a test has taken.
private final class Payloads: Sendable {
    private let state = Mutex<(items: [String], taken: Int)>(([], 0))
    func append(_ payload: String) { self.state.withLock { $0.items.append(payload) } }
    var count: Int { self.state.withLock { $0.items.count } }
    subscript(index: Int) -> String { self.state.withLock { $0.items[index] } }
    /// The index of the next payload to take, counted as taken.
    func take() -> Int { self.state.withLock { state in defer { state.taken += 1 }; return state.taken } }
}
