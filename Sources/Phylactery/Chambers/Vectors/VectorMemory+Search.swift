public import Foundation
import PostgresNIO

extension VectorMemory {
    /// The entries of `space` nearest to `query`, nearest first, with their distances; with
    /// ``SearchOptions/mode`` `.hybrid`, the entries of `space` ranked by the fusion of vector
    /// distance and the full-text relevance of ``SearchOptions/text``.
    ///
    /// Memories without a vector in `space` are not searched (a memory waiting for its embedding job
    /// is found by ``search(text:options:)`` meanwhile). A space never registered has no memories.
    ///
    /// A cosine search of a dimension with an HNSW index is one statement, one round trip: it finds
    /// the space and calls the database function `vectors.nearest_memories`, which sets the scan
    /// parameters (``SearchOptions/efSearch``, ``SearchOptions/iterativeScan``,
    /// ``SearchOptions/maxScanTuples``) for its own duration before its query walks the index.
    ///
    /// - Throws: ``PhylacteryError/Code/dimensionMismatch`` when `query` does not have the space's
    ///   dimensions; ``PhylacteryError/Code/invalidArgument`` for `k` outside 1…1000, no status or
    ///   label, an `efSearch` outside 1…1000, or a text or hybrid search without text.
    public func search(_ query: Vector, in space: EmbeddingSpace, options: SearchOptions = SearchOptions()) async throws -> [Match] {
        try query.requireDimensions(space.dimensions, for: "embedding space \(space.name)")
        try Self.check(options)
        if options.mode == .text { return try await self.search(text: options.text ?? "", options: options) }
        if options.mode == .vector && Self.usesIndex(options, dimensions: space.dimensions) {
            // One statement: the space's lookup, the scan settings and the index walk together.
            let matches = try await self.matches(
                PostgresQuery(unsafeSQL: Self.indexSearchSQL, binds: try Self.indexSearchBinds(query, in: space, options: options)), space: space)
            return matches.isEmpty ? try await self.explainNoMatches(in: space) : matches
        }
        guard let record = try await self.spaceRecord(space) else { return [] }
        guard Int(record.dimensions) == space.dimensions else { throw Self.registeredWithOtherDimensions(record, space) }
        return try await self.vectorSearch(query, spaceID: record.id, dimensions: space.dimensions, options: options).map { match in
            var match = match
            match.memory.space = space
            return match
        }
    }

    /// ``search(_:in:options:)`` in the default space (``defaultSpace()``).
    ///
    /// - Throws: ``PhylacteryError/Code/notFound`` when no space is the default yet.
    public func search(_ query: Vector, options: SearchOptions = SearchOptions()) async throws -> [Match] {
        guard let space = try await self.defaultSpace() else {
            throw PhylacteryError(.notFound, "no embedding space is the default yet; remember a memory with an embedding, or name the space: search(_:in:options:)")
        }
        return try await self.search(query, in: space, options: options)
    }

    /// The entries whose content matches `text` best by full-text relevance (`ts_rank_cd`, the words
    /// OR-ed and stemmed), best first, filtered like every search; no vector and no space involved,
    /// so memories still waiting for a vector are found too. ``Match/distance`` is `.infinity`.
    public func search(text: String, options: SearchOptions = SearchOptions()) async throws -> [Match] {
        try Self.check(options)
        guard !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw PhylacteryError(.invalidArgument, "a text search needs words to look for")
        }
        try StorableText.check(text, "A search's text")
        var binds = PostgresBindings()
        binds.append(text)
        let filter = Self.filter(options, binds: &binds)
        let sql = """
            WITH q AS (SELECT \(Self.orQuery("$1")) AS query)
            SELECT \(Self.memoryColumns), NULL::vector, 'Infinity'::float8, ts_rank_cd(\(Self.textVector), q.query)::float8 AS score
            FROM vectors.memories AS m, q
            WHERE \(Self.textVector) @@ q.query AND \(filter)
            ORDER BY score DESC, m.id LIMIT \(options.k)
            """
        return try await self.matches(PostgresQuery(unsafeSQL: sql, binds: try binds.appendingMetadata(options)))
    }

    /// An exact vector search, or a hybrid one (whose vector ranking walks the index through
    /// `vectors.nearest_memories` when the space has one), of the space `spaceID`.
    func vectorSearch(_ query: Vector, spaceID: UUID, dimensions n: Int, options: SearchOptions) async throws -> [Match] {
        let usesIndex = Self.usesIndex(options, dimensions: n)
        var binds = PostgresBindings()
        binds.append(query)
        binds.append(spaceID)
        if options.mode == .hybrid {
            guard let text = options.text, !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                throw PhylacteryError(.invalidArgument, "a hybrid search needs the query's words in SearchOptions.text")
            }
            try StorableText.check(text, "A search's text")
            binds.append(text)
        }
        let candidates = options.mode == .hybrid ? max(options.k, options.fusionCandidates) : options.k
        var indexWalk: String?
        if usesIndex {
            // The filter's binds follow the scan's, so the function and the text ranking share them.
            binds.append(Int32(candidates))
            let scan = binds.count
            binds.append(Int32(options.efSearch))
            binds.append(options.iterativeScan.rawValue)
            binds.append(Int32(clamping: options.maxScanTuples))
            let statuses = binds.count + 1
            let owner = options.owner == nil ? "NULL" : "$\(statuses + 2)"
            let metadata = options.metadata == nil ? "NULL" : "$\(statuses + (options.owner == nil ? 2 : 3))"
            indexWalk = "SELECT memory_id, distance FROM " + Self.nearestCall(
                query: "$1", space: "$2", dimensions: "\(n)", k: "$\(scan)", efSearch: "$\(scan + 1)", iterativeScan: "$\(scan + 2)",
                maxScanTuples: "$\(scan + 3)", statuses: "$\(statuses)", sensitivities: "$\(statuses + 1)", owner: owner, metadata: metadata)
        }
        let filter = Self.filter(options, binds: &binds)
        let distance = "e.embedding \(options.metric.sqlOperator) $1::vector(\(n))"
        let nearestSQL = indexWalk ?? """
            SELECT m.id AS memory_id, (\(distance))::float8 AS distance
            FROM vectors.embeddings AS e JOIN vectors.memories AS m ON m.id = e.memory_id
            WHERE e.dimensions = \(n) AND e.space_id = $2 AND \(filter)
            ORDER BY \(distance) LIMIT \(candidates)
            """
        let sql: String
        switch options.mode {
        case .vector, .text:
            sql = """
                SELECT \(Self.memoryColumns), e.embedding, n.distance, -n.distance
                FROM (\(nearestSQL)) AS n JOIN vectors.memories AS m ON m.id = n.memory_id
                JOIN vectors.embeddings AS e ON e.memory_id = m.id AND e.space_id = $2
                ORDER BY n.distance, m.id
                """
        case .hybrid:
            let constant = Self.fusionConstant
            sql = """
                WITH q AS (SELECT \(Self.orQuery("$3")) AS query),
                v AS (SELECT memory_id, row_number() OVER (ORDER BY distance, memory_id) AS r FROM (\(nearestSQL)) AS n),
                t AS (
                    SELECT memory_id, row_number() OVER (ORDER BY rank DESC, memory_id) AS r FROM (
                        SELECT m.id AS memory_id, ts_rank_cd(\(Self.textVector), q.query) AS rank
                        FROM vectors.memories AS m JOIN vectors.embeddings AS e ON e.memory_id = m.id AND e.space_id = $2, q
                        WHERE \(Self.textVector) @@ q.query AND \(filter)
                        ORDER BY rank DESC, m.id LIMIT \(candidates)) AS ranked),
                fused AS (
                    SELECT coalesce(v.memory_id, t.memory_id) AS memory_id,
                           coalesce(1.0 / (\(constant) + v.r), 0) + coalesce(1.0 / (\(constant) + t.r), 0) AS score
                    FROM v FULL JOIN t ON v.memory_id = t.memory_id
                    ORDER BY score DESC, memory_id LIMIT \(options.k))
                SELECT \(Self.memoryColumns), e.embedding,
                       (e.embedding \(options.metric.sqlOperator) $1::vector)::float8 AS distance, f.score::float8
                FROM fused AS f JOIN vectors.memories AS m ON m.id = f.memory_id
                JOIN vectors.embeddings AS e ON e.memory_id = m.id AND e.space_id = $2
                ORDER BY f.score DESC, distance, m.id
                """
        }
        return try await self.matches(PostgresQuery(unsafeSQL: sql, binds: try binds.appendingMetadata(options)))
    }

    /// Reciprocal rank fusion's constant `k` (60, as in Cormack et al.): damps the weight of the top
    /// ranks so that agreement between the two rankings counts more than one first place.
    static let fusionConstant = 60

    /// The memory's columns, qualified with `m.`, in the order `Memory(row:)` reads them.
    static let memoryColumns = Memory.schema.allColumns.map { "m." + SQLIdentifier.quote($0.name) }.joined(separator: ", ")

    /// The content's tsvector, as the GIN index has it (qualified).
    static let textVector = "to_tsvector('\(Memory.textSearchConfiguration)'::regconfig, m.content)"

    /// The words of the bind `parameter` as a tsquery that matches any of them (plainto_tsquery ANDs
    /// them; its lexemes are quoted, so turning `&` into `|` touches only the operators).
    static func orQuery(_ parameter: String) -> String {
        "replace(plainto_tsquery('\(Memory.textSearchConfiguration)'::regconfig, \(parameter))::text, '&', '|')::tsquery"
    }

    /// The status, label, owner and metadata conditions on `m`; appends their binds (the metadata
    /// filter last, see ``PostgresBindings/appendingMetadata(_:)``).
    static func filter(_ options: SearchOptions, binds: inout PostgresBindings) -> String {
        binds.append(options.statuses.map(\.rawValue).sorted())
        var sql = "m.status = ANY($\(binds.count)::text[])"
        binds.append(options.sensitivities.map(\.rawValue).sorted())
        sql += " AND m.sensitivity = ANY($\(binds.count)::text[])"
        if let owner = options.owner {
            binds.append(owner)
            sql += " AND m.owner = $\(binds.count)"
        }
        if options.metadata != nil {
            sql += " AND m.metadata @> $\(binds.count + 1)::jsonb"
        }
        return sql
    }

    static func check(_ options: SearchOptions) throws {
        guard (1...1000).contains(options.k) else { throw PhylacteryError(.invalidArgument, "k must be between 1 and 1000; got \(options.k)") }
        guard (1...1000).contains(options.efSearch) else { throw PhylacteryError(.invalidArgument, "efSearch must be between 1 and 1000; got \(options.efSearch)") }
        guard options.maxScanTuples >= 1 else { throw PhylacteryError(.invalidArgument, "maxScanTuples must be positive; got \(options.maxScanTuples)") }
        guard (1...1000).contains(options.fusionCandidates) else { throw PhylacteryError(.invalidArgument, "fusionCandidates must be between 1 and 1000; got \(options.fusionCandidates)") }
        guard !options.statuses.isEmpty else { throw PhylacteryError(.invalidArgument, "a search needs at least one status") }
        guard !options.sensitivities.isEmpty else {
            throw PhylacteryError(.invalidArgument, "a search needs at least one sensitivity label the caller may see (e.g. Sensitivity.visible(upTo: .private))")
        }
    }

    /// Reads rows of the memory's columns, its vector (or NULL), the distance and the score; the
    /// memories get `space` when it is known.
    func matches(_ query: PostgresQuery, space: EmbeddingSpace? = nil) async throws -> [Match] {
        let rows: [PostgresRow]
        do {
            rows = try await self.transaction.rows(query, doing: "Searching vector memory")
        } catch let error as PhylacteryError {
            throw Self.missingFunction(error)
        }
        do {
            return try Self.decodeMatches(rows, space: space)
        } catch let error as PhylacteryError {
            throw error
        } catch {
            // A failure to decode a search's rows aborts the transaction like a failed statement.
            throw self.transaction.aborting(error, doing: "Searching vector memory", file: #fileID, line: #line)
        }
    }

    static func registeredWithOtherDimensions(_ record: EmbeddingSpaceRecord, _ space: EmbeddingSpace) -> PhylacteryError {
        PhylacteryError(.dimensionMismatch, "embedding space \(space.name) is registered with \(record.dimensions) dimensions, not \(space.dimensions); a model whose vectors changed size needs a new fingerprint")
    }
}

extension PostgresBindings {
    /// These binds with the search's metadata filter appended last (it can throw, the others cannot).
    func appendingMetadata(_ options: VectorMemory.SearchOptions) throws -> PostgresBindings {
        var binds = self
        if let metadata = options.metadata { try binds.append(metadata) }
        return binds
    }
}
