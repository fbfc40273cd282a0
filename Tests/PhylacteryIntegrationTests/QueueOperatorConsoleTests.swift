import Foundation
@testable import Phylactery
import PhylacteryTestSupport
import PostgresNIO
import Testing

/// The queue operator's additions for the console: filtered keyset pages, counts, discard, run now,
/// bulk actions and the throughput/latency series.
@Suite struct QueueOperatorConsoleTests {
    static func finish(_ client: PhylacteryClient, _ id: UUID, _ state: JobState, error: String? = nil, ranSeconds: Double = 1) async throws {
        try await client.execute("""
            UPDATE queue.jobs SET state = \(state.rawValue), attempt = 1, attempted_at = now() - make_interval(secs => \(ranSeconds)),
                scheduled_at = now() - make_interval(secs => \(ranSeconds + 2)), finalized_at = CASE WHEN \(state.isFinal) THEN now() END,
                errors = CASE WHEN \(error)::text IS NULL THEN errors ELSE errors || jsonb_build_array(jsonb_build_object(
                    'attempt', 1, 'at', now(), 'reason', 'error', 'message', \(error)::text)) END
            WHERE id = \(id)
            """)
    }

    @Test func pagesFilterAndNeverOverlap() async throws {
        try await withQueueDatabase("queue_console_pages") { client in
            let ids = try await client.enqueue(contentsOf: (0..<25).map { Effect(n: $0) }).map(\.id)
            for id in ids.prefix(4) { try await Self.finish(client, id, .discarded, error: "Disk FULL on /var") }
            try await Self.finish(client, ids[4], .discarded, error: "permission denied")
            var seen: [UUID] = []
            var cursor: UUID?
            repeat {
                let page = try await client.jobs.page(before: cursor, limit: 10)
                #expect(page.jobs.count <= 10)
                seen += page.jobs.map(\.id)
                cursor = page.next
                _ = try await client.enqueue(Effect(n: 99))  // newer than every listed job
            } while cursor != nil
            // Newest first in the primary key's order (PostgreSQL compares uuids byte by byte), each once.
            let text = seen.map { $0.uuidString.lowercased() }
            #expect(text == text.sorted(by: >))
            #expect(seen.count == 25 && Set(seen) == Set(ids))
            let full = QueueOperator.JobFilter(state: .discarded, errorText: "disk full")
            #expect(Set(try await client.jobs.page(full).jobs.map(\.id)) == Set(ids.prefix(4)))
            #expect(try await client.jobs.count(full) == 4)
            #expect(try await client.jobs.count(QueueOperator.JobFilter(state: .discarded)) == 5)
            #expect(try await client.jobs.count(QueueOperator.JobFilter(kind: "no.such.kind")) == 0)
            #expect(try await client.jobs.page(QueueOperator.JobFilter(queue: "elsewhere")).jobs.isEmpty)
            // Text with LIKE's wildcards is matched literally.
            #expect(try await client.jobs.count(QueueOperator.JobFilter(errorText: "%")) == 0)
            await #expect(throws: PhylacteryError.self) { try await client.jobs.page(limit: 0) }
        }
    }

    @Test func discardAndRunNowOnlyTouchWaitingJobs() async throws {
        try await withQueueDatabase("queue_console_actions") { client in
            let later = try await client.enqueue(Effect(n: 1), options: JobOptions(scheduledAt: Date().addingTimeInterval(3600))).id
            #expect(try await client.jobs.runNow(later) == .done)
            #expect(try await client.jobs.job(later).scheduledAt <= Date().addingTimeInterval(5))
            #expect(try await client.jobs.discard(later) == .done)
            let record = try await client.jobs.job(later)
            #expect(record.state == .discarded && record.finalizedAt != nil)
            #expect(record.errors.last?.reason == .discarded)
            #expect(try await client.jobs.discard(later) == .notApplicable)
            #expect(try await client.jobs.runNow(later) == .notApplicable)
            await #expect(throws: PhylacteryError.self) { try await client.jobs.discard(UUID()) }
        }
    }

    @Test func bulkActionsWorkInBatches() async throws {
        try await withQueueDatabase("queue_console_bulk") { client in
            let ids = try await client.enqueue(contentsOf: (0..<23).map { Effect(n: $0) }).map(\.id)
            for id in ids.prefix(13) { try await Self.finish(client, id, .discarded, error: "boom") }
            try await Self.finish(client, ids[13], .running)
            // Retry the discarded ones, 5 per batch.
            #expect(try await client.jobs.bulk(.retry, QueueOperator.JobFilter(state: .discarded), batchSize: 5) == 13)
            #expect(try await client.jobs.count(QueueOperator.JobFilter(state: .discarded)) == 0)
            // Cancel everything: 22 waiting jobs cancelled, the running one asked.
            #expect(try await client.jobs.bulk(.cancel, QueueOperator.JobFilter(), batchSize: 4) == 23)
            #expect(try await client.jobs.count(QueueOperator.JobFilter(state: .cancelled)) == 22)
            #expect(try await client.jobs.job(ids[13]).cancelRequested)
            // Discard and run-now apply to waiting jobs only: none are left.
            #expect(try await client.jobs.bulk(.discard, QueueOperator.JobFilter()) == 0)
            #expect(try await client.jobs.bulk(.runNow, QueueOperator.JobFilter()) == 0)
        }
    }

    @Test func seriesCountsFinishedJobsPerBucket() async throws {
        try await withQueueDatabase("queue_console_series") { client in
            let ids = try await client.enqueue(contentsOf: (0..<6).map { Effect(n: $0) }).map(\.id)
            for id in ids.prefix(4) { try await Self.finish(client, id, .completed, ranSeconds: 3) }
            try await Self.finish(client, ids[4], .discarded, error: "x", ranSeconds: 1)
            let series = try await client.jobs.series(over: .seconds(600), bucket: .seconds(60))
            #expect(series.count == 10)
            #expect(zip(series, series.dropFirst()).allSatisfy { $0.start < $1.start })
            #expect(series.map(\.completed).reduce(0, +) == 4)
            #expect(series.map(\.failed).reduce(0, +) == 1)
            let busy = series.filter { $0.completed + $0.failed > 0 }
            #expect(!busy.isEmpty)
            for point in busy {
                #expect((point.meanRunSeconds ?? 0) >= 0.9)
                #expect((point.meanWaitSeconds ?? 0) >= 1.9)
            }
            #expect(series.filter { $0.completed + $0.failed == 0 }.allSatisfy { $0.meanRunSeconds == nil })
            #expect(try await client.jobs.series(over: .seconds(600), bucket: .seconds(60), queue: "elsewhere").map(\.completed).reduce(0, +) == 0)
            await #expect(throws: PhylacteryError.self) { try await client.jobs.series(over: .seconds(10), bucket: .seconds(60)) }
        }
    }

    @Test func outcomesRecordTheAttemptsTrace() async throws {
        try await withQueueDatabase("queue_console_trace") { client in
            let ids = try await client.enqueue(contentsOf: [Effect(n: 1), Effect(n: 2)]).map(\.id)
            var claimed = try await QueueStore(client: client).claim(queue: "default", limit: 2, lease: .seconds(60), worker: "test")
            #expect(claimed.count == 2)
            let first = TraceID(high: 0x0102_0304_0506_0708, low: 0x090a_0b0c_0d0e_0f10)
            let second = TraceID(high: 7, low: 8)
            claimed[0].traceID = first
            claimed[1].traceID = second
            let written = try await OutcomeWriter.record([
                (claimed[0], .completed(result: nil)),
                (claimed[1], .failed(message: "boom", reason: .error, retryIn: 0, discard: false)),
            ], client: client, timeout: .seconds(30))
            #expect(written.applied.count == 2)
            let byID = Dictionary(uniqueKeysWithValues: claimed.map { ($0.id, $0.traceID) })
            for id in ids {
                #expect(try await client.jobs.job(id).traceID == byID[id] ?? nil)
            }
            // The next attempt without a tracer keeps the last recorded trace.
            let again = try await QueueStore(client: client).claim(queue: "default", limit: 1, lease: .seconds(60), worker: "test")
            #expect(again.count == 1)
            _ = try await OutcomeWriter.record([(again[0], .completed(result: nil))], client: client, timeout: .seconds(30))
            #expect(try await client.jobs.job(again[0].id).traceID == byID[again[0].id] ?? nil)
        }
    }
}
