import Foundation
import Logging
import Phylactery
import PostgresNIO

/// `phylactery-bench vectors`: vector memory at 100,000 × 384 (or `--rows`).
///
/// Data: seeded clustered vectors (see ``Clustered``), 10% consecrated. Figures:
/// - bulk insert rate through ``VectorMemory/remember(contentsOf:)`` (memories, then their vectors in
///   `vectors.embeddings`, binary) against the same rows in the same multi-row statements with each
///   vector sent as a text literal
///   (`$n::vector`), chunk by chunk in alternation into two tables of identical shape, so both see
///   the same machine noise;
/// - the HNSW index build (the model's own index: m = 16, ef_construction = 64) after the load;
/// - recall@10 of the index search against exact search, and queries per second, without a filter
///   and with a 10% status filter (iterative index scan, relaxed order), against their ceiling: the
///   same statement looped inside the server (``serverLoop(_:in:options:)``), in alternating rounds;
/// - the same for real sentences embedded with a real model (``RealCorpus``).
struct VectorsBenchmark {
    let client: PhylacteryClient
    let logger: Logger
    let rows: Int
    /// The real-sentence corpus' folder (``RealCorpus``).
    var corpusDirectory = RealCorpus.defaultDirectory
    /// Keep the rows and index an earlier run left in the database when they are complete
    /// (`--reuse-table`): no insert or build figures then.
    var reuseTable = false
    /// Leave out the real-sentence part (`--skip-real`).
    var skipReal = false
    var results: [String: Double] = [:]

    static let dimensions = 384
    static let clusters = 50
    static let chunk = 4096
    static let queries = 100
    static let efSearch = 100
    /// Alternating rounds of ours and the server's loop (medians reported).
    static let rounds = 5
    static let space = EmbeddingSpace(model: "bench-embedder", fingerprint: "clustered-v1", dimensions: dimensions)

    /// SplitMix64 with Box–Muller: the same numbers on every run and machine.
    struct Generator {
        var state: UInt64
        var spare: Double?
        mutating func uniform() -> Double {
            self.state &+= 0x9E37_79B9_7F4A_7C15
            var z = self.state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return (Double((z ^ (z >> 31)) >> 11) + 0.5) / Double(1 << 53)
        }
        mutating func gaussian() -> Double {
            if let spare { self.spare = nil; return spare }
            let r = (-2 * log(self.uniform())).squareRoot(), theta = 2 * Double.pi * self.uniform()
            self.spare = r * sin(theta)
            return r * cos(theta)
        }
    }

    /// Points around 50 centres (each component N(0, 1)), spread along a shared 16-dimensional latent
    /// basis (scale 0.8) plus small noise in every dimension (σ 0.05): clustered, with the low
    /// intrinsic dimension real embeddings have. (Isotropic noise in all 384 dimensions would make
    /// every neighbour nearly equidistant, which no embedding model produces.)
    struct Clustered {
        static let latentDimensions = 16
        var generator: Generator
        let centres: [[Float]]
        let basis: [[Float]]
        init(seed: UInt64) {
            var fixed = Generator(state: 0x5EED)
            let d = VectorsBenchmark.dimensions
            self.centres = (0..<VectorsBenchmark.clusters).map { _ in (0..<d).map { _ in Float(fixed.gaussian()) } }
            let scale = 1 / Double(Self.latentDimensions).squareRoot()
            self.basis = (0..<Self.latentDimensions).map { _ in (0..<d).map { _ in Float(fixed.gaussian() * scale) } }
            self.generator = Generator(state: seed)
        }
        mutating func next() throws -> Vector {
            var point = self.centres[Int(self.generator.uniform() * Double(self.centres.count))]
            for direction in self.basis {
                // Basis rows have norm² ≈ 384/16, so the spread's norm² ≈ 16 · 24 · 0.64 ≈ 250 against a centre's ≈ 384.
                let z = Float(self.generator.gaussian() * 0.8)
                for i in point.indices { point[i] += z * direction[i] }
            }
            for i in point.indices { point[i] += Float(self.generator.gaussian() * 0.05) }
            return try Vector(point)
        }
    }

    mutating func run() async throws {
        line("Vector memory: \(rows) rows × \(Self.dimensions) dimensions, \(Self.clusters) seeded clusters (\(Clustered.latentDimensions)-dimensional spread, small noise), 10% consecrated")
        let migrator = Migrator(client: self.client, federation: try Federation(core: Federation.coreModels))
        try await migrator.auto(message: "bench vectors")
        if self.reuseTable, try await self.loadedAlready(migrator) {
            line("Reusing the \(rows) rows and the HNSW index an earlier run loaded (--reuse-table): no insert or build figures")
        } else {
            if self.reuseTable { try await self.client.execute("TRUNCATE vectors.memories, vectors.spaces CASCADE") }
            try await self.load(migrator)
        }
        try await self.searches()
        if self.skipReal {
            line("Real sentences: left out (--skip-real)")
        } else {
            try await self.runRealCorpus(directory: self.corpusDirectory)
        }
    }

    /// Whether the database holds the seeded rows of `rows` with the model's HNSW index over them
    /// (what a run with the same `--rows` leaves, unless its real-sentence part emptied the table).
    func loadedAlready(_ migrator: Migrator) async throws -> Bool {
        let counted = try await self.client.count(MemoryEmbedding.self)
        let memories = try await self.client.count(Memory.self)
        let spaces = try await self.client.fetch(EmbeddingSpaceRecord.self)
        guard counted == rows, memories == rows, spaces.count == 1, spaces[0].space == Self.space else { return false }
        return try await migrator.plan().isEmpty
    }

    /// Loads the seeded rows (binary and text-literal paths in alternation) and builds the index.
    mutating func load(_ migrator: Migrator) async throws {
        let index = MemoryEmbedding.hnswIndexName(dimensions: Self.dimensions)
        // Load first, index afterwards (how a bulk import is done); the copies for the text path have
        // the same columns, constraints, foreign keys and remaining indexes.
        try await self.client.execute(PostgresQuery(unsafeSQL: "DROP INDEX vectors.\(index)"))
        try await self.client.execute("DROP TABLE IF EXISTS vectors.embeddings_text")
        try await self.client.execute("DROP TABLE IF EXISTS vectors.memories_text")
        try await self.client.execute("CREATE TABLE vectors.memories_text (LIKE vectors.memories INCLUDING ALL)")
        try await self.client.execute("CREATE TABLE vectors.embeddings_text (LIKE vectors.embeddings INCLUDING ALL)")
        // The foreign keys the binary path's vectors are checked against, so both paths pay for them.
        try await self.client.execute("ALTER TABLE vectors.embeddings_text ADD FOREIGN KEY (memory_id) REFERENCES vectors.memories_text (id), ADD FOREIGN KEY (space_id) REFERENCES vectors.spaces (id)")
        let spaceID = try await self.client.transaction { tx in try await tx.memory.register(Self.space).id }

        // Insert: alternate chunks, binary then text, each chunk in its own transaction.
        var data = Clustered(seed: 1)
        var binarySeconds = 0.0, textSeconds = 0.0
        var inserted = 0
        var chunkNumber = 0
        while inserted < rows {
            let count = min(Self.chunk, rows - inserted)
            var memories: [Memory] = []
            memories.reserveCapacity(count)
            for i in inserted..<(inserted + count) {
                memories.append(try Memory(content: "memory \(i)", embedding: try data.next(), space: Self.space,
                                           status: i % 10 == 0 ? .consecrated : .speculative, owner: "bench", source: "generator"))
            }
            // Alternate which path goes first, so neither always follows the other's checkpoint work.
            let binaryFirst = chunkNumber % 2 == 0
            for path in binaryFirst ? [true, false] : [false, true] {
                let start = ContinuousClock.now
                if path {
                    try await self.client.transaction { tx in _ = try await tx.memory.remember(contentsOf: memories) }
                    binarySeconds += Measure.seconds(ContinuousClock.now - start)
                } else {
                    try await self.insertAsText(memories, spaceID: spaceID)
                    textSeconds += Measure.seconds(ContinuousClock.now - start)
                }
            }
            inserted += count
            chunkNumber += 1
        }
        let binaryRate = Double(rows) / binarySeconds, textRate = Double(rows) / textSeconds
        line("Bulk insert: binary \(Int(binaryRate)) rows/s, text literals \(Int(textRate)) rows/s → \(String(format: "%.2f", binaryRate / textRate))× (chunks of \(Self.chunk) rows, alternating)")
        try await self.client.execute("DROP TABLE vectors.embeddings_text")
        try await self.client.execute("DROP TABLE vectors.memories_text")
        let counted = try await self.client.count(MemoryEmbedding.self)
        guard counted == rows else { throw PhylacteryError(.queryFailed, "benchmark: \(counted) rows stored, \(rows) expected") }

        // The model's own HNSW index, built over the loaded rows.
        let ddl = MemoryEmbedding.hnswIndex(dimensions: Self.dimensions)
        let parameters = ddl.parameters.keys.sorted().map { "\($0) = \(ddl.parameters[$0]!)" }.joined(separator: ", ")
        let buildStart = ContinuousClock.now
        try await self.client.transaction { tx in
            try await tx.execute("SET LOCAL maintenance_work_mem = '1GB'")
            try await tx.execute("SET LOCAL max_parallel_maintenance_workers = 1")
            try await tx.execute(PostgresQuery(unsafeSQL: """
                CREATE INDEX \(index) ON vectors.embeddings USING hnsw (((embedding)::vector(\(Self.dimensions))) vector_cosine_ops)
                WITH (\(parameters)) WHERE dimensions = \(Self.dimensions)
                """))
        }
        let buildSeconds = Measure.seconds(ContinuousClock.now - buildStart)
        try await self.client.execute("ANALYZE vectors.memories")
        try await self.client.execute("ANALYZE vectors.embeddings")
        guard try await migrator.plan().isEmpty else {
            throw PhylacteryError(.migrationFailed, "benchmark: the rebuilt index differs from the model's")
        }
        line("HNSW build (\(parameters), maintenance_work_mem 1GB, 1 parallel worker): \(String(format: "%.1f", buildSeconds)) s")

        self.results["binary_insert_rows_per_s"] = binaryRate.rounded()
        self.results["text_insert_rows_per_s"] = textRate.rounded()
        self.results["binary_vs_text"] = binaryRate / textRate
        self.results["hnsw_build_s"] = buildSeconds
    }

    /// recall@10, queries per second and their ceiling, unfiltered and with the 10% status filter.
    mutating func searches() async throws {
        // Queries from the same distribution, another seed.
        var queryData = Clustered(seed: 2)
        let queries = try (0..<Self.queries).map { _ in try queryData.next() }
        let all = VectorMemory.SearchOptions(k: 10, efSearch: Self.efSearch)
        let consecrated = VectorMemory.SearchOptions(k: 10, statuses: [.consecrated], efSearch: Self.efSearch)
        let unfiltered = try await self.measure(queries, in: Self.space, options: all, label: "unfiltered")
        let filtered = try await self.measure(queries, in: Self.space, options: consecrated, label: "10% status filter")

        let ddl = MemoryEmbedding.hnswIndex(dimensions: Self.dimensions)
        self.results["rows"] = Double(rows)
        self.results["dimensions"] = Double(Self.dimensions)
        self.results["hnsw_m"] = Double(ddl.parameters["m"]!)!
        self.results["hnsw_ef_construction"] = Double(ddl.parameters["ef_construction"]!)!
        self.results["ef_search"] = Double(Self.efSearch)
        self.results["recall10"] = unfiltered.recall
        self.results["recall10_filtered"] = filtered.recall
        self.results["qps"] = unfiltered.qps
        self.results["qps_filtered"] = filtered.qps
        self.results["exact_qps"] = unfiltered.exactQPS
        self.results["exact_qps_filtered"] = filtered.exactQPS
        self.results["qps_in_transaction"] = unfiltered.transactionQPS
        self.results["qps_filtered_in_transaction"] = filtered.transactionQPS
        self.results["server_qps"] = unfiltered.serverQPS
        self.results["server_qps_filtered"] = filtered.serverQPS
        self.results["qps_vs_server"] = unfiltered.vsServer
        self.results["qps_filtered_vs_server"] = filtered.vsServer
        self.results["server_recall10"] = unfiltered.serverRecall
        self.results["server_recall10_filtered"] = filtered.serverRecall
        self.results["server_same_ids"] = unfiltered.sameIDs
        self.results["server_same_ids_filtered"] = filtered.sameIDs
    }

    /// What ``measure(_:in:options:label:)`` finds for one set of options.
    struct SearchFigures {
        /// recall@10 of our search against exact search.
        var recall: Double
        /// Queries per second of ``PhylacteryClient/searchMemory(_:in:options:)`` (one round trip
        /// each), median of the rounds.
        var qps: Double
        /// The same searches each in a transaction of its own (`client.transaction { tx in
        /// tx.memory.search(…) }`: BEGIN, the search, COMMIT), median of the rounds.
        var transactionQPS: Double
        /// Exact search, for scale.
        var exactQPS: Double
        /// The ceiling: the same statement run for every query inside the server (``serverLoop(_:in:options:)``).
        var serverQPS: Double
        /// Median of the rounds' ratios ours ÷ server.
        var vsServer: Double
        /// recall@10 of the server's loop against exact search.
        var serverRecall: Double
        /// The fraction of queries for which the server's loop found exactly our ids.
        var sameIDs: Double
    }

    /// recall@10 against exact search, and queries per second of the index search (one connection,
    /// one query at a time) against its ceiling inside the server, in alternating rounds: ours (one
    /// round trip per search), the server's loop over the same queries, ours in a transaction each.
    func measure(_ queries: [Vector], in space: EmbeddingSpace, options: VectorMemory.SearchOptions, label: String) async throws -> SearchFigures {
        var exactOptions = options
        exactOptions.exact = true
        var truth: [Set<UUID>] = []
        let exactStart = ContinuousClock.now
        for query in queries {
            let hits = try await self.client.transaction { tx in try await tx.memory.search(query, in: space, options: exactOptions) }
            truth.append(Set(hits.map(\.memory.id)))
        }
        let exactQPS = Double(queries.count) / Measure.seconds(ContinuousClock.now - exactStart)
        try await self.createServerLoop()
        for query in queries.prefix(10) {  // warm-up
            blackHole(try await self.client.searchMemory(query, in: space, options: options))
            blackHole(try await self.client.transaction { tx in try await tx.memory.search(query, in: space, options: options) })
        }
        blackHole(try await self.serverLoop(queries, in: space, options: options))

        var ours: [[UUID]] = [], server: [[UUID]] = []
        var rates: [Double] = [], serverRates: [Double] = [], transactionRates: [Double] = [], ratios: [Double] = []
        for _ in 0..<Self.rounds {
            var hits: [[UUID]] = []
            let start = ContinuousClock.now
            for query in queries {
                hits.append(try await self.client.searchMemory(query, in: space, options: options).map(\.memory.id))
            }
            let rate = Double(queries.count) / Measure.seconds(ContinuousClock.now - start)
            let loop = try await self.serverLoop(queries, in: space, options: options)
            let transactionStart = ContinuousClock.now
            for query in queries {
                blackHole(try await self.client.transaction { tx in try await tx.memory.search(query, in: space, options: options) })
            }
            transactionRates.append(Double(queries.count) / Measure.seconds(ContinuousClock.now - transactionStart))
            rates.append(rate)
            serverRates.append(Double(queries.count) / loop.seconds)
            ratios.append(rate * loop.seconds / Double(queries.count))
            (ours, server) = (hits, loop.ids)
        }
        func recall(_ found: [[UUID]]) -> Double {
            let hits = zip(truth, found).map { $0.intersection($1).count }.reduce(0, +)
            return Double(hits) / Double(max(truth.map(\.count).reduce(0, +), 1))
        }
        let same = zip(ours, server).filter { Set($0) == Set($1) }.count
        let figures = SearchFigures(
            recall: recall(ours), qps: Measure.median(rates), transactionQPS: Measure.median(transactionRates), exactQPS: exactQPS,
            serverQPS: Measure.median(serverRates), vsServer: Measure.median(ratios), serverRecall: recall(server),
            sameIDs: Double(same) / Double(queries.count))
        line("Search, \(label): recall@10 \(String(format: "%.3f", figures.recall)) against exact, \(String(format: "%.0f", figures.qps)) queries/s "
            + "(ef_search \(options.efSearch), iterative scan \(options.iterativeScan.rawValue); one round trip each), "
            + "\(String(format: "%.0f", figures.transactionQPS)) in a transaction each; exact search \(String(format: "%.1f", exactQPS)) queries/s")
        line("  ceiling, the same statement looped inside the server: \(String(format: "%.0f", figures.serverQPS)) queries/s, recall@10 "
            + "\(String(format: "%.3f", figures.serverRecall)), the same ids as ours for \(same) of \(queries.count) queries → ours \(String(format: "%.2f", figures.vsServer)) of it "
            + "(median of \(Self.rounds) alternating rounds)")
        return figures
    }

    /// The text-literal baseline: the same rows and statement shapes as `remember(contentsOf:)` (the
    /// memories, then their vectors), the vector bound as text and cast by the server (`$n::vector`).
    func insertAsText(_ memories: [Memory], spaceID: UUID) async throws {
        let perRow = 9
        var sql = "INSERT INTO vectors.memories_text (id, content, metadata, status, owner, source, sensitivity, status_changed_by, status_changed_at) VALUES "
        sql.reserveCapacity(memories.count * perRow * 9)
        var binds = PostgresBindings(capacity: memories.count * perRow)
        for (row, memory) in memories.enumerated() {
            let base = row * perRow
            if row > 0 { sql += ", " }
            sql += "(" + (1...perRow).map { "$\(base + $0)" }.joined(separator: ", ") + ")"
            binds.append(memory.id)
            binds.append(memory.content)
            try binds.append(memory.metadata)
            binds.append(memory.status.rawValue)
            binds.append(memory.owner)
            binds.append(memory.source)
            binds.append((memory.sensitivity ?? .private).rawValue)
            binds.appendNull()
            binds.appendNull()
        }
        let perVector = 4
        var vectorSQL = "INSERT INTO vectors.embeddings_text (id, memory_id, space_id, dimensions, embedding) VALUES "
        var vectorBinds = PostgresBindings(capacity: memories.count * perVector)
        for (row, memory) in memories.enumerated() {
            guard let embedding = memory.embedding else { continue }
            let base = row * perVector
            if row > 0 { vectorSQL += ", " }
            vectorSQL += "(uuidv7(), $\(base + 1), $\(base + 2), $\(base + 3), $\(base + 4)::vector)"
            vectorBinds.append(memory.id)
            vectorBinds.append(spaceID)
            vectorBinds.append(Int32(embedding.dimensions))
            vectorBinds.append(embedding.literal)
        }
        let query = PostgresQuery(unsafeSQL: sql, binds: binds), vectorQuery = PostgresQuery(unsafeSQL: vectorSQL, binds: vectorBinds)
        try await self.client.transaction { tx in
            try await tx.execute(query)
            try await tx.execute(vectorQuery)
        }
    }
}
