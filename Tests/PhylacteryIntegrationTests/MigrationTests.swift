import Foundation
@testable import Phylactery
import PhylacteryTestSupport
import PostgresNIO
import Testing

/// Each kind of difference: plan, apply, plan again is empty, `down` restores the catalog exactly.
@Suite struct MigrationTests {
    // MARK: - Fixtures

    static func notes(_ columns: [ColumnDescription], table: String = "notes", renamedFrom: [String] = [], indexes: [IndexDescription] = [],
                      uniques: [UniqueConstraint] = [], checks: [CheckConstraint] = [], storage: [String: String] = [:], chamber: Chamber = .public) -> ModelSchema {
        ModelSchema(modelName: "Note", table: table, chamber: chamber, renamedFrom: renamedFrom, columns: columns, indexes: indexes,
                    uniqueConstraints: uniques, checks: checks, storage: storage)
    }

    static let title = ModelSchema.column("title", String.self)
    static let body = ModelSchema.column("body", [String: Int].self)

    static func federation(_ schemas: [ModelSchema]) throws -> Federation {
        try Federation(core: schemas.map(ModelRegistration.init(schema:)))
    }

    static func migrator(_ client: PhylacteryClient, _ schemas: [ModelSchema], directory: String? = nil) throws -> Migrator {
        try Migrator(client: client, federation: federation(schemas), options: .init(directory: directory))
    }

    /// The chambers' catalog, with columns in name order (a column dropped and re-added comes back
    /// last; its position is the one thing `down` cannot restore) and the registry rows.
    static func snapshot(_ client: PhylacteryClient) async throws -> (SchemaShape, [OwnershipRecord]) {
        try await client.withConnection { connection in
            var (shape, _) = try await CatalogReader.read(schemas: Chamber.allCases.map(\.schema), on: connection, logger: client.logger)
            shape.tables = shape.tables.map { table in
                var table = table
                table.columns.sort { $0.name < $1.name }
                table.estimatedRows = 0
                return table
            }
            let registry = try await MigrationBookkeeping.readRegistry(on: connection, logger: client.logger)
            return (shape, registry)
        }
    }

    /// Applies `before`, runs `seed`, then checks `after`: the plan has `expecting`, applies, re-plans empty, and `down` restores.
    static func roundTrip(
        _ label: String, before: [ModelSchema], after: [ModelSchema], expecting summaries: [String],
        consent: Set<Hazard> = [], seed: (@Sendable (PhylacteryClient) async throws -> Void)? = nil
    ) async throws {
        try await TestDatabase.withFreshDatabase(label) { client in
            let first = try migrator(client, before)
            try await first.apply(message: "before", allowing: Set(Hazard.allCases))
            let again = try await first.plan()
            #expect(again.isEmpty, "plan after applying 'before': \(again.steps.map(\.summary)) \(again.refusals)")
            if let seed { try await seed(client) }
            let (catalogBefore, registryBefore) = try await snapshot(client)

            let second = try migrator(client, after)
            let plan = try await second.plan()
            let planned = plan.steps.map(\.summary)
            for summary in summaries {
                #expect(planned.contains(summary), "expected step '\(summary)' in \(planned)")
            }
            #expect(plan.refusals.isEmpty, "\(plan.refusals)")
            try await second.apply(message: "after", allowing: consent)
            let replanned = try await second.plan()
            #expect(replanned.isEmpty, "plan after applying: \(replanned.steps.map(\.summary)) \(replanned.refusals)")

            try await second.down(1, allowing: Set(Hazard.allCases))
            let (catalogAfter, registryAfter) = try await snapshot(client)
            #expect(catalogAfter.tables == catalogBefore.tables, "down did not restore the catalog:\nbefore \(catalogBefore.tables)\nafter  \(catalogAfter.tables)")
            #expect(registryAfter == registryBefore)
            let back = try await first.plan()
            #expect(back.isEmpty, "after down, the first federation plans \(back.steps.map(\.summary))")
        }
    }

    // MARK: - Kinds of difference

    @Test func createTableWithEverything() async throws {
        let status = ColumnDescription(property: "status", type: .text, allowedValues: ["open", "done"])
        let note = Self.notes(
            [Self.title, Self.body, status,
             ModelSchema.column("score", Double.self, default: "0"),
             ModelSchema.column("code", String.self, type: "varchar(20)", unique: true),
             ModelSchema.column("price", Decimal.self, type: "numeric(10,2)"),
             ModelSchema.column("embedding", String?.self, type: .vector(3), index: .hnsw, operatorClass: "vector_cosine_ops"),
             ModelSchema.column("workspaceID", UUID.self, references: ForeignKey(Workspace.self, onDelete: .cascade))],
            indexes: [IndexDescription(columns: ["(lower(title))"]), IndexDescription(name: "notes_open_idx", columns: ["score"], predicate: "status = 'open'"),
                      IndexDescription(columns: ["body"], method: .gin, operatorClass: "jsonb_path_ops")],
            uniques: [UniqueConstraint(columns: ["title", "status"])],
            checks: [CheckConstraint(expression: "score >= 0")],
            storage: ["fillfactor": "80"]
        )
        try await Self.roundTrip("create_table", before: [Workspace.schema], after: [Workspace.schema, note],
                                 expecting: ["create table public.notes", "add foreign key notes_workspace_id_fkey on public.notes → public.workspaces"])
    }

    @Test func addColumnsToATableWithRows() async throws {
        let before = Self.notes([Self.title])
        let after = Self.notes([Self.title, ModelSchema.column("rank", Int?.self), ModelSchema.column("state", String.self, default: "'draft'")])
        try await Self.roundTrip("add_column", before: [before], after: [after],
                                 expecting: ["add column public.notes.rank", "add column public.notes.state"],
                                 seed: { try await $0.execute("INSERT INTO public.notes (id, title) VALUES (gen_random_uuid(), 'a')") })
    }

    @Test func notNullColumnWithoutDefaultOnATableWithRowsIsRefused() async throws {
        try await TestDatabase.withFreshDatabase("not_null_refused") { client in
            try await Self.migrator(client, [Self.notes([Self.title])]).apply(allowing: [])
            try await client.execute("INSERT INTO public.notes (id, title) VALUES (gen_random_uuid(), 'a')")
            let migrator = try Self.migrator(client, [Self.notes([Self.title, ModelSchema.column("rank", Int.self)])])
            let plan = try await migrator.plan()
            #expect(plan.refusals.count == 1)
            #expect(plan.refusals.first?.contains("notes.rank") == true)
            let error = await #expect(throws: PhylacteryError.self) { try await migrator.auto() }
            #expect(error?.code == .migrationRefused)
            #expect(error?.message.contains("has rows") == true, "\(String(describing: error))")
        }
    }

    @Test func dropColumnHoldingDataNeedsConsent() async throws {
        let before = Self.notes([Self.title, ModelSchema.column("rank", Int?.self)])
        let after = Self.notes([Self.title])
        try await TestDatabase.withFreshDatabase("drop_refused") { client in
            try await Self.migrator(client, [before]).apply(allowing: [])
            try await client.execute("INSERT INTO public.notes (id, title, rank) VALUES (gen_random_uuid(), 'a', 7)")
            let migrator = try Self.migrator(client, [after])
            let plan = try await migrator.plan()
            #expect(plan.hazards == [.dataLoss])
            let error = await #expect(throws: PhylacteryError.self) { try await migrator.auto() }
            #expect(error?.code == .migrationRefused)
            #expect(error?.message.contains("--allow-destructive") == true)
            let refused = await #expect(throws: PhylacteryError.self) { try await migrator.apply(allowing: [.tableRewrite]) }
            #expect(refused?.code == .migrationRefused)
            let still = try await client.query("SELECT rank FROM public.notes").collect()
            #expect(try still.first?.decode(Int.self) == 7, "refused plan must change nothing")
            try await migrator.apply(allowing: [.dataLoss])
            #expect(try await migrator.plan().isEmpty)
        }
        try await Self.roundTrip("drop_column", before: [before], after: [after], expecting: ["drop column public.notes.rank"], consent: [.dataLoss])
    }

    @Test func typeChanges() async throws {
        // Widening varchar needs no consent; integer → bigint rewrites; bigint → integer may lose values.
        let before = Self.notes([ModelSchema.column("code", String.self, type: "varchar(20)"), ModelSchema.column("count", Int32.self), ModelSchema.column("total", Int.self)])
        let after = Self.notes([ModelSchema.column("code", String.self, type: "varchar(50)"), ModelSchema.column("count", Int.self), ModelSchema.column("total", Int32.self)])
        try await TestDatabase.withFreshDatabase("type_hazards") { client in
            try await Self.migrator(client, [before]).apply(allowing: [])
            let plan = try await Self.migrator(client, [after]).plan()
            let hazards = Dictionary(uniqueKeysWithValues: plan.steps.map { ($0.summary, $0.hazards) })
            #expect(hazards["change type of public.notes.code from character varying(20) to character varying(50)"] == [])
            #expect(hazards["change type of public.notes.count from integer to bigint"] == [.tableRewrite])
            #expect(hazards["change type of public.notes.total from bigint to integer"] == [.dataLoss, .tableRewrite])
        }
        try await Self.roundTrip("type_change", before: [before], after: [after],
                                 expecting: ["change type of public.notes.count from integer to bigint"], consent: [.dataLoss, .tableRewrite])
    }

    @Test func nullabilityAndDefaults() async throws {
        let before = Self.notes([ModelSchema.column("title", String?.self), ModelSchema.column("rank", Int.self, default: "1")])
        let after = Self.notes([ModelSchema.column("title", String.self, default: "'untitled'"), ModelSchema.column("rank", Int?.self)])
        try await Self.roundTrip("nullability", before: [before], after: [after],
                                 expecting: ["set NOT NULL on public.notes.title, filling NULLs with its default", "drop NOT NULL on public.notes.rank", "drop default of public.notes.rank"],
                                 consent: [.longLock],
                                 seed: { try await $0.execute("INSERT INTO public.notes (id, title) VALUES (gen_random_uuid(), NULL)") })
    }

    @Test func indexesOnAnExistingTable() async throws {
        let before = Self.notes([Self.title, Self.body, ModelSchema.column("embedding", String?.self, type: .vector(3))])
        let after = Self.notes(
            [ModelSchema.column("title", String.self, index: .btree), Self.body,
             ModelSchema.column("embedding", String?.self, type: .vector(3), index: .hnsw, operatorClass: "vector_cosine_ops")],
            indexes: [IndexDescription(columns: ["(lower(title))"]), IndexDescription(name: "notes_short_idx", columns: ["title"], predicate: "length(title) < 10"),
                      IndexDescription(columns: ["body"], method: .gin, operatorClass: "jsonb_path_ops", parameters: [:])]
        )
        try await Self.roundTrip("indexes", before: [before], after: [after],
                                 expecting: ["add index notes_title_idx on public.notes", "add index notes_lower_title_idx on public.notes", "add index notes_embedding_idx on public.notes"],
                                 seed: { try await $0.execute("INSERT INTO public.notes (id, title, body) VALUES (gen_random_uuid(), 'a', '{}')") })
    }

    @Test func constraintsOnAnExistingTable() async throws {
        let before = Self.notes([Self.title, ModelSchema.column("rank", Int.self), ModelSchema.column("workspaceID", UUID?.self)])
        let after = Self.notes(
            [ModelSchema.column("title", String.self, unique: true), ModelSchema.column("rank", Int.self),
             ModelSchema.column("workspaceID", UUID?.self, references: ForeignKey(Workspace.self, onDelete: .setNull))],
            checks: [CheckConstraint(name: "notes_rank_positive", expression: "rank > 0")]
        )
        try await Self.roundTrip("constraints", before: [Workspace.schema, before], after: [Workspace.schema, after],
                                 expecting: ["add unique constraint notes_title_key on public.notes", "add check notes_rank_positive on public.notes",
                                             "add foreign key notes_workspace_id_fkey on public.notes"],
                                 seed: { try await $0.execute("INSERT INTO public.notes (id, title, rank) VALUES (gen_random_uuid(), 'a', 3)") })
    }

    @Test func aUniqueConstraintWhoseBuildFailedIsFinishedNextTime() async throws {
        try await TestDatabase.withFreshDatabase("unique_retry") { client in
            try await Self.migrator(client, [Self.notes([Self.title])]).apply(allowing: [])
            try await client.execute("INSERT INTO public.notes (id, title) VALUES (gen_random_uuid(), 'twin'), (gen_random_uuid(), 'twin')")
            let unique = try Self.migrator(client, [Self.notes([ModelSchema.column("title", String.self, unique: true)])])
            let failed = await #expect(throws: PhylacteryError.self) { try await unique.apply(allowing: []) }
            #expect(failed?.code == .migrationFailed, "\(String(describing: failed))")
            // The failed concurrent build's invalid index was dropped at once.
            let invalid = "SELECT count(*) FROM pg_index WHERE indrelid = 'public.notes'::regclass AND NOT indisvalid"
            #expect(try await client.query(PostgresQuery(unsafeSQL: invalid)).collect().first?.decode(Int64.self) == 0)
            // A process killed during the build leaves one behind (made here by a build of our own);
            // once the duplicate is gone, the plan rebuilds and attaches it.
            await #expect(throws: PhylacteryError.self) {
                try await client.execute("CREATE UNIQUE INDEX CONCURRENTLY notes_title_key ON public.notes (title)")
            }
            #expect(try await client.query(PostgresQuery(unsafeSQL: invalid)).collect().first?.decode(Int64.self) == 1)
            try await client.execute("DELETE FROM public.notes WHERE ctid = (SELECT max(ctid) FROM public.notes)")
            let plan = try await unique.plan()
            let statements = plan.upStatements.map(\.sql)
            #expect(statements.contains { $0.hasPrefix("DROP INDEX CONCURRENTLY IF EXISTS") && $0.contains("notes_title_key") }, "\(statements)")
            try await unique.apply(allowing: [])
            #expect(try await unique.plan().isEmpty)
        }
    }

    @Test func storageParameters() async throws {
        let before = Self.notes([Self.title], storage: ["fillfactor": "90"])
        let after = Self.notes([Self.title], storage: ["fillfactor": "70", "autovacuum_vacuum_scale_factor": "0.01"])
        try await Self.roundTrip("storage", before: [before], after: [after], expecting: ["set storage parameters of public.notes"])
    }

    @Test func renames() async throws {
        let before = Self.notes([Self.title, ModelSchema.column("rank", Int.self, index: .btree), ModelSchema.column("summary", String?.self),
                                 ModelSchema.column("parentID", UUID?.self, references: ForeignKey(table: "notes"))])
        let linksBefore = ModelSchema(modelName: "Link", table: "links", columns: [ModelSchema.column("noteID", UUID.self, references: ForeignKey(table: "notes", onDelete: .cascade))])
        // The table, a column with an index, a foreign key to the table (from itself and from another
        // table), and a NOT NULL change on the renamed table that must ask the table under its old name.
        let after = Self.notes([Self.title, ModelSchema.column("position", Int.self, index: .btree, renamedFrom: ["rank"]),
                                ModelSchema.column("summary", String.self, default: "''"),
                                ModelSchema.column("parentID", UUID?.self, references: ForeignKey(table: "memos"))],
                               table: "memos", renamedFrom: ["notes"])
        let linksAfter = ModelSchema(modelName: "Link", table: "links", columns: [ModelSchema.column("noteID", UUID.self, references: ForeignKey(table: "memos", onDelete: .cascade))])
        let seed: @Sendable (PhylacteryClient) async throws -> Void = { try await $0.execute("INSERT INTO public.notes (id, title, rank) VALUES (gen_random_uuid(), 'kept', 1)") }
        try await Self.roundTrip("renames", before: [before, linksBefore], after: [after, linksAfter],
                                 expecting: ["rename table public.notes to memos", "rename column public.memos.rank to position",
                                             "set NOT NULL on public.memos.summary, filling NULLs with its default"],
                                 consent: [.longLock], seed: seed)
        try await TestDatabase.withFreshDatabase("rename_keeps_rows") { client in
            try await Self.migrator(client, [before, linksBefore]).apply(allowing: [])
            try await seed(client)
            let plan = try await Self.migrator(client, [after, linksAfter]).plan()
            let summaries = plan.steps.map(\.summary)
            #expect(!summaries.contains { $0.contains("foreign key") }, "a table rename must not rebuild foreign keys: \(summaries)")
            let outside = plan.upStatements.filter { !$0.transactional }.map(\.sql)
            #expect(outside.isEmpty, "renames need no concurrent build: \(outside)")
            // The index named after the old column is renamed with it, not rebuilt.
            #expect(summaries.contains("rename index memos_rank_idx to memos_position_idx"), "\(summaries)")
            #expect(!summaries.contains { $0.contains("add index") || $0.contains("drop index") }, "\(summaries)")
            #expect(plan.notices.isEmpty, "\(plan.notices)")
            try await Self.migrator(client, [after, linksAfter]).apply(allowing: [.longLock])
            let rows = try await client.query("SELECT title, position, summary FROM public.memos").collect()
            #expect(try rows.map { try $0.decode((String, Int, String).self) }.map(\.0) == ["kept"])
            let indexes = try await client.query("SELECT indexname FROM pg_indexes WHERE tablename = 'memos' ORDER BY 1").collect().map { try $0.decode(String.self) }
            #expect(indexes == ["memos_pkey", "memos_position_idx"], "\(indexes)")
        }
    }

    @Test func droppedModelDropsItsTableWithConsent() async throws {
        let other = ModelSchema(modelName: "Other", table: "others", columns: [Self.title])
        try await Self.roundTrip("drop_table", before: [Self.notes([Self.title]), other], after: [other],
                                 expecting: ["drop table public.notes"], consent: [.dataLoss])
    }

    @Test func spellingIsTheServersSoPlanningTwiceIsEmpty() async throws {
        // Free SQL in every place the server respells it.
        let note = Self.notes(
            [ModelSchema.column("code", String.self, type: "varchar(20)", default: "'x'"),
             ModelSchema.column("amount", Decimal.self, type: "NUMERIC(10, 2)", default: "0.5"),
             ModelSchema.column("at", Date.self, type: "timestamptz", default: "CURRENT_TIMESTAMP"),
             ModelSchema.column("flag", Bool.self, type: "bool", default: "FALSE"),
             ModelSchema.column("n", Int.self, type: "int8", default: "-1")],
            indexes: [IndexDescription(columns: ["(upper(code))"], predicate: "flag AND n > 0"),
                      IndexDescription(name: "notes_amount_idx", columns: ["amount"], operatorClass: "numeric_ops")],
            checks: [CheckConstraint(expression: "code IN ('x', 'y')"), CheckConstraint(expression: "amount BETWEEN 0 AND 10")],
            storage: ["FILLFACTOR": "70", "autovacuum_enabled": "FALSE"]
        )
        try await TestDatabase.withFreshDatabase("spelling") { client in
            let migrator = try Self.migrator(client, [note])
            try await migrator.apply(allowing: [])
            let plan = try await migrator.plan()
            #expect(plan.isEmpty, "phantom differences: \(plan.steps.map(\.summary))")
        }
    }

    // MARK: - Ownership

    struct Plugin: PhylacteryExtension {
        let slug: String
        let version = "1"
        let schemas: [ModelSchema]
        func initialize(_ context: ExtensionContext) throws {
            for schema in self.schemas { context.registerSchema(schema) }
        }
    }

    @Test func unknownObjectsAreReportedAndLeftAlone() async throws {
        try await TestDatabase.withFreshDatabase("unknown") { client in
            let migrator = try Self.migrator(client, [Self.notes([Self.title])])
            try await migrator.apply(allowing: [])
            try await client.execute("CREATE TABLE public.hand_made (x int)")
            try await client.execute("ALTER TABLE public.notes ADD COLUMN extra text")
            try await client.execute("CREATE INDEX notes_extra_idx ON public.notes (extra)")
            let plan = try await migrator.plan()
            #expect(plan.steps.isEmpty, "\(plan.steps.map(\.summary))")
            #expect(plan.notices.contains { $0.hasPrefix("unknown table public.hand_made") })
            #expect(plan.notices.contains { $0.hasPrefix("unknown column public.notes.extra") })
            #expect(plan.notices.contains { $0.hasPrefix("unknown index notes_extra_idx") })
        }
    }

    @Test func tablesOfAnUnregisteredOwnerAreOrphanedNotDropped() async throws {
        try await TestDatabase.withFreshDatabase("orphans") { client in
            let plugin = Plugin(slug: "garden", schemas: [ModelSchema(modelName: "Plant", table: "garden_plants", columns: [Self.title])])
            let with = Migrator(client: client, federation: try Federation(extensions: [plugin]))
            try await with.apply(allowing: [])
            let without = Migrator(client: client, federation: try Federation())
            let plan = try await without.plan()
            #expect(plan.steps.isEmpty, "\(plan.steps.map(\.summary))")
            #expect(plan.notices.contains { $0.contains("orphaned table public.garden_plants") && $0.contains("garden") })
            let registry = try await client.query("SELECT owner, model, table_name FROM public.phylactery_registry").collect()
            #expect(try registry.map { try $0.decode((String, String, String).self) }.map(\.0) == ["garden"])
        }
    }

    @Test func extensionForeignKeyToCoreTableAppliesAfterIt() async throws {
        try await TestDatabase.withFreshDatabase("owner_order") { client in
            let plugin = Plugin(slug: "tasks", schemas: [ModelSchema(modelName: "Task", table: "tasks_items", columns: [
                Self.title, ModelSchema.column("workspaceID", UUID.self, references: ForeignKey(Workspace.self, onDelete: .cascade)),
            ])])
            let federation = try Federation.standard(extensions: [plugin])
            #expect(federation.owners.map(\.slug) == ["core", "tasks"])
            let migrator = Migrator(client: client, federation: federation)
            let plan = try await migrator.plan()
            let order = plan.steps.map(\.summary)
            let workspaces = try #require(order.firstIndex(of: "create table public.workspaces"))
            let key = try #require(order.firstIndex { $0.hasPrefix("add foreign key tasks_items_workspace_id_fkey") })
            #expect(workspaces < key)
            try await migrator.apply(allowing: [])
            #expect(try await migrator.plan().isEmpty)
        }
    }

    // MARK: - Files, ledger, concurrency

    @Test func generateUpHistoryDownAndEditedFiles() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("phyl-migrations-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await TestDatabase.withFreshDatabase("files") { client in
            let v1 = try Self.migrator(client, [Self.notes([Self.title])], directory: directory)
            let (file, path) = try #require(try await v1.generate(message: "notes"))
            #expect(file.parent == nil)
            let text = try String(contentsOfFile: path, encoding: .utf8)
            #expect(text.contains("-- revision: \(file.revision)"))
            #expect(text.contains("CREATE TABLE \"public\".\"notes\""))
            #expect(try MigrationFile(parsing: text) == file)
            // A reviewer's note in the file changes nothing but the checksum the ledger keeps.
            let reviewed = text + "\n-- reviewed: fine to apply\n"
            try reviewed.write(toFile: path, atomically: true, encoding: .utf8)
            #expect(try MigrationFile(parsing: reviewed) == file)
            let unapplied = await #expect(throws: PhylacteryError.self) { try await v1.generate(message: "again") }
            #expect(unapplied?.message.contains("not applied yet") == true)
            let applied = try await v1.up()
            #expect(applied.map(\.revision) == [file.revision])
            #expect(try await v1.up().isEmpty)
            #expect(try await v1.plan().isEmpty)

            let v2 = try Self.migrator(client, [Self.notes([Self.title, ModelSchema.column("rank", Int?.self)])], directory: directory)
            let (second, _) = try #require(try await v2.generate(message: "rank"))
            #expect(second.parent == file.revision)
            try await v2.up()
            let history = try await v2.history()
            #expect(history.map(\.revision) == [file.revision, second.revision])
            #expect(history.map(\.source) == ["file", "file"])

            // An applied file edited afterwards is refused.
            try (reviewed + "\n-- edited\n").write(toFile: path, atomically: true, encoding: .utf8)
            let edited = await #expect(throws: PhylacteryError.self) { try await v2.up() }
            #expect(edited?.code == .migrationRefused)
            #expect(edited?.message.contains("edited after it was applied") == true)
            try reviewed.write(toFile: path, atomically: true, encoding: .utf8)

            // down 1 drops the column again (data-loss consent: it holds the column's values).
            let refused = await #expect(throws: PhylacteryError.self) { try await v2.down(1) }
            #expect(refused?.code == .migrationRefused)
            try await v2.down(1, allowing: [.dataLoss])
            #expect(try await v1.plan().isEmpty)
            #expect(try await v2.history().map(\.revision) == [file.revision])
        }
    }

    @Test func twoHeadsAreDetected() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("phyl-heads-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await TestDatabase.withFreshDatabase("two_heads") { client in
            let v1 = try Self.migrator(client, [Self.notes([Self.title])], directory: directory)
            let (first, _) = try #require(try await v1.generate(message: "base"))
            try await v1.up()
            // Two branches both generated on top of `first`.
            let a = MigrationFile(plan: try await Self.migrator(client, [Self.notes([Self.title, ModelSchema.column("a", Int?.self)])]).plan(), parent: first.revision, message: "a")
            let b = MigrationFile(plan: try await Self.migrator(client, [Self.notes([Self.title, ModelSchema.column("b", Int?.self)])]).plan(), parent: first.revision, message: "b")
            try a.text.write(toFile: "\(directory)/\(a.fileName)", atomically: true, encoding: .utf8)
            try b.text.write(toFile: "\(directory)/\(b.fileName)", atomically: true, encoding: .utf8)
            let error = await #expect(throws: PhylacteryError.self) { try await v1.up() }
            #expect(error?.code == .migrationRefused)
            #expect(error?.message.contains("two heads") == true)
            #expect(error?.message.contains(a.revision) == true && error?.message.contains(b.revision) == true)
        }
    }

    @Test func concurrentAutoAppliesOnce() async throws {
        try await TestDatabase.withFreshDatabase("concurrent") { client in
            let schemas = [Workspace.schema, Self.notes([Self.title, ModelSchema.column("rank", Int.self, index: .btree)])]
            let results = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<4 {
                    group.addTask { try await Self.migrator(client, schemas).auto() != nil }
                }
                return try await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            #expect(results.filter { $0 }.count == 1, "\(results)")
            #expect(try await Self.migrator(client, schemas).history().count == 1)
        }
    }
}

extension ExtensionContext {
    /// Registers a table description with no Swift type (tests).
    func registerSchema(_ schema: ModelSchema) { self.append(ModelRegistration(schema: schema)) }
}
