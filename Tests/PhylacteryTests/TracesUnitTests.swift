import Foundation
import NIOCore
@testable import Phylactery
import Testing
import Tracing

/// The traces chamber's pieces that need no database: ids, the buffer, partition names, rows, the DDL.
@Suite struct TracesUnitTests {
    @Test func traceIDsParseOnlyWellFormedText() throws {
        let id = try TraceID(parsing: "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(id.description == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(try TraceID(parsing: "4BF92F35-77B3-4DA6-A3CE-929D0E0E4736") == id)
        #expect(TraceID(uuid: id.uuid) == id)
        for bad in ["", "xyz", "4bf92f3577b34da6a3ce929d0e0e473", "4bf92f3577b34da6a3ce929d0e0e4736a", "4bf92f3577b34da6a3ce929d0e0e473g", String(repeating: "0", count: 32)] {
            #expect(throws: PhylacteryError.self) { try TraceID(parsing: bad) }
        }
        do {
            _ = try TraceID(parsing: "not-a-trace")
            Issue.record("parsed a malformed trace id")
        } catch {
            #expect(error.code == .invalidArgument)
            #expect(error.message.contains("expected 32 hexadecimal digits"))
        }
        #expect(try SpanID(parsing: "00f067aa0ba902b7").description == "00f067aa0ba902b7")
        #expect(SpanID(UInt64.max).storedValue == -1)
    }

    @Test func traceparentRoundTrips() throws {
        let context = SpanContext(traceID: try TraceID(parsing: "4bf92f3577b34da6a3ce929d0e0e4736"), spanID: try SpanID(parsing: "00f067aa0ba902b7"))
        #expect(context.traceparent == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        // Parsed from a header: the same ids, marked as another process's span.
        var parsed = context
        parsed.isRemote = true
        #expect(SpanContext(traceparent: context.traceparent) == parsed)
        #expect(SpanContext(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")?.isSampled == false)
        #expect(SpanContext(traceparent: "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01") == nil)
        #expect(SpanContext(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01") == nil)
        #expect(SpanContext(traceparent: "garbage") == nil)
    }

    @Test func generatedIDsDoNotRepeat() {
        var seen = Set<UInt64>()
        for _ in 0..<100_000 { seen.insert(SpanIDGenerator.next()) }
        #expect(seen.count == 100_000)
        #expect(!seen.contains(0))
    }

    static func span(_ n: Int) -> FinishedSpan {
        FinishedSpan(traceID: TraceID(high: 1, low: 1), spanID: SpanID(UInt64(n + 1)), parentID: nil, name: "s\(n)", kind: .internal,
                     startNanoseconds: 0, endNanoseconds: 1, status: nil, attributes: [:], events: [], links: [])
    }

    @Test func fullBufferDropsTheOldest() {
        var buffer = SpanBuffer(capacity: 3)
        for n in 0..<5 { _ = buffer.append(Self.span(n)) }
        #expect(buffer.count == 3 && buffer.dropped == 2)
        let batch = buffer.removeOldest(2)
        #expect(batch.map(\.name) == ["s2", "s3"])
        _ = buffer.append(Self.span(5))
        _ = buffer.append(Self.span(6))
        // A failed batch goes back ahead of newer spans; what no longer fits is the oldest and is counted.
        buffer.requeue(batch)
        #expect(buffer.dropped == 4)
        #expect(buffer.removeOldest(10).map(\.name) == ["s4", "s5", "s6"])
        #expect(buffer.count == 0)
    }

    @Test func partitionsAreNamedAfterTheirUTCDay() {
        #expect(TraceStore.partitionName(day: 0) == "spans_p19700101")
        #expect(TraceStore.partitionName(day: 20_463) == "spans_p20260110")
        #expect(TraceStore.day(ofPartition: "spans_p20260112") == 20_465)
        #expect(TraceStore.day(ofPartition: "spans_p2026011") == nil)
        #expect(TraceStore.day(ofPartition: "other_p20260112") == nil)
        for day in [-800, -1, 0, 1, 59, 60, 365, 10_957, 20_463, 40_000] as [Int64] {
            let (y, m, d) = TraceStore.civilDate(day: day)
            #expect(TraceStore.daysFromCivil(y, m, d) == day)
        }
        #expect(TraceStore.day(ofMicroseconds: -1) == -1)
        #expect(TraceStore.day(ofMicroseconds: 86_400_000_000) == 1)
    }

    @Test func rowsAreCopyTextWithEscapedJSON() {
        var span = Self.span(0)
        span.name = "tab\there"
        span.parentID = SpanID(UInt64.max)
        span.startNanoseconds = 1_768_003_200_000_001_000
        span.endNanoseconds = 1_768_003_200_000_251_000
        span.status = SpanStatus(code: .error)
        span.attributes = ["q": .string("say \"hi\"\\\n"), "n": .int64(-42), "x": .double(.nan)]
        span.events = [SpanEvent(name: "exception", at: DefaultTracerClock.Instant(nanosecondsSinceEpoch: 1_768_003_200_000_002_000), attributes: ["exception.message": "boom"])]
        var buffer = ByteBuffer()
        SpanEncoding.write(span, service: "svc", into: &buffer)
        let fields = String(buffer: buffer).split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        #expect(fields.count == SpanEncoding.columns.count)
        #expect(fields[1] == "00000000000000010000000000000001")
        #expect(fields[3] == "-1")
        #expect(fields[4] == "tab\\there")
        #expect(fields[6] == "1768003200000001" && fields[7] == "1768003200000251" && fields[8] == "250")
        #expect(fields[9] == "error" && fields[10] == "boom")
        // JSON backslashes doubled for COPY: the server reads back {"q":"say \"hi\"\\\n", …}.
        let attributes = fields[11]
        #expect(attributes.contains(#""q":"say \\"hi\\"\\\\\\n""#), "\(attributes)")
        #expect(attributes.contains(#""n":-42"#) && attributes.contains(#""x":null"#))
        #expect(fields[12] == #"[{"name":"exception","time_us":1768003200000002,"attributes":{"exception.message":"boom"}}]"#)
        #expect(fields[13] == "[]" && fields[14] == "svc" && fields[15] == "f")
        span.hasRemoteParent = true
        var remote = ByteBuffer()
        SpanEncoding.write(span, service: "svc", into: &remote)
        #expect(String(buffer: remote).hasSuffix("\tsvc\tt"))
        #expect(SpanRecord.rowID(startMicroseconds: 1_768_003_200_000_001, spanID: SpanID(1)) == SpanRecord.rowID(startMicroseconds: 1_768_003_200_000_001, spanID: SpanID(1)))
    }

    @Test func partitionedTablesAreCreatedWithTheirKey() {
        let table = WantedSchema.table(for: SpanRecord.schema, owner: "core", version: "1")
        #expect(table.shape.partitioning == "RANGE (start_us)")
        #expect(table.shape.primaryKey?.columns == ["id", "start_us"])
        let sql = DDL.createTable(table.source)
        #expect(sql.hasSuffix(") PARTITION BY RANGE (start_us)"), "\(sql)")
        #expect(sql.contains("PRIMARY KEY (\"id\", \"start_us\")"))
    }

    @Test func durationsPrintShort() {
        #expect(TraceTimeline.format(microseconds: 850) == "850 µs")
        #expect(TraceTimeline.format(microseconds: 12_345) == "12.3 ms")
        #expect(TraceTimeline.format(microseconds: 1_250_000) == "1.3 s")
        #expect(TraceTimeline.format(microseconds: 250_000_000) == "250 s")
    }
}
