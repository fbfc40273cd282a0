import Foundation
import Phylactery
import PhylacteryTestSupport
import PostgresNIO
import Testing

/// `traces show`, `facts history` and `memory history` of very long records print one bounded page and
/// say how to get the next; the library reads a trace a page at a time.
@Suite struct PagingCLITests {
    static func migrate(_ client: PhylacteryClient) async throws {
        _ = try await Migrator(client: client, federation: try Federation(core: Federation.coreModels)).auto(message: "paging")
    }

    @Test func aTraceOfAHundredThousandSpansIsReadAndShownAPageAtATime() async throws {
        try await TestDatabase.withFreshDatabase("cli_paging_trace") { client in
            try await Self.migrate(client)
            let now = Date()
            try await client.traces.createPartitions(from: now, days: 2)
            let traceID = TraceID(uuid: UUID())
            let base = Int64(now.timeIntervalSince1970 * 1_000_000)
            // 100,000 spans: span i's parent is i / 2 (a tree 17 deep), each starting 1 µs after the last;
            // every 1000th failed.
            try await client.execute("""
                INSERT INTO traces.spans (id, created_at, updated_at, trace_id, span_id, parent_span_id, name, kind,
                                          start_us, end_us, duration_us, status, service)
                SELECT gen_random_uuid(), now(), now(), \(traceID.uuid), i, CASE WHEN i = 1 THEN NULL ELSE i / 2 END,
                       'span ' || i, 'internal', \(base) + i, \(base) + i + 100, 100,
                       CASE WHEN i % 1000 = 0 THEN 'error' ELSE 'ok' END, 'bulk'
                FROM generate_series(1::int8, 100000::int8) AS i
                """)

            // The library: a bounded page by default, any page on request.
            let first = try await client.traces.trace(traceID)
            #expect(first.spans.count == TraceStore.defaultSpanLimit)
            #expect(first.totalSpanCount == 100_000 && first.remainingSpanCount == 90_000 && first.isPartial)
            #expect(first.roots.map(\.name) == ["span 1"])
            let last = try await client.traces.trace(traceID, offset: 99_990, limit: 50)
            #expect(last.spans.map(\.name) == (99_991...100_000).map { "span \($0)" })
            #expect(last.remainingSpanCount == 0)
            await #expect(throws: PhylacteryError.self) { try await client.traces.trace(traceID, offset: -1) }

            let environment = ["PHYLACTERY_DATABASE_URL": client.configuration.url.unredacted]
            let show = try PhylacteryProcess.run(["traces", "show", traceID.description], environment: environment)
            #expect(show.status == 0)
            let lines = show.output.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
            #expect(lines.count == 2 + 1000 + 1, "\(lines.count) lines")
            #expect(lines.first?.hasPrefix("trace \(traceID) · span 1 · 100000 spans (1–1000 shown) · ") == true, "\(lines.first ?? "")")
            #expect(lines.first?.hasSuffix(" · 1 error shown") == true, "\(lines.first ?? "")")
            #expect(lines.last == "… 99000 more spans, use --offset 1000 --limit 1000")
            #expect(lines[2].hasSuffix("|  span 1") && lines[3].hasSuffix("|  ├─ span 2"), "\(lines[2...3])")

            let tail = try PhylacteryProcess.run(["traces", "show", traceID.description, "--offset", "99995", "--limit", "10"], environment: environment)
            let tailLines = tail.output.split(separator: "\n").map(String.init)
            #expect(tail.status == 0)
            #expect(tailLines.first?.contains("100000 spans (99996–100000 shown)") == true, "\(tail.output)")
            #expect(tailLines.count == 2 + 5 && !tail.output.contains("more span"), "\(tail.output)")
            #expect(tailLines.last?.hasSuffix("|  span 100000  ✗ error") == true, "\(tail.output)")
        }
    }

    @Test func longFactAndStatusHistoriesArePrintedAPageAtATime() async throws {
        try await TestDatabase.withFreshDatabase("cli_paging_history") { client in
            try await Self.migrate(client)
            let space = EmbeddingSpace(model: "m", fingerprint: "f", dimensions: 3)
            let memory = try await client.transaction { tx in
                try await tx.facts.put("ops", key: "counter", value: 1, source: "test")
                for version in 2...1200 {
                    try await tx.facts.supersede("ops", key: "counter", value: version, source: "test")
                }
                let memory = try await tx.memory.remember(Memory(content: "flip-flop", embedding: try Vector([1, 0, 0]), space: space, owner: "core", source: "test"))
                for round in 0..<1050 {
                    if round % 2 == 0 { _ = try await tx.memory.consecrate(memory.id, by: "op\(round)") } else { _ = try await tx.memory.reject(memory.id, by: "op\(round)") }
                }
                return memory
            }
            // The library pages too.
            let page = try await client.transaction { tx in try await tx.facts.history("ops", key: "counter", offset: 1195, limit: 10) }
            #expect(page.map(\.version) == Array(1196...1200))
            let changes = try await client.transaction { tx in
                (try await tx.memory.statusHistory(of: memory.id, offset: 1040, limit: 100), try await tx.memory.statusChangeCount(of: memory.id))
            }
            #expect(changes.0.map(\.changedBy) == (1040..<1050).map { "op\($0)" } && changes.1 == 1050)

            let environment = ["PHYLACTERY_DATABASE_URL": client.configuration.url.unredacted]
            func run(_ arguments: String...) throws -> [String] {
                let run = try PhylacteryProcess.run(arguments, environment: environment)
                #expect(run.status == 0, "\(run.output)")
                return run.output.split(separator: "\n").map(String.init)
            }
            let facts = try run("facts", "history", "ops", "counter")
            #expect(facts.count == 1001)
            #expect(facts[0].hasPrefix("ops/counter v1 = 1  ") && facts[999].hasPrefix("ops/counter v1000 = 1000  "), "\(facts[0]) \(facts[999])")
            #expect(facts[1000] == "… 200 more versions, use --offset 1000 --limit 1000")
            let factsTail = try run("facts", "history", "ops", "counter", "--offset", "1195", "--limit", "3")
            #expect(factsTail.prefix(3).map { String($0.prefix(17)) } == ["ops/counter v1196", "ops/counter v1197", "ops/counter v1198"]
                    && factsTail.count == 4 && factsTail[3] == "… 2 more versions, use --offset 1198 --limit 3", "\(factsTail)")
            #expect(try run("facts", "history", "ops", "counter", "--offset", "1000").count == 200)

            let statuses = try run("memory", "history", memory.id.uuidString)
            #expect(statuses.count == 1000 + 2)
            #expect(statuses[0].hasSuffix("speculative → consecrated  by op0") && statuses[999].hasSuffix("consecrated → rejected  by op999"), "\(statuses[0]) \(statuses[999])")
            #expect(statuses[1000] == "… 50 more status changes, use --offset 1000 --limit 1000")
            #expect(statuses[1001] == "\(memory.id) is rejected; 1050 status changes")
            let statusTail = try run("memory", "history", memory.id.uuidString, "--offset", "1048")
            #expect(statusTail.count == 3 && statusTail[1].hasSuffix("consecrated → rejected  by op1049"), "\(statusTail)")
        }
    }
}
