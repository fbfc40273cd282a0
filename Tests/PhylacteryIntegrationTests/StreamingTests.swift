import Foundation
import Phylactery
import PhylacteryTestSupport
import PostgresNIO
import Testing

@Model(table: "stream_rows")
struct StreamRow: Equatable {
    var n: Int
    var label: String
    var payload: String
}

/// This process's memory, from /proc/self/status.
enum ProcessMemory {
    /// A field in kB (`VmRSS`, `VmHWM`).
    static func kilobytes(_ field: String) throws -> Int {
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        for line in status.split(separator: "\n") where line.hasPrefix(field + ":") {
            if let value = line.split(whereSeparator: \.isWhitespace).dropFirst().first.flatMap({ Int($0) }) { return value }
        }
        throw PhylacteryError(.invalidArgument, "/proc/self/status has no \(field) line; the memory test needs Linux")
    }

    /// Resets VmHWM to the current RSS (Linux: writing 5 to clear_refs), so the peak measured next is
    /// this test's own rather than that of whatever ran before in the process.
    static func resetPeak() {
        try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
    }
}

@Suite(.serialized) struct StreamingTests {
    static func migrate(_ client: PhylacteryClient) async throws {
        let federation = try Federation(core: Federation.coreModels + [ModelRegistration(StreamRow.self)])
        _ = try await Migrator(client: client, federation: federation).auto()
    }

    /// `count` rows made by the server (`generate_series`), each with ~100 bytes of payload.
    static func fill(_ client: PhylacteryClient, count: Int) async throws {
        try await client.execute("""
            INSERT INTO public.stream_rows (id, n, label, payload)
            SELECT gen_random_uuid(), g, 'row ' || g, repeat(md5(g::text), 3) FROM generate_series(1, \(count)) AS g
            """)
    }

    @Test func aMillionRowStreamKeepsMemoryFlat() async throws {
        try await TestDatabase.withFreshDatabase("stream_million") { client in
            try await Self.migrate(client)
            let total = 1_000_000
            let clock = ContinuousClock()
            let filled = try await clock.measure { try await Self.fill(client, count: total) }
            ProcessMemory.resetPeak()
            let started = clock.now
            let baseline = try ProcessMemory.kilobytes("VmRSS")
            var sampledPeak = baseline
            let (count, sum, labelsRight) = try await client.stream(StreamRow.self) { rows in
                var count = 0
                var sum = 0
                var labelsRight = true
                for try await row in rows {
                    count += 1
                    sum += row.n
                    if row.label != "row \(row.n)" || row.payload.utf8.count != 96 { labelsRight = false }
                    if count % 50_000 == 0 { sampledPeak = max(sampledPeak, try ProcessMemory.kilobytes("VmRSS")) }
                }
                return (count, sum, labelsRight)
            }
            let streamed = clock.now - started
            let peak = max(sampledPeak, try ProcessMemory.kilobytes("VmHWM"))
            #expect(count == total)
            #expect(sum == total * (total + 1) / 2)
            #expect(labelsRight)
            // Collected into an array, the same rows would take several hundred MB.
            let growthMB = Double(peak - baseline) / 1024
            print("stream of \(total) rows: baseline \(baseline / 1024) MB, peak \(peak / 1024) MB, growth \(String(format: "%.1f", growthMB)) MB; insert \(filled), stream \(streamed)")
            #expect(growthMB < 100, "peak RSS grew \(growthMB) MB over the baseline while streaming")
        }
    }

    @Test func streamsOrderFilterAndStopEarly() async throws {
        var options = TestDatabase.defaultOptions
        options.maximumConnections = 2
        try await TestDatabase.withFreshDatabase("stream_early_stop", options: options) { client in
            try await Self.migrate(client)
            try await Self.fill(client, count: 20_000)
            // Ordered and filtered, inside a transaction.
            try await client.transaction { tx in
                var previous = Int.max
                var count = 0
                for try await row in try await tx.stream(StreamRow.self, where: "n % 7 = \(0)", orderBy: "n DESC") {
                    #expect(row.n % 7 == 0 && row.n < previous)
                    previous = row.n
                    count += 1
                }
                #expect(count == 20_000 / 7)
                // The transaction goes on after the stream.
                #expect(try await tx.count(StreamRow.self) == 20_000)
                // Stopping early leaves the connection usable for the next statement.
                for try await _ in try await tx.stream(StreamRow.self, orderBy: "n") { break }
                #expect(try await tx.count(StreamRow.self, where: "n <= \(10)") == 10)
            }
            // Client streams stopped early end their transaction and give the connection back: more
            // of them than the pool has connections run one after the other without waiting.
            for round in 0..<5 {
                let firstTen = try await client.stream(StreamRow.self, orderBy: "n") { rows in
                    var taken: [Int] = []
                    for try await row in rows {
                        taken.append(row.n)
                        if taken.count == 10 { break }
                    }
                    return taken
                }
                #expect(firstTen == Array(1...10), "round \(round)")
            }
            // A bad ordering is refused before anything streams.
            await #expect(throws: PhylacteryError.self) {
                try await client.stream(StreamRow.self, orderBy: "n; DELETE FROM public.stream_rows") { rows in
                    for try await _ in rows {}
                }
            }
            #expect(try await client.count(StreamRow.self) == 20_000)
        }
    }
}
