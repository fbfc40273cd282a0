import Phylactery
import PhylacteryTestSupport
import PostgresNIO
import Testing

@Suite struct CatalogReaderTests {
    let logger = Logger(label: "catalog-reader-tests")

    /// Reads `schemas` on a pooled connection, outside any transaction.
    func read(_ client: PhylacteryClient, _ schemas: [String]) async throws -> (shape: SchemaShape, queries: Int) {
        try await client.withConnection { connection in
            try await CatalogReader.read(schemas: schemas, on: connection, logger: self.logger)
        }
    }

    /// A table in `public` and one in `verbatim` with most of what the planner compares.
    static let ddl = [
        "CREATE TABLE public.authors (id bigint PRIMARY KEY, name character varying(20) NOT NULL, CONSTRAINT authors_name_id UNIQUE (name, id))",
        """
        CREATE TABLE verbatim.posts (
            id uuid PRIMARY KEY,
            author bigint NOT NULL REFERENCES public.authors (id) ON DELETE CASCADE,
            title text NOT NULL,
            status text NOT NULL DEFAULT 'draft',
            price numeric(10,2) CONSTRAINT price_positive CHECK (price > 0),
            embedding vector(3),
            meta jsonb NOT NULL DEFAULT '{}',
            created timestamp with time zone NOT NULL DEFAULT now(),
            CONSTRAINT status_known CHECK (status IN ('draft', 'published')),
            CONSTRAINT posts_author_title UNIQUE (author, title)
        ) WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.01)
        """,
        "ALTER TABLE verbatim.posts ADD CONSTRAINT title_short CHECK (length(title) < 200) NOT VALID",
        "CREATE INDEX posts_created ON verbatim.posts (created)",
        "CREATE INDEX posts_author_created ON verbatim.posts (author, created)",
        "CREATE INDEX posts_lower_title ON verbatim.posts (lower(title))",
        "CREATE INDEX posts_published ON verbatim.posts (created) WHERE status = 'published'",
        "CREATE INDEX posts_meta ON verbatim.posts USING gin (meta jsonb_path_ops)",
        "CREATE INDEX posts_embedding ON verbatim.posts USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)",
        "CREATE UNIQUE INDEX posts_status_title ON verbatim.posts (status, title)",
    ]

    static let expectedAuthors = TableShape(
        name: QualifiedName("public", "authors"),
        columns: [
            ColumnShape(name: "id", type: "bigint", notNull: true),
            ColumnShape(name: "name", type: "character varying(20)", notNull: true),
        ],
        primaryKey: KeyShape(name: "authors_pkey", columns: ["id"]),
        uniques: [KeyShape(name: "authors_name_id", columns: ["name", "id"])]
    )

    static let expectedPosts = TableShape(
        name: QualifiedName("verbatim", "posts"),
        columns: [
            ColumnShape(name: "id", type: "uuid", notNull: true),
            ColumnShape(name: "author", type: "bigint", notNull: true),
            ColumnShape(name: "title", type: "text", notNull: true),
            ColumnShape(name: "status", type: "text", notNull: true, defaultExpression: "'draft'::text"),
            ColumnShape(name: "price", type: "numeric(10,2)", notNull: false),
            ColumnShape(name: "embedding", type: "vector(3)", notNull: false),
            ColumnShape(name: "meta", type: "jsonb", notNull: true, defaultExpression: "'{}'::jsonb"),
            ColumnShape(name: "created", type: "timestamp with time zone", notNull: true, defaultExpression: "now()"),
        ],
        primaryKey: KeyShape(name: "posts_pkey", columns: ["id"]),
        uniques: [KeyShape(name: "posts_author_title", columns: ["author", "title"])],
        checks: [
            CheckShape(name: "price_positive", definition: "CHECK ((price > (0)::numeric))"),
            // IN (…) comes back as = ANY (ARRAY[…]) with every element cast.
            CheckShape(name: "status_known", definition: "CHECK ((status = ANY (ARRAY['draft'::text, 'published'::text])))"),
            CheckShape(name: "title_short", definition: "CHECK ((length(title) < 200))", validated: false),
        ],
        foreignKeys: [
            ForeignKeyShape(
                name: "posts_author_fkey", columns: ["author"], target: QualifiedName("public", "authors"),
                targetColumns: ["id"], onDelete: "CASCADE"),
        ],
        indexes: [
            IndexShape(name: "posts_author_created", method: "btree", isUnique: false, keys: ["author", "created"], operatorClasses: [nil, nil]),
            IndexShape(name: "posts_created", method: "btree", isUnique: false, keys: ["created"], operatorClasses: [nil]),
            IndexShape(
                name: "posts_embedding", method: "hnsw", isUnique: false, keys: ["embedding"], operatorClasses: ["vector_cosine_ops"],
                parameters: ["m": "16", "ef_construction": "64"]),
            IndexShape(name: "posts_lower_title", method: "btree", isUnique: false, keys: ["lower(title)"], operatorClasses: [nil]),
            IndexShape(name: "posts_meta", method: "gin", isUnique: false, keys: ["meta"], operatorClasses: ["jsonb_path_ops"]),
            IndexShape(
                name: "posts_published", method: "btree", isUnique: false, keys: ["created"], operatorClasses: [nil],
                predicate: "(status = 'published'::text)"),
            IndexShape(name: "posts_status_title", method: "btree", isUnique: true, keys: ["status", "title"], operatorClasses: [nil, nil]),
        ],
        storage: ["fillfactor": "70", "autovacuum_vacuum_scale_factor": "0.01"]
    )

    @Test func readsTablesColumnsConstraintsAndIndexesAsPostgreSQLSpellsThem() async throws {
        try await TestDatabase.withFreshDatabase("catalog_shape") { client in
            for statement in Self.ddl {
                try await client.execute(PostgresQuery(unsafeSQL: statement))
            }
            let (shape, queries) = try await read(client, ["public", "verbatim", "no_such_schema"])

            #expect(queries == CatalogReader.queryCount)
            #expect(shape.schemas == ["public", "verbatim"])
            let extensions = try await client.query("SELECT extname::text, extversion FROM pg_extension").collect()
                .map { try $0.decode((String, String).self) }
            #expect(shape.extensions == Dictionary(uniqueKeysWithValues: extensions))
            #expect(shape.extensions["vector"] != nil)
            #expect(shape.extensions["plpgsql"] == "1.0")

            // Never analysed: reltuples is −1.
            #expect(shape.tables == [Self.expectedAuthors, Self.expectedPosts])
            #expect(shape[QualifiedName("public", "authors")]?.estimatedRows == -1)
        }
    }

    @Test func indexesBackingConstraintsAreNotIndexes() async throws {
        try await TestDatabase.withFreshDatabase("catalog_backing") { client in
            for statement in Self.ddl {
                try await client.execute(PostgresQuery(unsafeSQL: statement))
            }
            let (shape, _) = try await read(client, ["public", "verbatim"])
            let posts = try #require(shape[QualifiedName("verbatim", "posts")])
            let authors = try #require(shape[QualifiedName("public", "authors")])
            let names = Set(posts.indexes.map(\.name))
            // The PK's and the UNIQUE constraint's indexes are constraints; the unique *index* is an index.
            #expect(!names.contains("posts_pkey"))
            #expect(!names.contains("posts_author_title"))
            #expect(names.contains("posts_status_title"))
            // The FK's conindid points at authors_pkey, which still is no index of authors.
            #expect(authors.indexes.isEmpty)
            // NOT NULL constraints (contype 'n' since PostgreSQL 18) are not checks.
            #expect(authors.checks.isEmpty)

            // A foreign key may reference a unique *index*; its conindid then names that index, which
            // stays an index even when the key points back at its own table.
            try await client.execute("CREATE TABLE public.nodes (id int PRIMARY KEY, code text NOT NULL, parent_code text)")
            try await client.execute("CREATE UNIQUE INDEX nodes_code ON public.nodes (code)")
            try await client.execute("ALTER TABLE public.nodes ADD CONSTRAINT nodes_parent FOREIGN KEY (parent_code) REFERENCES public.nodes (code)")
            let nodes = try #require(try await read(client, ["public"]).shape[QualifiedName("public", "nodes")])
            #expect(nodes.indexes.map(\.name) == ["nodes_code"])
            #expect(nodes.foreignKeys.map(\.target) == [QualifiedName("public", "nodes")])
        }
    }

    @Test func rowEstimatesTablesWithoutColumnsAndDroppedColumns() async throws {
        try await TestDatabase.withFreshDatabase("catalog_rows") { client in
            try await client.execute("CREATE TABLE public.counted (id int PRIMARY KEY, gone text, kept text)")
            try await client.execute("ALTER TABLE public.counted DROP COLUMN gone")
            try await client.execute("INSERT INTO public.counted SELECT generate_series(1, 25)")
            try await client.execute("ANALYZE public.counted")
            try await client.execute("CREATE TABLE public.bare ()")
            let (shape, _) = try await read(client, ["public"])

            let counted = try #require(shape[QualifiedName("public", "counted")])
            #expect(counted.estimatedRows == 25)
            #expect(counted.columns.map(\.name) == ["id", "kept"])
            #expect(shape[QualifiedName("public", "bare")]?.columns == [])
        }
    }

    @Test func partitionsAreSkippedAndAForeignKeyToAPartitionedTableIsOne() async throws {
        try await TestDatabase.withFreshDatabase("catalog_partitions") { client in
            try await client.execute("CREATE TABLE public.events (id bigint, at date NOT NULL, PRIMARY KEY (id, at)) PARTITION BY RANGE (at)")
            try await client.execute("CREATE TABLE public.events_2025 PARTITION OF public.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')")
            try await client.execute("CREATE TABLE public.events_2026 PARTITION OF public.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')")
            try await client.execute("CREATE INDEX events_at ON public.events (at)")
            try await client.execute(
                "CREATE TABLE public.marks (id int PRIMARY KEY, event bigint, at date, FOREIGN KEY (event, at) REFERENCES public.events ON DELETE SET NULL)")
            let (shape, _) = try await read(client, ["public"])

            #expect(shape.tables.map(\.name.description) == ["public.events", "public.marks"])
            let events = try #require(shape[QualifiedName("public", "events")])
            #expect(events.primaryKey == KeyShape(name: "events_pkey", columns: ["id", "at"]))
            #expect(events.partitioning == "RANGE (at)")
            #expect(shape[QualifiedName("public", "marks")]?.partitioning == nil)
            #expect(events.indexes == [IndexShape(name: "events_at", method: "btree", isUnique: false, keys: ["at"], operatorClasses: [nil])])
            let marks = try #require(shape[QualifiedName("public", "marks")])
            #expect(marks.foreignKeys == [
                ForeignKeyShape(
                    name: "marks_event_at_fkey", columns: ["event", "at"], target: QualifiedName("public", "events"),
                    targetColumns: ["id", "at"], onDelete: "SET NULL"),
            ])
        }
    }

    @Test func triggersWithTheSessionsTheyFireIn() async throws {
        try await TestDatabase.withFreshDatabase("catalog_triggers") { client in
            try await client.execute("CREATE TABLE public.guarded (id int PRIMARY KEY)")
            try await client.execute("CREATE FUNCTION public.refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'no'; END; $$")
            for (name, state) in [("a_origin", nil), ("b_always", "ENABLE ALWAYS"), ("c_replica", "ENABLE REPLICA"), ("d_disabled", "DISABLE")] {
                try await client.execute(PostgresQuery(unsafeSQL: "CREATE TRIGGER \(name) BEFORE DELETE ON public.guarded FOR EACH ROW EXECUTE FUNCTION public.refuse()"))
                if let state {
                    try await client.execute(PostgresQuery(unsafeSQL: "ALTER TABLE public.guarded \(state) TRIGGER \(name)"))
                }
            }
            let (shape, queries) = try await read(client, ["public"])
            #expect(queries == CatalogReader.queryCount)
            let triggers = try #require(shape[QualifiedName("public", "guarded")]).triggers
            #expect(triggers.map(\.name) == ["a_origin", "b_always", "c_replica", "d_disabled"])
            #expect(triggers.map(\.enabled) == [.origin, .always, .replica, .disabled])
            #expect(triggers.allSatisfy { $0.function == QualifiedName("public", "refuse") && $0.typeBits == 1 | 2 | 8 })
        }
    }

    @Test(.disabled(if: TestDatabase.throughTransactionPooler, "needs a fresh server session, which a transaction pooler does not promise")) func pgTempIsTheSessionsTempSchemaInsideATransaction() async throws {
        try await TestDatabase.withFreshDatabase("catalog_temp") { client in
            try await client.execute("CREATE TABLE public.kept (id int PRIMARY KEY)")
            let (shape, queries) = try await client.transaction { tx in
                try await tx.execute("CREATE TEMP TABLE parent (id int PRIMARY KEY) ON COMMIT DROP")
                try await tx.execute(
                    "CREATE TEMP TABLE scratch (id int PRIMARY KEY, parent int REFERENCES parent ON DELETE RESTRICT, note text DEFAULT 'x') ON COMMIT DROP")
                try await tx.execute("CREATE INDEX scratch_note ON scratch (note)")
                return try await CatalogReader.read(schemas: ["pg_temp", "public"], in: tx)
            }
            #expect(queries == CatalogReader.queryCount)
            #expect(shape.schemas == ["pg_temp", "public"])
            #expect(shape.tables.map(\.name.description) == ["pg_temp.parent", "pg_temp.scratch", "public.kept"])
            #expect(shape[QualifiedName("pg_temp", "scratch")] == TableShape(
                name: QualifiedName("pg_temp", "scratch"),
                columns: [
                    ColumnShape(name: "id", type: "integer", notNull: true),
                    ColumnShape(name: "parent", type: "integer", notNull: false),
                    ColumnShape(name: "note", type: "text", notNull: false, defaultExpression: "'x'::text"),
                ],
                primaryKey: KeyShape(name: "scratch_pkey", columns: ["id"]),
                foreignKeys: [
                    ForeignKeyShape(
                        name: "scratch_parent_fkey", columns: ["parent"], target: QualifiedName("pg_temp", "parent"),
                        targetColumns: ["id"], onDelete: "RESTRICT"),
                ],
                indexes: [IndexShape(name: "scratch_note", method: "btree", isUnique: false, keys: ["note"], operatorClasses: [nil])]
            ))

            // A new session has no temp schema yet, and never sees another session's temp tables.
            let (fresh, _) = try await client.withDirectConnection { connection in
                try await CatalogReader.read(schemas: ["pg_temp"], on: connection, logger: self.logger)
            }
            #expect(fresh.schemas.isEmpty)
            #expect(fresh.tables.isEmpty)
        }
    }

    @Test func theQueryCountDoesNotGrowWithTheTables() async throws {
        try await TestDatabase.withFreshDatabase("catalog_count") { client in
            func addTables(_ range: Range<Int>) async throws {
                for n in range {
                    try await client.execute(PostgresQuery(unsafeSQL: """
                        CREATE TABLE queue.t\(n) (id bigint PRIMARY KEY, name text NOT NULL DEFAULT '', score numeric(8,2) CHECK (score >= 0), UNIQUE (name))
                        """))
                    try await client.execute(PostgresQuery(unsafeSQL: "CREATE INDEX t\(n)_score ON queue.t\(n) (score)"))
                }
            }
            try await addTables(0..<2)
            let (small, smallQueries) = try await read(client, ["queue"])
            try await addTables(2..<40)
            let (large, largeQueries) = try await read(client, ["queue"])

            #expect(small.tables.count == 2)
            #expect(large.tables.count == 40)
            #expect(smallQueries == largeQueries)
            #expect(largeQueries == CatalogReader.queryCount)
            #expect(large.tables.allSatisfy { $0.columns.count == 3 && $0.uniques.count == 1 && $0.checks.count == 1 && $0.indexes.count == 1 })
        }
    }
}
