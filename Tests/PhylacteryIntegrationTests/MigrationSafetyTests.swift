import Foundation
import Logging
@testable import Phylactery
import PhylacteryTestSupport
import PostgresNIO
import Testing

/// Migrations that cannot open gaps or fail half-way: indexes and unique constraints replaced with
/// the new one in place before the old one goes, failed builds that leave no invalid index, casts
/// that would fail refused at plan time.
@Suite struct MigrationSafetyTests {
    static let logger = Logger(label: "migration-safety-tests")
    static let title = MigrationTests.title
    static let rank = ModelSchema.column("rank", Int.self)

    /// More connections than the default four: the migration, a transaction holding an old
    /// snapshot, a watcher and the test's own queries run at once.
    static var roomy: PhylacteryClient.Configuration.Options {
        var options = TestDatabase.defaultOptions
        options.maximumConnections = 8
        return options
    }

    static func notes(indexes: [IndexDescription] = [], uniques: [UniqueConstraint] = []) -> ModelSchema {
        MigrationTests.notes([Self.title, Self.rank], indexes: indexes, uniques: uniques)
    }

    static func bool(_ client: PhylacteryClient, _ sql: PostgresQuery) async throws -> Bool {
        try await client.query(sql).collect().first?.decode(Bool.self) ?? false
    }

    /// A valid, ready, single-column, non-unique index on `public.notes (title)`.
    static let titleIndexedSQL = """
        SELECT EXISTS (
            SELECT 1 FROM pg_index i
            WHERE i.indrelid = 'public.notes'::regclass AND i.indisvalid AND i.indisready AND NOT i.indisunique
              AND i.indnkeyatts = 1
              AND i.indkey[0] = (SELECT a.attnum FROM pg_attribute a WHERE a.attrelid = 'public.notes'::regclass AND a.attname = 'title'))
        """

    /// A valid unique index on `public.notes` besides its primary key (a unique constraint's, or a bare one).
    static let uniqueHeldSQL = """
        SELECT EXISTS (
            SELECT 1 FROM pg_index i
            WHERE i.indrelid = 'public.notes'::regclass AND i.indisunique AND i.indisvalid AND NOT i.indisprimary)
        """

    /// Invalid indexes on `public.notes`, by name.
    static func invalidIndexes(_ client: PhylacteryClient) async throws -> [String] {
        try await client.query("""
            SELECT c.relname::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
            WHERE i.indrelid = 'public.notes'::regclass AND NOT i.indisvalid ORDER BY 1
            """).collect().map { try $0.decode(String.self) }
    }

    static func indexNames(_ client: PhylacteryClient) async throws -> [String] {
        try await client.query("SELECT indexname::text FROM pg_indexes WHERE schemaname = 'public' AND tablename = 'notes' ORDER BY 1")
            .collect().map { try $0.decode(String.self) }
    }

    /// A REPEATABLE READ transaction on its own connection that has taken its snapshot and stays
    /// open until ``release()``: `CREATE INDEX CONCURRENTLY` waits for every older snapshot to end.
    struct OldSnapshot {
        let releasing: AsyncStream<Void>.Continuation
        let holder: Task<Void, any Error>

        init(_ client: PhylacteryClient) async throws {
            let (held, holding) = AsyncStream<Void>.makeStream()
            let (release, releasing) = AsyncStream<Void>.makeStream()
            self.releasing = releasing
            self.holder = Task {
                try await client.withConnection { connection in
                    _ = try await connection.query("BEGIN ISOLATION LEVEL REPEATABLE READ", logger: MigrationSafetyTests.logger).collect()
                    _ = try await connection.query("SELECT 1", logger: MigrationSafetyTests.logger).collect()
                    holding.yield()
                    holding.finish()
                    for await _ in release {}
                    _ = try await connection.query("COMMIT", logger: MigrationSafetyTests.logger).collect()
                }
            }
            for await _ in held {}
        }

        /// Ends the transaction.
        func release() async throws {
            self.releasing.finish()
            try await self.holder.value
        }
    }

    /// What a watcher saw while a migration ran.
    actor Watch {
        var violations: [String] = []
        var rounds = 0
        var stopped = false
        var migrationEnded = false
        func record(_ violation: String) { self.violations.append(violation) }
        func round() { self.rounds += 1 }
        func stop() { self.stopped = true }
        func endMigration() { self.migrationEnded = true }
    }

    /// Runs `migrator.auto()`, telling `watch` when it ends (either way).
    static func migrate(_ migrator: Migrator, _ watch: Watch) async throws -> MigrationFile? {
        do {
            let file = try await migrator.auto()
            await watch.endMigration()
            return file
        } catch {
            await watch.endMigration()
            throw error
        }
    }

    /// Waits until a concurrent build of the migration waits for the held snapshot; false when the
    /// migration ended first.
    static func buildIsWaiting(_ client: PhylacteryClient, _ watch: Watch) async throws -> Bool {
        var waiting = false
        try await eventually("a concurrent build of the migration waits for the old snapshot, or the migration ends", timeout: .seconds(60)) {
            waiting = try await Self.bool(client, """
                SELECT EXISTS (SELECT 1 FROM pg_stat_progress_create_index
                               WHERE relid = 'public.notes'::regclass AND phase = 'waiting for old snapshots')
                """)
            if waiting { return true }
            return await watch.migrationEnded
        }
        return waiting
    }

    /// Until stopped, on its own connection, over and over: `notes (title)` must have a valid index,
    /// and a row repeating ('a', 1) must be refused as a unique violation.
    static func watch(_ client: PhylacteryClient, _ watch: Watch) async {
        do {
            try await client.withConnection { connection in
                while await !watch.stopped {
                    let indexed = try await connection.query(PostgresQuery(unsafeSQL: Self.titleIndexedSQL), logger: Self.logger)
                        .collect().first?.decode(Bool.self) ?? false
                    if !indexed { await watch.record("no valid index on notes (title)") }
                    let unique = try await connection.query(PostgresQuery(unsafeSQL: Self.uniqueHeldSQL), logger: Self.logger)
                        .collect().first?.decode(Bool.self) ?? false
                    if !unique { await watch.record("no valid unique index or constraint on notes") }
                    do {
                        _ = try await connection.query("INSERT INTO public.notes (id, title, rank) VALUES (gen_random_uuid(), 'a', 1)", logger: Self.logger).collect()
                        await watch.record("a second ('a', 1) was accepted")
                    } catch let error as PSQLError where error.serverInfo?[.sqlState] == "23505" {
                        // Refused: uniqueness held.
                    }
                    await watch.round()
                }
            }
        } catch {
            await watch.record("the watcher failed: \(error)")
        }
    }

    // MARK: - Replacing without a gap

    @Test func replacingAnIndexAndAUniqueConstraintNeverLeavesTheTableWithoutThem() async throws {
        let before = Self.notes(indexes: [IndexDescription(columns: ["title"])], uniques: [UniqueConstraint(name: "notes_identity", columns: ["title"])])
        // The same names, new definitions: an operator class, and a second column.
        let after = Self.notes(indexes: [IndexDescription(columns: ["title"], operatorClass: "text_pattern_ops")],
                               uniques: [UniqueConstraint(name: "notes_identity", columns: ["title", "rank"])])
        try await TestDatabase.withFreshDatabase("replace_no_gap", options: Self.roomy) { client in
            try await MigrationTests.migrator(client, [before]).apply(allowing: [])
            try await client.execute("INSERT INTO public.notes (id, title, rank) VALUES (gen_random_uuid(), 'a', 1), (gen_random_uuid(), 'b', 2)")
            let migrator = try MigrationTests.migrator(client, [after])
            let plan = try await migrator.plan()
            let summaries = plan.steps.map(\.summary)
            #expect(summaries.contains("replace index notes_title_idx on public.notes"), "\(summaries)")
            #expect(summaries.contains("replace unique constraint notes_identity on public.notes"), "\(summaries)")
            #expect(plan.isAdditive, "what `auto` applies at worker start: \(plan.hazards) \(plan.refusals)")

            // A transaction holding an old snapshot: every CREATE INDEX CONCURRENTLY waits for it to
            // end, which holds the migration at its first build for as long as the test wants.
            let snapshot = try await OldSnapshot(client)
            let watch = Watch()
            let watcher = Task { await Self.watch(client, watch) }
            let migration = Task { try await Self.migrate(migrator, watch) }

            let waiting = try await Self.buildIsWaiting(client, watch)
            #expect(waiting, "the migration ended before a concurrent build waited for the held snapshot")
            // Mid-migration, while the new index is being built: the old ones still serve and enforce.
            #expect(try await Self.bool(client, PostgresQuery(unsafeSQL: Self.titleIndexedSQL)), "no valid index on notes (title) during the build")
            #expect(try await Self.bool(client, PostgresQuery(unsafeSQL: Self.uniqueHeldSQL)), "no valid unique index on notes during the build")
            let duplicate = await #expect(throws: PhylacteryError.self) {
                try await client.execute("INSERT INTO public.notes (id, title, rank) VALUES (gen_random_uuid(), 'a', 1)")
            }
            #expect(duplicate?.sqlState == "23505", "a duplicate must be refused during the build: \(String(describing: duplicate))")

            try await snapshot.release()
            let outcome = await migration.result
            await watch.stop()
            await watcher.value
            let violations = await watch.violations
            #expect(violations.isEmpty, "\(Set(violations))")
            #expect(await watch.rounds > 0)
            #expect(try outcome.get() != nil)

            #expect(try await migrator.plan().isEmpty)
            #expect(try await Self.invalidIndexes(client).isEmpty)
            #expect(try await Self.indexNames(client) == ["notes_identity", "notes_pkey", "notes_title_idx"])
            let definition = try await client.query("SELECT pg_get_indexdef('public.notes_title_idx'::regclass)").collect().first?.decode(String.self)
            #expect(definition?.contains("text_pattern_ops") == true, "\(definition ?? "")")
            // The new uniqueness: ('a', 2) is new, ('a', 1) is not.
            try await client.execute("INSERT INTO public.notes (id, title, rank) VALUES (gen_random_uuid(), 'a', 2)")
            let again = await #expect(throws: PhylacteryError.self) {
                try await client.execute("INSERT INTO public.notes (id, title, rank) VALUES (gen_random_uuid(), 'a', 1)")
            }
            #expect(again?.sqlState == "23505")
            #expect(try await client.query("SELECT conname::text FROM pg_constraint WHERE conrelid = 'public.notes'::regclass AND contype = 'u'")
                .collect().map { try $0.decode(String.self) } == ["notes_identity"])
        }
    }

    @Test func replacementsAreUndoneTheSameWay() async throws {
        let before = Self.notes(indexes: [IndexDescription(columns: ["title"])], uniques: [UniqueConstraint(name: "notes_identity", columns: ["title"])])
        let after = Self.notes(indexes: [IndexDescription(columns: ["title"], operatorClass: "text_pattern_ops")],
                               uniques: [UniqueConstraint(name: "notes_identity", columns: ["title", "rank"])])
        try await TestDatabase.withFreshDatabase("replace_undo") { client in
            try await MigrationTests.migrator(client, [before]).apply(allowing: [])
            let plan = try await MigrationTests.migrator(client, [after]).plan()
            // Up and down: built concurrently under the temporary name, then swapped; nothing in the transaction.
            for statements in [plan.upStatements, plan.downStatements] {
                let replacing = statements.filter { !$0.sql.contains("phylactery_registry") }
                #expect(replacing.allSatisfy { !$0.transactional }, "\(replacing.map(\.sql))")
                #expect(replacing.filter { $0.sql.hasPrefix("CREATE") }.compactMap(\.buildsIndex).sorted() == [
                    "\"public\".\"notes_identity_phyl_new\"", "\"public\".\"notes_title_idx_phyl_new\"",
                ], "\(replacing.map(\.sql))")
                #expect(replacing.filter { $0.sql.hasPrefix("DO ") }.count == 2)
            }
        }
        try await MigrationTests.roundTrip("replace_down", before: [before], after: [after],
                                           expecting: ["replace index notes_title_idx on public.notes", "replace unique constraint notes_identity on public.notes"],
                                           seed: { try await $0.execute("INSERT INTO public.notes (id, title, rank) VALUES (gen_random_uuid(), 'a', 1)") })
    }

    @Test func aUniqueConstraintSwappedForOneOnOtherColumnsIsDroppedOnlyOnceTheNewOneHolds() async throws {
        // Generated names follow the columns, so here the old constraint goes and a new one comes.
        let before = Self.notes(uniques: [UniqueConstraint(columns: ["title"])])
        let after = Self.notes(uniques: [UniqueConstraint(columns: ["title", "rank"])])
        try await TestDatabase.withFreshDatabase("swap_unique", options: Self.roomy) { client in
            try await MigrationTests.migrator(client, [before]).apply(allowing: [])
            try await client.execute("INSERT INTO public.notes (id, title, rank) VALUES (gen_random_uuid(), 'a', 1)")
            let migrator = try MigrationTests.migrator(client, [after])
            let plan = try await migrator.plan()
            let summaries = plan.steps.map(\.summary)
            let add = try #require(summaries.firstIndex(of: "add unique constraint notes_title_rank_key on public.notes"), "\(summaries)")
            let drop = try #require(summaries.firstIndex(of: "drop unique constraint notes_title_key on public.notes"), "\(summaries)")
            #expect(add < drop)
            #expect(plan.upStatements.allSatisfy { !$0.transactional || $0.sql.contains("phylactery_registry") },
                    "nothing of it needs the migration's transaction: \(plan.upStatements.map(\.sql))")

            let snapshot = try await OldSnapshot(client)
            let watch = Watch()
            let migration = Task { try await Self.migrate(migrator, watch) }
            #expect(try await Self.buildIsWaiting(client, watch), "the migration ended before its build waited for the held snapshot")
            #expect(try await Self.bool(client, PostgresQuery(unsafeSQL: Self.uniqueHeldSQL)), "no valid unique index on notes during the build")
            let duplicate = await #expect(throws: PhylacteryError.self) {
                try await client.execute("INSERT INTO public.notes (id, title, rank) VALUES (gen_random_uuid(), 'a', 1)")
            }
            #expect(duplicate?.sqlState == "23505", "\(String(describing: duplicate))")
            try await snapshot.release()
            _ = try await migration.value
            #expect(try await migrator.plan().isEmpty)
            try await client.execute("INSERT INTO public.notes (id, title, rank) VALUES (gen_random_uuid(), 'a', 2)")
        }
    }

    // MARK: - Failed builds

    @Test func aReplacementWhoseBuildFailsLeavesTheOldIndexAndNoInvalidOne() async throws {
        let before = Self.notes(indexes: [IndexDescription(name: "notes_rank_lookup", columns: ["rank"])])
        let after = Self.notes(indexes: [IndexDescription(name: "notes_rank_lookup", columns: ["rank"], isUnique: true)])
        try await TestDatabase.withFreshDatabase("replace_fails", options: Self.roomy) { client in
            try await MigrationTests.migrator(client, [before]).apply(allowing: [])
            // Two rows with one rank: the new unique index cannot be built.
            try await client.execute("INSERT INTO public.notes (id, title, rank) VALUES (gen_random_uuid(), 'a', 1), (gen_random_uuid(), 'b', 1)")
            let migrator = try MigrationTests.migrator(client, [after])
            let failed = await #expect(throws: PhylacteryError.self) { try await migrator.auto() }
            #expect(failed?.code == .migrationFailed, "\(String(describing: failed))")
            #expect(failed?.message.contains("notes_rank_lookup") == true, "\(String(describing: failed))")

            // The old index is there, valid and as it was; the half-built one is gone.
            #expect(try await Self.invalidIndexes(client).isEmpty)
            #expect(try await Self.indexNames(client) == ["notes_pkey", "notes_rank_lookup"])
            #expect(try await Self.bool(client, """
                SELECT i.indisvalid AND NOT i.indisunique FROM pg_index i WHERE i.indexrelid = 'public.notes_rank_lookup'::regclass
                """))
            // Nothing was left half-way: the same replacement is what remains to do.
            let plan = try await migrator.plan()
            #expect(plan.steps.map(\.summary) == ["replace index notes_rank_lookup on public.notes"], "\(plan.steps.map(\.summary))")

            try await client.execute("UPDATE public.notes SET rank = 2 WHERE title = 'b'")
            _ = try await migrator.auto()
            #expect(try await migrator.plan().isEmpty)
            #expect(try await Self.bool(client, "SELECT i.indisunique FROM pg_index i WHERE i.indexrelid = 'public.notes_rank_lookup'::regclass"))
        }

        let uniqueBefore = Self.notes(uniques: [UniqueConstraint(name: "notes_identity", columns: ["title"])])
        let uniqueAfter = Self.notes(uniques: [UniqueConstraint(name: "notes_identity", columns: ["rank"])])
        try await TestDatabase.withFreshDatabase("replace_unique_fails", options: Self.roomy) { client in
            try await MigrationTests.migrator(client, [uniqueBefore]).apply(allowing: [])
            try await client.execute("INSERT INTO public.notes (id, title, rank) VALUES (gen_random_uuid(), 'a', 1), (gen_random_uuid(), 'b', 1)")
            let migrator = try MigrationTests.migrator(client, [uniqueAfter])
            let failed = await #expect(throws: PhylacteryError.self) { try await migrator.auto() }
            #expect(failed?.code == .migrationFailed, "\(String(describing: failed))")
            #expect(try await Self.invalidIndexes(client).isEmpty)
            // The old constraint still holds.
            let duplicate = await #expect(throws: PhylacteryError.self) {
                try await client.execute("INSERT INTO public.notes (id, title, rank) VALUES (gen_random_uuid(), 'a', 5)")
            }
            #expect(duplicate?.sqlState == "23505")
            #expect(try await Self.indexNames(client) == ["notes_identity", "notes_pkey"])
        }
    }

    @Test func anAddedIndexWhoseBuildFailsLeavesNoInvalidIndex() async throws {
        try await TestDatabase.withFreshDatabase("add_fails") { client in
            try await MigrationTests.migrator(client, [Self.notes()]).apply(allowing: [])
            try await client.execute("INSERT INTO public.notes (id, title, rank) VALUES (gen_random_uuid(), 'a', 1), (gen_random_uuid(), 'b', 1)")
            let migrator = try MigrationTests.migrator(client, [Self.notes(indexes: [IndexDescription(name: "notes_rank_once", columns: ["rank"], isUnique: true)])])
            let failed = await #expect(throws: PhylacteryError.self) { try await migrator.auto() }
            #expect(failed?.code == .migrationFailed)
            #expect(try await Self.invalidIndexes(client).isEmpty)
            #expect(try await Self.indexNames(client) == ["notes_pkey"])
            #expect(try await migrator.plan().steps.map(\.summary) == ["add index notes_rank_once on public.notes"])
        }
    }

    @Test func aReplacementBuiltByAnInterruptedRunIsSwappedInOrDropped() async throws {
        let before = Self.notes(indexes: [IndexDescription(name: "notes_lookup", columns: ["title"])])
        let after = Self.notes(indexes: [IndexDescription(name: "notes_lookup", columns: ["title", "rank"])])
        let replacement = DDL.replacementName("notes_lookup")
        #expect(replacement == "notes_lookup_phyl_new")
        try await TestDatabase.withFreshDatabase("replace_leftover") { client in
            try await MigrationTests.migrator(client, [before]).apply(allowing: [])
            let migrator = try MigrationTests.migrator(client, [after])

            // A run that built the replacement and stopped before the swap: only the swap is left.
            try await client.execute(PostgresQuery(unsafeSQL: "CREATE INDEX \(replacement) ON public.notes (title, rank)"))
            var plan = try await migrator.plan()
            #expect(plan.notices.isEmpty, "the replacement is ours, not an unknown index: \(plan.notices)")
            #expect(plan.steps.map(\.summary).filter { !$0.hasPrefix("record ownership") } == ["replace index notes_lookup on public.notes"])
            #expect(!plan.upStatements.contains { $0.sql.hasPrefix("CREATE") }, "\(plan.upStatements.map(\.sql))")

            // One built for another definition (or left invalid) is dropped and built again.
            try await client.execute(PostgresQuery(unsafeSQL: "DROP INDEX public.\(replacement)"))
            try await client.execute(PostgresQuery(unsafeSQL: "CREATE INDEX \(replacement) ON public.notes (rank)"))
            plan = try await migrator.plan()
            let statements = plan.upStatements.map(\.sql)
            #expect(statements.first { $0.hasPrefix("DROP INDEX CONCURRENTLY IF EXISTS \"public\".\"\(replacement)\"") } != nil, "\(statements)")
            #expect(statements.first { $0.hasPrefix("CREATE INDEX CONCURRENTLY \"\(replacement)\"") } != nil, "\(statements)")
            _ = try await migrator.auto()
            #expect(try await migrator.plan().isEmpty)
            #expect(try await Self.indexNames(client) == ["notes_lookup", "notes_pkey"])

            // One no replacement needs any more is dropped.
            try await client.execute(PostgresQuery(unsafeSQL: "CREATE INDEX \(replacement) ON public.notes (rank)"))
            plan = try await migrator.plan()
            #expect(plan.steps.map(\.summary) == ["drop leftover index \(replacement) on public.notes (built to replace notes_lookup)"])
            _ = try await migrator.auto()
            #expect(try await Self.indexNames(client) == ["notes_lookup", "notes_pkey"])
        }
    }

    // MARK: - Partitioned tables

    static func events(unique: [UniqueConstraint], indexes: [IndexDescription]) -> ModelSchema {
        var schema = ModelSchema(modelName: "Event", table: "events", columns: [
            ModelSchema.column("at", Int64.self), ModelSchema.column("code", String.self), ModelSchema.column("kind", String.self),
        ], indexes: indexes, uniqueConstraints: unique)
        schema.partitioning = .range("at")
        return schema
    }

    @Test func replacementsOnAPartitionedTableHappenInTheTransaction() async throws {
        let before = Self.events(unique: [UniqueConstraint(name: "events_identity", columns: ["kind", "code", "at"])],
                                 indexes: [IndexDescription(name: "events_lookup", columns: ["code"])])
        let after = Self.events(unique: [UniqueConstraint(name: "events_identity", columns: ["code", "at"])],
                                indexes: [IndexDescription(name: "events_lookup", columns: ["code", "kind"])])
        let seed: @Sendable (PhylacteryClient) async throws -> Void = { client in
            try await client.execute("CREATE TABLE public.events_all PARTITION OF public.events FOR VALUES FROM (MINVALUE) TO (MAXVALUE)")
            try await client.execute("INSERT INTO public.events (id, at, code, kind) VALUES (gen_random_uuid(), 1, 'a', 'x'), (gen_random_uuid(), 2, 'b', 'x')")
        }
        try await TestDatabase.withFreshDatabase("partitioned_replace") { client in
            try await MigrationTests.migrator(client, [before]).apply(allowing: [])
            try await seed(client)
            let migrator = try MigrationTests.migrator(client, [after])
            let plan = try await migrator.plan()
            let summaries = plan.steps.map(\.summary)
            #expect(summaries.contains("replace index events_lookup on public.events"), "\(summaries)")
            #expect(summaries.contains("replace unique constraint events_identity on public.events"), "\(summaries)")
            // PostgreSQL has no CONCURRENTLY for a partitioned table: built, dropped and renamed in one transaction.
            #expect(plan.upStatements.allSatisfy { $0.transactional }, "\(plan.upStatements.filter { !$0.transactional }.map(\.sql))")
            _ = try await migrator.auto()
            #expect(try await migrator.plan().isEmpty)
            let duplicate = await #expect(throws: PhylacteryError.self) {
                try await client.execute("INSERT INTO public.events (id, at, code, kind) VALUES (gen_random_uuid(), 1, 'a', 'y')")
            }
            #expect(duplicate?.sqlState == "23505")

            // A replacement that cannot be built rolls back whole: the old index stays.
            let failing = Self.events(unique: [UniqueConstraint(name: "events_identity", columns: ["code", "at"])],
                                      indexes: [IndexDescription(name: "events_lookup", columns: ["kind", "at"], isUnique: true)])
            try await client.execute("INSERT INTO public.events (id, at, code, kind) VALUES (gen_random_uuid(), 1, 'c', 'x')")
            let failed = await #expect(throws: PhylacteryError.self) { try await MigrationTests.migrator(client, [failing]).auto() }
            #expect(failed?.code == .migrationFailed)
            #expect(try await migrator.plan().isEmpty, "the rolled-back replacement must leave the database as it was")
        }
        try await MigrationTests.roundTrip("partitioned_replace_down", before: [before], after: [after],
                                           expecting: ["replace index events_lookup on public.events", "replace unique constraint events_identity on public.events"],
                                           seed: seed)
    }

    // MARK: - Type changes

    @Test func aTypeChangeWhoseCastFailsOnStoredRowsIsRefusedAtPlanTime() async throws {
        let before = MigrationTests.notes([ModelSchema.column("embedding", String?.self, type: .vector(384)), ModelSchema.column("code", String.self)])
        let after = MigrationTests.notes([ModelSchema.column("embedding", String?.self, type: .vector(768)), ModelSchema.column("code", Int.self)])
        try await TestDatabase.withFreshDatabase("cast_refused") { client in
            try await MigrationTests.migrator(client, [before]).apply(allowing: [])
            try await client.execute("""
                INSERT INTO public.notes (id, embedding, code) VALUES
                    (gen_random_uuid(), array_fill(0.5, ARRAY[384])::vector, '1'),
                    (gen_random_uuid(), NULL, 'x'),
                    (gen_random_uuid(), NULL, 'y')
                """)
            let migrator = try MigrationTests.migrator(client, [after])
            let plan = try await migrator.plan()
            #expect(plan.refusals.contains(
                "cannot change the type of public.notes.embedding from vector(384) to vector(768): 1 stored row fails the cast: expected 768 dimensions, not 384; change or remove those values first, or keep the old type"),
                "\(plan.refusals)")
            #expect(plan.refusals.contains(
                "cannot change the type of public.notes.code from text to bigint: 2 stored rows fail the cast: invalid input syntax for type bigint: \"x\"; change or remove those values first, or keep the old type"),
                "\(plan.refusals)")
            #expect(!plan.steps.contains { $0.summary.hasPrefix("change type") }, "a failing step is not offered: \(plan.steps.map(\.summary))")
            #expect(plan.catalogQueries == CatalogReader.queryCount + 1, "probes are not catalog queries")

            // Refused before anything runs, with every consent, and again on the next plan.
            let refused = await #expect(throws: PhylacteryError.self) { try await migrator.apply(allowing: Set(Hazard.allCases)) }
            #expect(refused?.code == .migrationRefused)
            #expect(refused?.message.contains("expected 768 dimensions, not 384") == true, "\(String(describing: refused))")
            #expect(try await migrator.plan().refusals == plan.refusals)
            #expect(try await client.query("SELECT count(*) FROM public.notes").collect().first?.decode(Int64.self) == 3)

            // Once the values cast, the changes are offered and apply.
            try await client.execute("DELETE FROM public.notes WHERE embedding IS NOT NULL")
            try await client.execute("UPDATE public.notes SET code = '7' WHERE code IN ('x', 'y')")
            let fixed = try await migrator.plan()
            #expect(fixed.refusals.isEmpty, "\(fixed.refusals)")
            #expect(fixed.steps.map(\.summary).contains("change type of public.notes.embedding from vector(384) to vector(768)"))
            #expect(fixed.steps.map(\.summary).contains("change type of public.notes.code from text to bigint"))
            try await migrator.apply(allowing: Set(Hazard.allCases))
            #expect(try await migrator.plan().isEmpty)
        }
    }

    @Test func aCastNoValueCanTakeIsRefusedEvenOnAnEmptyTable() async throws {
        let before = MigrationTests.notes([ModelSchema.column("ref", UUID?.self)])
        let after = MigrationTests.notes([ModelSchema.column("ref", Int32?.self)])
        try await TestDatabase.withFreshDatabase("cast_impossible") { client in
            try await MigrationTests.migrator(client, [before]).apply(allowing: [])
            let plan = try await MigrationTests.migrator(client, [after]).plan()
            #expect(plan.refusals == ["cannot change the type of public.notes.ref from uuid to integer: the cast fails: cannot cast type uuid to integer; change or remove those values first, or keep the old type"],
                    "\(plan.refusals)")
        }
    }

    // MARK: - Ledger and registry

    /// An extension whose version and model name hold every character a spliced literal gets wrong.
    struct Garden: PhylacteryExtension {
        let slug = "garden"
        let version = "2.0 'beta' C:\\plants\\ — ü ✓ \\"
        func initialize(_ context: ExtensionContext) throws {
            context.registerSchema(ModelSchema(modelName: "Plant's \"kind\" \\ 日本", table: "garden_plants", columns: [MigrationTests.title]))
        }
    }

    @Test(.disabled(if: TestDatabase.throughTransactionPooler, "needs new server sessions to start with a database setting; a transaction pooler reuses old ones")) func theLedgerAndTheRegistryStoreAnyTextExactly() async throws {
        let message = "Ada's \"first\" C:\\temp\\new — naïve café ✓ 日本語 \\"
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("phyl-binds-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await TestDatabase.withFreshDatabase("ledger_binds") { setup in
            // Where backslashes in string literals are escapes (a setting any database may have), a
            // spliced literal changes the text or breaks the statement; a bind never does.
            try await setup.execute(PostgresQuery(unsafeSQL: "ALTER DATABASE \(SQLIdentifier.quote(setup.configuration.url.database)) SET standard_conforming_strings = off"))
            try await PhylacteryClient.withClient(configuration: setup.configuration) { client in
                let setting = try await client.query("SELECT current_setting('standard_conforming_strings')").collect().first?.decode(String.self)
                #expect(setting == "off")
                let garden = Garden()
                let migrator = Migrator(client: client, federation: try Federation(extensions: [garden]), options: .init(directory: directory))

                // Generated as a file, applied from it: the registry's values travel as the file's parameters.
                let (file, path) = try #require(try await migrator.generate(message: message))
                let text = try String(contentsOfFile: path, encoding: .utf8)
                #expect(try MigrationFile(parsing: text) == file)
                #expect(text.contains(MigrationFile.parametersPrefix), "\(text)")
                try await migrator.up()
                let history = try await migrator.history()
                #expect(history.map(\.message) == [message])
                #expect(history.first?.text == text)
                #expect(history.first?.checksum == MigrationFile.checksum(of: text))
                let owners = try await migrator.status().owners
                #expect(owners.map(\.ownerVersion) == [garden.version], "\(owners)")
                #expect(owners.map(\.model) == ["Plant's \"kind\" \\ 日本"], "\(owners)")
                #expect(try await migrator.plan().isEmpty)

                // `auto` writes the ledger row itself.
                let extended = Migrator(client: client, federation: try Federation(extensions: [garden, MigrationTests.Plugin(slug: "pond", schemas: [
                    ModelSchema(modelName: "Fish", table: "pond_fish", columns: [MigrationTests.title]),
                ])]))
                _ = try #require(try await extended.auto(message: message + " (auto)"))
                #expect(try await extended.history().map(\.message) == [message, message + " (auto)"])

                // Undoing deletes the ledger rows by their (bound) revisions and restores the registry.
                try await extended.down(1, allowing: Set(Hazard.allCases))
                #expect(try await extended.history().map(\.message) == [message])
                #expect(try await migrator.status().owners.map(\.ownerVersion) == [garden.version])
            }
        }
    }
}
