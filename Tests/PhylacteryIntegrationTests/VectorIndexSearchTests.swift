import Foundation
@testable import Phylactery
import PhylacteryTestSupport
import PostgresNIO
import Testing

/// The HNSW search as one statement (`vectors.nearest_memories`), in a transaction and through
/// ``PhylacteryClient/searchMemory(_:in:options:file:line:)``, against a real PostgreSQL with pgvector.
@Suite struct VectorIndexSearchTests {
    static let space = VectorsVerbatimTests.space

    /// `rows` seeded memories, one in ten consecrated, owners alternating, metadata `{"parity": …}`.
    static func seed(_ client: PhylacteryClient, rows: Int, seed: UInt64 = 7) async throws -> VectorsVerbatimTests.Vectors {
        var vectors = VectorsVerbatimTests.Vectors(seed: seed)
        var memories: [Memory] = []
        for i in 0..<rows {
            memories.append(try Memory(
                content: "thought \(i)", embedding: try vectors.next(), space: Self.space,
                status: i % 10 == 0 ? .consecrated : .speculative, metadata: try RawJSONB(validating: #"{"parity": "\#(i % 2 == 0 ? "even" : "odd")"}"#),
                owner: i % 2 == 0 ? "even" : "odd", source: "test", sensitivity: i % 7 == 0 ? .secret : .private))
        }
        #expect(try await client.transaction { tx in try await tx.memory.remember(contentsOf: memories) } == rows)
        try await client.execute("ANALYZE vectors.memories")
        try await client.execute("ANALYZE vectors.embeddings")
        return vectors
    }

    @Test func theScanSettingsAreInEffectDuringTheScanAndGoneAfterIt() async throws {
        try await VectorsVerbatimTests.migrated("memory_scan_settings") { client in
            var vectors = try await Self.seed(client, rows: 2000)
            let query = try vectors.next()
            try await client.transaction { tx in
                // The planner must walk the index (it could scan 2000 rows outright).
                try await tx.execute("SET LOCAL enable_seqscan = off")
                try await tx.execute("SET LOCAL enable_sort = off")
                try await tx.execute("SET LOCAL hnsw.ef_search = 7")
                // Without iterative scans one pass returns at most ef_search candidates before the 10%
                // status filter: the count follows the search's efSearch, not the transaction's 7.
                var counts: [Int] = []
                for ef in [10, 40, 400] {
                    let hits = try await tx.memory.search(query, in: Self.space, options: .init(k: 10, statuses: [.consecrated], efSearch: ef, iterativeScan: .off))
                    #expect(hits.allSatisfy { $0.status == .consecrated })
                    counts.append(hits.count)
                }
                // (How many of the first 10 or 40 candidates are consecrated depends on the graph; with
                // 400 all 10 are found, which neither the transaction's 7 nor the function's default 40 do.)
                #expect(counts[0] <= counts[1] && counts[1] <= counts[2] && counts[0] < counts[2], "consecrated rows found with ef_search 10, 40, 400: \(counts)")
                #expect(counts[2] == 10)
                // The iterative scan keeps going past one pass of 10 candidates.
                let iterative = try await tx.memory.search(query, in: Self.space, options: .init(k: 10, statuses: [.consecrated], efSearch: 10))
                #expect(iterative.count == 10)
                // The transaction's own values are back.
                let settings = try await tx.query("""
                    SELECT current_setting('hnsw.ef_search'), current_setting('hnsw.iterative_scan'), current_setting('hnsw.max_scan_tuples')
                    """).collect().first?.decode((String, String, String).self)
                #expect(settings?.0 == "7" && settings?.1 == "off" && settings?.2 == "20000")
            }
        }
    }

    @Test func oneStatementFindsWhatTheExactSearchFindsWithEveryFilter() async throws {
        try await VectorsVerbatimTests.migrated("memory_index_filters") { client in
            var vectors = try await Self.seed(client, rows: 300)
            let metadata = try RawJSONB(validating: #"{"parity": "odd"}"#)
            let cases: [(String, VectorMemory.SearchOptions)] = [
                ("defaults", .init(k: 10)),
                ("k 3", .init(k: 3)),
                ("k 25", .init(k: 25)),
                ("consecrated only", .init(k: 10, statuses: [.consecrated])),
                ("owner", .init(k: 10, owner: "even")),
                ("metadata", .init(k: 10, metadata: metadata)),
                ("secret visible", .init(k: 10, sensitivities: Set(Sensitivity.allCases))),
                ("owner and metadata disagree", .init(k: 10, owner: "even", metadata: metadata)),
            ]
            for _ in 0..<3 {
                let query = try vectors.next()
                for (label, options) in cases {
                    var wide = options
                    wide.efSearch = 1000  // above the row count: the index walk reaches every row
                    var exact = options
                    exact.exact = true
                    let truth = try await client.transaction { tx in try await tx.memory.search(query, in: Self.space, options: exact) }
                    let inTransaction = try await client.transaction { tx in try await tx.memory.search(query, in: Self.space, options: wide) }
                    let oneTrip = try await client.searchMemory(query, in: Self.space, options: wide)
                    #expect(inTransaction.map(\.memory.id) == truth.map(\.memory.id), "\(label)")
                    #expect(oneTrip == inTransaction, "\(label)")
                    #expect(oneTrip.count == (label == "owner and metadata disagree" ? 0 : options.k), "\(label)")
                    #expect(oneTrip.allSatisfy { match in
                        options.statuses.contains(match.status) && options.sensitivities.contains(match.memory.sensitivity ?? .private)
                            && (options.owner == nil || match.memory.owner == options.owner)
                            && (options.metadata == nil || match.memory.owner == "odd")
                            && match.memory.space == Self.space && match.memory.embedding != nil && match.score == -match.distance
                    }, "\(label)")
                    #expect(oneTrip.map(\.distance) == oneTrip.map(\.distance).sorted(), "\(label)")
                }
            }
            // Hybrid searches walk the index through the same function.
            let query = try vectors.next()
            let hybrid = try await client.searchMemory(query, in: Self.space, options: .init(k: 5, owner: "odd", mode: .hybrid, text: "thought 3"))
            #expect(hybrid.count == 5 && hybrid.allSatisfy { $0.memory.owner == "odd" })
        }
    }

    @Test func unknownSpacesAndOtherDimensionsAreToldApart() async throws {
        try await VectorsVerbatimTests.migrated("memory_index_spaces") { client in
            var vectors = try await Self.seed(client, rows: 20)
            let query = try vectors.next()
            let unknown = EmbeddingSpace(model: "nobody", fingerprint: "v1", dimensions: 384)
            #expect(try await client.searchMemory(query, in: unknown).isEmpty)
            #expect(try await client.transaction { tx in try await tx.memory.search(query, in: unknown) }.isEmpty)
            // The same model and fingerprint registered with 384 dimensions, searched as 768.
            let resized = EmbeddingSpace(model: Self.space.model, fingerprint: Self.space.fingerprint, dimensions: 768)
            let wide = try Vector([Float](repeating: 0.5, count: 768))
            let viaClient = await #expect(throws: PhylacteryError.self) { try await client.searchMemory(wide, in: resized) }
            #expect(viaClient?.code == .dimensionMismatch)
            let viaTransaction = await #expect(throws: PhylacteryError.self) {
                try await client.transaction { tx in try await tx.memory.search(wide, in: resized) }
            }
            #expect(viaTransaction?.code == .dimensionMismatch)
            // A space whose every memory is filtered out: no rows, no error.
            #expect(try await client.searchMemory(query, in: Self.space, options: .init(owner: "nobody")).isEmpty)
        }
    }

    @Test func theStatementIsPreparedOnDirectSessionsOnly() async throws {
        var options = TestDatabase.defaultOptions
        options.maximumConnections = 1
        try await TestDatabase.withFreshDatabase("memory_index_prepared", options: options) { client in
            let migrator = Migrator(client: client, federation: try Federation(core: Federation.coreModels))
            _ = try await migrator.auto()
            var vectors = try await Self.seed(client, rows: 50)
            for _ in 0..<3 {
                #expect(try await client.searchMemory(try vectors.next(), in: Self.space).count == 10)
            }
            let pooled = try #require(client.sessionFeatures).transactionPooler
            let prepared = try await client.withConnection { connection in
                try await connection.query("SELECT name FROM pg_prepared_statements", logger: client.logger).collect().map { try $0.decode(String.self) }
            }
            if pooled {
                #expect(prepared.isEmpty, "\(prepared)")
            } else {
                #expect(prepared == ["phylactery_vectors_index_search_v1"])
            }
        }
    }

    @Test func aMissingOrOutdatedFunctionIsInstalledByTheNextClient() async throws {
        try await TestDatabase.withFreshDatabaseURL("memory_index_upgrade") { url in
            try await PhylacteryClient.withClient(configuration: .init(url: url, options: TestDatabase.defaultOptions)) { client in
                _ = try await Migrator(client: client, federation: try Federation(core: Federation.coreModels)).auto()
                _ = try await Self.seed(client, rows: 30)
                // What a database migrated before the function existed, or by an older version, has.
                try await client.execute("DROP FUNCTION vectors.nearest_memories")
                let gone = await #expect(throws: PhylacteryError.self) { try await client.searchMemory(try Vector([Float](repeating: 0.1, count: 384)), in: Self.space) }
                #expect(gone?.sqlState == "42883" && gone?.code == .migrationRefused, "\(String(describing: gone))")
            }
            try await PhylacteryClient.withClient(configuration: .init(url: url, options: TestDatabase.defaultOptions)) { client in
                let found = try await client.searchMemory(try Vector([Float](repeating: 0.1, count: 384)), in: Self.space)
                #expect(found.count == 10)
                #expect(try await Migrator(client: client, federation: try Federation(core: Federation.coreModels)).plan().isEmpty)
                try await client.execute(PostgresQuery(unsafeSQL: """
                    CREATE OR REPLACE FUNCTION vectors.nearest_memories(p_query vector, p_space uuid, p_dimensions integer, p_k integer,
                        p_ef_search integer, p_iterative_scan text, p_max_scan_tuples integer, p_statuses text[], p_sensitivities text[],
                        p_owner text, p_metadata jsonb)
                    RETURNS TABLE (memory_id uuid, distance double precision) LANGUAGE plpgsql AS $f$ BEGIN END; $f$
                    """))
                let replaced = try await client.searchMemory(try Vector([Float](repeating: 0.1, count: 384)), in: Self.space)
                #expect(replaced.isEmpty)
            }
            try await PhylacteryClient.withClient(configuration: .init(url: url, options: TestDatabase.defaultOptions)) { client in
                let found = try await client.searchMemory(try Vector([Float](repeating: 0.1, count: 384)), in: Self.space)
                #expect(found.count == 10)
            }
        }
    }
}
