import Foundation
import Logging
@testable import Phylactery
import PhylacteryTestSupport
import PostgresNIO
import Testing

/// What the queue does with the states a failover (or a server restart) leaves behind, each made
/// here on purpose in a real database: an attempt settled under its own claim whose answer never
/// arrived, a completion lost with an asynchronous standby, jobs a lost claim left running under a
/// worker's name, leases that ran out while their worker could not reach the server.
/// (`phylactery-chaos failover` runs the whole failover on two servers.)
@Suite("Queue: across a failover")
struct QueueFailoverTests {
    static let worker = "failover-test:default"

    /// Enqueues `count` jobs and claims them all under ``worker``.
    func claimed(_ client: PhylacteryClient, _ count: Int) async throws -> [ClaimedJob] {
        _ = try await client.enqueue(contentsOf: (0..<count).map { Effect(n: $0) })
        let jobs = try await QueueStore(client: client).claim(queue: "default", limit: count, lease: .seconds(60), worker: Self.worker)
        try #require(jobs.count == count)
        return jobs.sorted { $0.id.uuidString < $1.id.uuidString }
    }

    /// The job's state, attempt and claim count, as `state attempt claims`.
    func state(_ client: PhylacteryClient, _ id: UUID) async throws -> String {
        let row = try await client.query("SELECT state, attempt, claims FROM queue.jobs WHERE id = \(id)").collect()
        let (state, attempt, claims) = try #require(row.first).decode((String, Int32, Int64).self)
        return "\(state) \(attempt) \(claims)"
    }

    @Test("an outcome the fence refuses is told apart by its row: settled under its own claim, locked, a lost completion, a lease passed on")
    func unappliedOutcomes() async throws {
        try await withQueueDatabase("failover-outcomes") { client in
            let jobs = try await claimed(client, 5)
            let (committedAnyway, completionLost, passedOn, locked, writtenTwice) = (jobs[0], jobs[1], jobs[2], jobs[3], jobs[4])
            // The handler's own transaction committed the completion, but its answer was lost: the
            // worker reports a failure. So does an outcome written by a statement whose answer was lost.
            try await client.execute("UPDATE queue.jobs SET state = 'completed', finalized_at = now(), lease_expires_at = NULL WHERE id = \(committedAnyway.id)")
            _ = try await OutcomeWriter.record([(writtenTwice, .completed(result: nil))], client: client, timeout: .seconds(30))
            // Another attempt claimed this one's job after its lease ran out.
            try await client.execute("UPDATE queue.jobs SET claims = claims + 1 WHERE id = \(passedOn.id)")

            let failure = JobOutcome.failed(message: "the connection was lost while COMMIT was in flight", reason: .error, retryIn: 0, discard: false)
            let items: [(job: ClaimedJob, outcome: JobOutcome)] = [
                (committedAnyway, failure), (completionLost, .resultAfterTransaction(nil)), (passedOn, .completed(result: nil)),
                (locked, .completed(result: nil)), (writtenTwice, .completed(result: nil)),
            ]
            // A foreign transaction holds one row while the outcomes are written.
            let written = try await client.withDirectConnection { holder in
                let logger = Logger(label: "failover-test")
                _ = try await holder.query("BEGIN", logger: logger).collect()
                _ = try await holder.query("SELECT 1 FROM queue.jobs WHERE id = \(locked.id) FOR UPDATE", logger: logger).collect()
                let written = try await OutcomeWriter.record(items, client: client, timeout: .seconds(30))
                _ = try await holder.query("ROLLBACK", logger: logger).collect()
                return written
            }
            #expect(written.applied.isEmpty)
            #expect(written.settled == [committedAnyway.id: "completed", writtenTwice.id: "completed"])
            #expect(written.completionLost == [completionLost.id])
            #expect(written.locked == [locked.id])
            // Nothing was overwritten: the completion stands, the job is not run again.
            #expect(try await state(client, committedAnyway.id) == "completed 1 1")
            #expect(try await state(client, passedOn.id) == "running 1 2")
            #expect(try await state(client, completionLost.id) == "running 1 1")
            #expect(try await client.jobs.job(committedAnyway.id).errors.isEmpty)
        }
    }

    @Test("a claim loop gives back the jobs a lost claim left running under its name, and only those")
    func unheldJobsGivenBack() async throws {
        try await withQueueDatabase("failover-unheld") { client in
            let jobs = try await claimed(client, 3)
            _ = try await client.enqueue(Effect(n: 99))
            let foreign = try await QueueStore(client: client).claim(queue: "default", limit: 1, lease: .seconds(60), worker: "someone-else:default")
            let store = QueueStore(client: client)
            #expect(try await store.giveBackUnheld(queue: "default", worker: Self.worker, holding: [jobs[0].id]) == 2)
            // Held here: untouched. Lost: waiting again, the attempt not counted. Another worker's: untouched.
            #expect(try await state(client, jobs[0].id) == "running 1 1")
            #expect(try await state(client, jobs[1].id) == "available 0 1")
            #expect(try await state(client, jobs[2].id) == "available 0 1")
            #expect(try await state(client, try #require(foreign.first).id) == "running 1 1")
            #expect(try await store.giveBackUnheld(queue: "default", worker: Self.worker, holding: [jobs[0].id]) == 0)
            // Claimed again, they run under a new token: the lost claim's token is fenced off.
            let again = try await store.claim(queue: "default", limit: 2, lease: .seconds(60), worker: Self.worker)
            #expect(Set(again.map(\.id)) == [jobs[1].id, jobs[2].id])
            #expect(again.allSatisfy { $0.token == 2 && $0.attempt == 1 })
        }
    }

    @Test("the rescuer leaves the expired leases of the jobs its own process holds to its heartbeat")
    func rescuerSparesHeldJobs() async throws {
        try await withQueueDatabase("failover-rescue") { client in
            let jobs = try await claimed(client, 2)
            try await client.execute("UPDATE queue.jobs SET lease_expires_at = now() - interval '1 second'")
            let store = QueueStore(client: client)
            let rescued = try await store.rescue(excluding: [jobs[0].id])
            #expect(rescued.map { $0.id } == [jobs[1].id])
            #expect(try await state(client, jobs[0].id) == "running 1 1")
            // Its heartbeat then extends it: the lease is honoured.
            let (extended, _) = try await store.heartbeat([(jobs[0].id, jobs[0].token)], lease: .seconds(60))
            #expect(extended == [jobs[0].id])
            #expect(try await store.rescue().isEmpty)
        }
    }
}
