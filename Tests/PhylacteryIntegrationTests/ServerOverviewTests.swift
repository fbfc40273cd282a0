import Foundation
import Phylactery
import PhylacteryTestSupport
import PostgresNIO
import Testing

/// The server overview behind the console's first page, read from a real server's statistics.
@Suite struct ServerOverviewTests {
    @Test func theOverviewReadsVersionsSizesConnectionsVacuumAndTheLastHour() async throws {
        try await TestDatabase.withFreshDatabase("server_overview") { client in
            // Before any migration: no ledger, no queue, no spans; the series is there, all zeros.
            let bare = try await client.serverOverview(activityMinutes: 5)
            #expect(bare.migrationHead == nil)
            #expect(bare.activity.count == 5 && bare.activity.allSatisfy { $0.jobsCompleted == 0 && $0.spansRecorded == 0 })

            let migrator = Migrator(client: client, federation: try Federation(core: Federation.coreModels))
            let applied = try #require(try await migrator.auto(message: "overview"))
            try await client.traces.createPartitions(from: Date().addingTimeInterval(-7200), days: 2)

            // Three jobs completed two minutes ago, one now, one failed (not counted), one long ago.
            try await client.execute("""
                INSERT INTO queue.jobs (id, created_at, updated_at, kind, args, state, finalized_at)
                SELECT gen_random_uuid(), now(), now(), 'mail', '{}'::jsonb, s, f FROM (VALUES
                    ('completed', now() - interval '2 minutes'), ('completed', now() - interval '2 minutes'),
                    ('completed', now() - interval '2 minutes'), ('completed', now()), ('discarded', now()),
                    ('completed', now() - interval '3 hours')) AS v(s, f)
                """)
            // Spans: five in this minute, two ten minutes ago, one two hours ago (outside the hour).
            let now = Int64(Date().timeIntervalSince1970 * 1_000_000)
            let starts = [Int64](repeating: now - 1_000, count: 5) + [now - 600_000_000, now - 600_000_000, now - 7_200_000_000]
            try await client.insert(contentsOf: starts.enumerated().map { index, start in
                SpanRecord(traceID: TraceID(high: 5, low: UInt64(index + 1)), spanID: SpanID(UInt64(index + 1)), parentSpanID: nil, name: "s",
                           startMicroseconds: start, endMicroseconds: start + 10, service: "tests")
            })

            let overview = try await client.serverOverview(busiestTables: 3)
            #expect(overview.serverVersionNumber >= 150_000 && !overview.serverVersion.isEmpty)
            #expect(overview.pgvectorVersion != nil)
            let database = try await client.query("SELECT current_database()::text").collect().first!.decode(String.self)
            #expect(overview.databaseBytes > 0 && overview.database == database)
            let schemas = Set(overview.chambers.map(\.schema))
            #expect(schemas.isSuperset(of: ["queue", "traces", "vectors", "verbatim", "public"]), "\(schemas)")
            let traces = try #require(overview.chambers.first { $0.schema == "traces" })
            #expect(traces.bytes > 0 && traces.tables >= 1)
            #expect(overview.chambers.map(\.bytes) == overview.chambers.map(\.bytes).sorted(by: >))
            #expect(overview.connections.total >= 1 && overview.connections.thisDatabase >= 1 && overview.connections.active >= 1)
            #expect(overview.connections.maximum >= overview.connections.total)
            #expect(["off", "on", "always"].contains(overview.walArchiving.mode))
            #expect(overview.busiestTables.count <= 3)
            #expect(overview.busiestTables.allSatisfy { $0.vacuumThreshold >= 50 && (0...1).contains($0.deadRatio) })
            #expect(overview.migrationHead == applied.revision)

            #expect(overview.activity.count == 60)
            let minutes = overview.activity.map(\.minute)
            #expect(minutes == minutes.sorted() && Set(minutes).count == 60)
            #expect(zip(minutes, minutes.dropFirst()).allSatisfy { $1.timeIntervalSince($0) == 60 })
            #expect(overview.activity.map(\.jobsCompleted).reduce(0, +) == 4)
            #expect(overview.activity.map(\.spansRecorded).reduce(0, +) == 7)
            func minute(of microseconds: Int64) -> Date { Date(timeIntervalSince1970: TimeInterval(microseconds / 60_000_000 * 60)) }
            #expect(overview.activity.first { $0.minute == minute(of: now - 1_000) }?.spansRecorded == 5)
            #expect(overview.activity.first { $0.minute == minute(of: now - 600_000_000) }?.spansRecorded == 2)

            // The JSON the console's API hands out.
            let json = try JSONEncoder().encode(overview)
            #expect(try JSONDecoder().decode(ServerOverview.self, from: json) == overview)

            await #expect(throws: PhylacteryError.self) { try await client.serverOverview(busiestTables: 101) }
            await #expect(throws: PhylacteryError.self) { try await client.serverOverview(activityMinutes: 0) }
        }
    }

    @Test func aTableWithManyDeadRowsShowsThatAutovacuumIsBehind() async throws {
        try await TestDatabase.withFreshDatabase("server_overview_vacuum") { client in
            // Autovacuum off for this table, so the dead rows stay where the statistics can see them.
            try await client.execute("CREATE TABLE public.churn (id int PRIMARY KEY, n int) WITH (autovacuum_enabled = false, autovacuum_vacuum_threshold = 10, autovacuum_vacuum_scale_factor = 0)")
            try await client.execute("INSERT INTO public.churn SELECT g, 0 FROM generate_series(1, 2000) g")
            try await client.execute("UPDATE public.churn SET n = n + 1")
            try await client.execute("ANALYZE public.churn")
            // Table statistics reach the shared view when the writing backend reports them (within a
            // second of going idle): wait for them with a deadline.
            var churn: ServerOverview.TableVacuum?
            try await eventually("the churn table's dead rows are reported", timeout: .seconds(30)) {
                churn = try await client.serverOverview(busiestTables: 20).busiestTables.first { $0.schema == "public" && $0.table == "churn" }
                return (churn?.deadTuples ?? 0) >= 1_000
            }
            let table = try #require(churn)
            #expect(table.vacuumThreshold == 10, "the table's own threshold with scale factor 0")
            #expect(!table.autovacuumEnabled && !table.keepsUp)
            #expect(table.deadRatio > 0.3 && table.modifications >= 4_000)
            #expect(table.lastAutovacuum == nil)
        }
    }
}
