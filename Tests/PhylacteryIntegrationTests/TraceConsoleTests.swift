import Foundation
import Phylactery
import PhylacteryTestSupport
import PostgresNIO
import Testing

/// The trace queries behind the console's pages, against a real server: keyset pages of the trace
/// list with filters, the waterfall of one trace, and the traces of a job.
@Suite struct TraceConsoleTests {
    /// 2026-01-10T00:00:00Z in microseconds: every span of these tests starts on that day.
    static let day: Int64 = 1_768_003_200_000_000

    static func migrate(_ client: PhylacteryClient) async throws {
        try await Migrator(client: client, federation: try Federation(core: Federation.coreModels)).auto(message: "traces")
        try await client.traces.createPartitions(from: Date(timeIntervalSince1970: TimeInterval(day / 1_000_000)), days: 1)
    }

    static func root(_ n: UInt64, name: String = "job.run", start: Int64, duration: Int64 = 1_000, status: SpanRecord.Status = .ok,
                     attributes: [String: TraceValue] = [:]) -> SpanRecord {
        SpanRecord(traceID: TraceID(high: 1, low: n), spanID: SpanID(n << 8), parentSpanID: nil, name: name,
                   startMicroseconds: day + start, endMicroseconds: day + start + duration, status: status, attributes: attributes, service: "tests")
    }

    @Test func theTraceListIsPagedByCursorWithoutRepeatsOrGaps() async throws {
        try await TestDatabase.withFreshDatabase("trace_pages") { client in
            try await Self.migrate(client)
            // 25 roots; 3 and 4 start in the same microsecond (a tie the row id breaks); every fifth
            // trace has an error child.
            var spans: [SpanRecord] = []
            for n in UInt64(1)...25 {
                let start = n == 4 ? 3_000 : Int64(n) * 1_000
                spans.append(Self.root(n, name: n % 2 == 0 ? "even" : "odd", start: start, duration: Int64(n) * 100))
                if n % 5 == 0 {
                    spans.append(SpanRecord(traceID: TraceID(high: 1, low: n), spanID: SpanID(n << 8 | 1), parentSpanID: SpanID(n << 8), name: "fetch",
                                            startMicroseconds: Self.day + start + 10, endMicroseconds: Self.day + start + 20, status: .error, service: "tests"))
                }
            }
            try await client.insert(contentsOf: spans)

            let everything = try await client.traces.list(TraceFilter(limit: 100))
            #expect(everything.count == 25)
            #expect(everything.map(\.startMicroseconds) == everything.map(\.startMicroseconds).sorted(by: >))

            // Pages of 4 walk the same list, each starting right after the previous one's last trace.
            var filter = TraceFilter(limit: 4)
            var walked: [TraceStore.Summary] = []
            var pages = 0
            repeat {
                let page = try await client.traces.page(filter)
                #expect(page.traces.count <= 4)
                walked += page.traces
                pages += 1
                // The cursor survives its trip through a link as text.
                filter.after = try page.next.map { try #require(TraceCursor($0.description)) }
            } while filter.after != nil && pages < 20
            #expect(pages == 7)
            #expect(walked == everything)

            // A trace recorded while paging (newer than the first page) does not shift later pages.
            let first = try await client.traces.page(TraceFilter(limit: 10))
            try await client.insert(contentsOf: [Self.root(99, start: 50_000)])
            let second = try await client.traces.page(TraceFilter(limit: 10, after: first.next))
            #expect(second.traces == Array(everything[10..<20]))

            // Filters page too: error traces (5, 10, 15, 20, 25), newest first, two at a time.
            var errors = TraceFilter(status: .error, limit: 2)
            var found: [UInt64] = []
            repeat {
                let page = try await client.traces.page(errors)
                found += page.traces.map(\.traceID.low)
                #expect(page.traces.allSatisfy { $0.errorCount == 1 && $0.spanCount == 2 })
                errors.after = page.next
            } while errors.after != nil
            #expect(found == [25, 20, 15, 10, 5])

            let slowEven = try await client.traces.page(TraceFilter(name: "even", minimumDuration: .microseconds(2_000), limit: 10))
            #expect(slowEven.traces.map(\.traceID.low) == [24, 22, 20] && slowEven.next == nil)
            let since = try await client.traces.page(TraceFilter(since: Date(timeIntervalSince1970: TimeInterval(Self.day + 23_000) / 1_000_000), limit: 10))
            #expect(since.traces.map(\.traceID.low) == [99, 25, 24, 23])

            // Bad input is refused; a token that is not a cursor reads as none.
            await #expect(throws: PhylacteryError.self) { try await client.traces.page(TraceFilter(limit: 0)) }
            #expect(TraceCursor("not-a-cursor") == nil && TraceCursor("12") == nil && TraceCursor("-1-00f067aa0ba902b7") == nil)
        }
    }

    @Test func aTracesWaterfallHasDepthsAndOffsetsInTreeOrder() async throws {
        try await TestDatabase.withFreshDatabase("trace_waterfall") { client in
            try await Self.migrate(client)
            let trace = TraceID(high: 7, low: 7)
            func span(_ id: UInt64, parent: UInt64?, _ name: String, start: Int64, end: Int64, status: SpanRecord.Status = .ok,
                      events: [SpanRecord.Event] = []) -> SpanRecord {
                SpanRecord(traceID: trace, spanID: SpanID(id), parentSpanID: parent.map(SpanID.init), name: name,
                           startMicroseconds: Self.day + start, endMicroseconds: Self.day + end, status: status,
                           attributes: ["n": .int(Int64(id))], events: events, service: "tests")
            }
            try await client.insert(contentsOf: [
                span(1, parent: nil, "job", start: 0, end: 10_000),
                span(4, parent: 1, "complete", start: 8_000, end: 9_500),
                span(2, parent: 1, "handler", start: 1_000, end: 7_000),
                span(3, parent: 2, "fetch", start: 1_500, end: 2_500, status: .error,
                     events: [SpanRecord.Event(name: "exception", timeMicroseconds: Self.day + 2_400, attributes: ["exception.message": .string("timed out")])]),
            ])
            let waterfall = try await client.traces.waterfall(trace)
            #expect(waterfall.rows.map(\.name) == ["job", "handler", "fetch", "complete"])
            #expect(waterfall.rows.map(\.depth) == [0, 1, 2, 1])
            #expect(waterfall.rows.map(\.offsetMicroseconds) == [0, 1_000, 1_500, 8_000])
            #expect(waterfall.rows.map(\.durationMicroseconds) == [10_000, 6_000, 1_000, 1_500])
            #expect(waterfall.durationMicroseconds == 10_000 && waterfall.totalSpanCount == 4 && waterfall.errorCount == 1)
            let fetch = waterfall.rows[2]
            #expect(fetch.status == .error && fetch.parentSpanID == SpanID(2) && fetch.attributes["n"] == .int(3))
            #expect(fetch.events.map(\.offsetMicroseconds) == [2_400] && fetch.events.first?.attributes["exception.message"] == .string("timed out"))

            // The JSON a page's script or another UI reads: ids in their W3C hex forms.
            let json = String(decoding: try JSONEncoder().encode(waterfall), as: UTF8.self)
            #expect(json.contains("\"traceID\":\"\(trace)\"") && json.contains("\"spanID\":\"0000000000000003\""), "\(json)")
            #expect(try JSONDecoder().decode(TraceWaterfall.self, from: Data(json.utf8)) == waterfall)

            // One page of the trace: the span whose parent is on another page starts at depth 0.
            let page = try await client.traces.waterfall(trace, offset: 2, limit: 2)
            #expect(page.rows.map(\.name) == ["fetch", "complete"] && page.rows.map(\.depth) == [0, 0] && page.offset == 2)
            await #expect(throws: PhylacteryError.self) { try await client.traces.waterfall(TraceID(high: 9, low: 9)) }
        }
    }

    @Test func aJobsTracesAreFoundByItsId() async throws {
        try await TestDatabase.withFreshDatabase("trace_of_job") { client in
            try await Self.migrate(client)
            let job = UUID(), other = UUID()
            try await client.insert(contentsOf: [
                Self.root(1, name: "job mail", start: 1_000, attributes: ["phylactery.job.id": .string(job.uuidString)]),
                Self.root(2, name: "job mail", start: 5_000, attributes: ["phylactery.job.id": .string(job.uuidString)]),
                Self.root(3, name: "job mail", start: 3_000, attributes: ["phylactery.job.id": .string(other.uuidString)]),
                // A child span carrying the attribute is not a run of the job.
                SpanRecord(traceID: TraceID(high: 1, low: 3), spanID: SpanID(99), parentSpanID: SpanID(3 << 8), name: "nested",
                           startMicroseconds: Self.day + 3_100, endMicroseconds: Self.day + 3_200,
                           attributes: ["phylactery.job.id": .string(job.uuidString)], service: "tests"),
            ])
            let runs = try await client.traces.traces(ofJob: job)
            #expect(runs.map(\.traceID.low) == [2, 1])
            #expect(try await client.traces.traces(ofJob: UUID()).isEmpty)
            let indexed = try await client.query("SELECT count(*) FROM pg_indexes WHERE schemaname = 'traces' AND indexname = 'spans_job_idx'")
                .collect().first!.decode(Int.self)
            #expect(indexed == 1)
        }
    }
}
