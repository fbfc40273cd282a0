import Foundation
package import Logging
package import PostgresNIO

/// The HNSW search in one statement: the database function `vectors.nearest_memories` sets the scan
/// parameters and walks the index, and the statement around it joins the memories and their vectors.
///
/// An index search needs `hnsw.ef_search`, `hnsw.iterative_scan` and `hnsw.max_scan_tuples` in effect
/// while the index is scanned. Set by a statement of their own they cost round trips (set, search,
/// restore), and folded into the search's own select list nothing guarantees they are evaluated
/// before the scan starts. Inside the function they are statements of their own that run before the
/// query that scans, and the function's `SET` clauses make PostgreSQL put the caller's values back
/// when it returns (a `set_config(…, true)` inside a function with a `SET` clause for the same
/// setting ends with the function): nothing is left behind in the caller's transaction, and nothing
/// in the session, so it is safe through a transaction pooler.
///
/// The query inside is static SQL, one branch per indexed dimension (the cast and the
/// `dimensions = n` predicate must be constants for the planner to match the partial index);
/// PL/pgSQL keeps it parsed for the life of the session, and plans it for each call's values (a
/// generic plan, with `LIMIT` unknown, would sort the whole space instead of walking the index).
extension VectorMemory {
    /// The function's name, schema-qualified.
    package static let nearestFunctionName = "vectors.nearest_memories"

    /// Its argument types, as `to_regprocedure` and `pg_proc` spell them.
    static let nearestFunctionSignature = "vectors.nearest_memories(vector,uuid,integer,integer,integer,text,integer,text[],text[],text,jsonb)"

    /// A call of the function, each argument an SQL expression (a bind, a column, `NULL`), cast to
    /// the argument's type: the one place the argument list is spelled, for the index search and
    /// the hybrid search's vector ranking.
    static func nearestCall(
        query: String, space: String, dimensions: String, k: String, efSearch: String, iterativeScan: String,
        maxScanTuples: String, statuses: String, sensitivities: String, owner: String, metadata: String
    ) -> String {
        """
        vectors.nearest_memories(\(query)::vector, \(space)::uuid, \(dimensions)::integer, \(k)::integer, \(efSearch)::integer, \
        \(iterativeScan)::text, \(maxScanTuples)::integer, \(statuses)::text[], \(sensitivities)::text[], \(owner)::text, \(metadata)::jsonb)
        """
    }

    /// The function's body: the scan settings, then the index walk of the space's vectors of one
    /// dimension, filtered like every search (status, label, owner and metadata containment, each a
    /// NULL-able argument where optional).
    static let nearestFunctionBody: String = {
        let branches = MemoryEmbedding.indexedDimensions.map { n in
            """
                WHEN \(n) THEN
                    RETURN QUERY
                    SELECT m.id, ((e.embedding::vector(\(n))) <=> p_query::vector(\(n)))::float8
                    FROM vectors.embeddings AS e JOIN vectors.memories AS m ON m.id = e.memory_id
                    WHERE e.dimensions = \(n) AND e.space_id = p_space
                      AND m.status = ANY(p_statuses) AND m.sensitivity = ANY(p_sensitivities)
                      AND (p_owner IS NULL OR m.owner = p_owner) AND (p_metadata IS NULL OR m.metadata @> p_metadata)
                    ORDER BY (e.embedding::vector(\(n))) <=> p_query::vector(\(n)) LIMIT p_k;
            """
        }.joined(separator: "\n")
        return """

            BEGIN
                PERFORM set_config('hnsw.ef_search', p_ef_search::text, true),
                        set_config('hnsw.iterative_scan', p_iterative_scan, true),
                        set_config('hnsw.max_scan_tuples', p_max_scan_tuples::text, true);
                CASE p_dimensions
            \(branches)
                ELSE
                    RAISE EXCEPTION 'vectors.nearest_memories: no HNSW index for % dimensions', p_dimensions
                        USING ERRCODE = '22023', HINT = 'search that space with exact: true';
                END CASE;
            END;

            """
    }()

    /// `vectors.nearest_memories` as the bootstrap installs it. The `SET` clauses carry pgvector's
    /// defaults; what matters is that they exist, so the body's settings end with the call. The plan
    /// cache is told to plan every call: the generic plan (`LIMIT` and the space unknown) sorts the
    /// whole space, and nothing else stops PL/pgSQL from switching to it after five calls.
    static let nearestFunction = ServerFunction(
        signature: nearestFunctionSignature,
        header: """
            CREATE OR REPLACE FUNCTION vectors.nearest_memories(
                p_query vector, p_space uuid, p_dimensions integer, p_k integer, p_ef_search integer, p_iterative_scan text,
                p_max_scan_tuples integer, p_statuses text[], p_sensitivities text[], p_owner text, p_metadata jsonb)
            RETURNS TABLE (memory_id uuid, distance double precision)
            LANGUAGE plpgsql ROWS 10
            SET hnsw.ef_search = 40 SET hnsw.iterative_scan = off SET hnsw.max_scan_tuples = 20000 SET plan_cache_mode = force_custom_plan
            """,
        settings: ["hnsw.ef_search=40", "hnsw.iterative_scan=off", "hnsw.max_scan_tuples=20000", "plan_cache_mode=force_custom_plan"],
        body: nearestFunctionBody)

    /// Creates `vectors.nearest_memories`, or replaces it when it is not this version's (see
    /// ``ServerFunction``); part of the chambers' bootstrap, after the `vector` extension (its first
    /// argument is a `vector`). The tables it reads need not exist yet: PL/pgSQL resolves them when
    /// it runs, so a database migrated by an earlier version gets the function at its next client's
    /// start, before any search.
    package static func installNearestFunction(on connection: PostgresConnection, logger: Logger) async throws {
        try await nearestFunction.install(on: connection, logger: logger) {
            // pgvector defines the hnsw.* settings when its library loads (here: by the cast's input
            // function). Before that they are placeholders, which only a superuser may name in a SET clause.
            _ = try await connection.query("SELECT vector_dims('[0]'::vector)", logger: logger).collect()
        }
    }

    // MARK: - The search statement

    /// Whether `options` in a space of `dimensions` walk an HNSW index (else the space is scanned exactly).
    static func usesIndex(_ options: SearchOptions, dimensions: Int) -> Bool {
        !options.exact && options.metric == .cosine && MemoryEmbedding.indexedDimensions.contains(dimensions)
    }

    /// The statement of a vector-mode index search, the same text for every query, space and option
    /// (all of them are binds), so a connection can keep it prepared. It finds the space by model,
    /// fingerprint and dimensions; a space not registered, or registered with other dimensions, gives
    /// no rows (the caller then tells the two apart). Binds: see ``indexSearchBinds(_:in:options:)``.
    package static let indexSearchSQL = """
        SELECT \(memoryColumns), e.embedding, n.distance, -n.distance
        FROM vectors.spaces AS s
        CROSS JOIN LATERAL \(nearestCall(
            query: "$1", space: "s.id", dimensions: "s.dimensions", k: "$5", efSearch: "$6", iterativeScan: "$7",
            maxScanTuples: "$8", statuses: "$9", sensitivities: "$10", owner: "$11", metadata: "$12")) AS n
        JOIN vectors.memories AS m ON m.id = n.memory_id
        JOIN vectors.embeddings AS e ON e.memory_id = m.id AND e.space_id = s.id
        WHERE s.model = $2 AND s.fingerprint = $3 AND s.dimensions = $4::integer
        ORDER BY n.distance, m.id
        """

    /// The SQL types of ``indexSearchSQL``'s parameters, in order (for a function that runs the same
    /// statement inside the server, as the benchmark's ceiling does).
    package static let indexSearchParameterTypes = [
        "vector", "text", "text", "integer", "integer", "integer", "text", "integer", "text[]", "text[]", "text", "jsonb",
    ]

    /// The binds of ``indexSearchSQL``: the query vector, the space's model, fingerprint and
    /// dimensions, `k`, `ef_search`, the iterative scan mode, `max_scan_tuples`, the statuses, the
    /// labels, the owner (or NULL) and the metadata filter (or NULL).
    package static func indexSearchBinds(_ query: Vector, in space: EmbeddingSpace, options: SearchOptions) throws -> PostgresBindings {
        var binds = PostgresBindings(capacity: 12)
        binds.append(query)
        binds.append(space.model)
        binds.append(space.fingerprint)
        binds.append(Int32(space.dimensions))
        binds.append(Int32(options.k))
        binds.append(Int32(options.efSearch))
        binds.append(options.iterativeScan.rawValue)
        binds.append(Int32(clamping: options.maxScanTuples))
        binds.append(options.statuses.map(\.rawValue).sorted())
        binds.append(options.sensitivities.map(\.rawValue).sorted())
        if let owner = options.owner { binds.append(owner) } else { binds.appendNull() }
        if let metadata = options.metadata { try binds.append(metadata) } else { binds.appendNull() }
        return binds
    }

    /// ``indexSearchSQL`` as a prepared statement: prepared once per connection, then only bound and
    /// executed. Used only where the client's sessions are its own (no transaction pooler, which would
    /// hand the next statement to a server session that never saw the `PREPARE`).
    struct IndexSearchStatement: PostgresPreparedStatement {
        static let name = "phylactery_vectors_index_search_v1"
        static let sql = VectorMemory.indexSearchSQL
        typealias Row = PostgresRow

        let bindings: PostgresBindings

        func makeBindings() throws -> PostgresBindings { self.bindings }
        func decodeRow(_ row: PostgresRow) throws -> PostgresRow { row }
    }

    /// Reads rows of the memory's columns, its vector (or NULL), the distance and the score; a
    /// vector search's memories get `space`.
    static func decodeMatches(_ rows: [PostgresRow], space: EmbeddingSpace?) throws -> [Match] {
        try rows.map { row in
            var reader = ModelRowReader(row)
            var memory = try Memory(row: &reader)
            memory.embedding = try reader.read(Vector?.self)
            memory.space = space
            let distance = try reader.read(Double.self)
            return Match(memory: memory, distance: distance, score: try reader.read(Double.self))
        }
    }

    /// `error`, or when it says the function does not exist (42883: a database whose clients never
    /// bootstrapped the chambers with this version), an error that says how to install it.
    static func missingFunction(_ error: PhylacteryError) -> PhylacteryError {
        guard error.sqlState == "42883", error.message.contains("nearest_memories") || error.sql?.contains("nearest_memories") == true else { return error }
        return PhylacteryError(
            .migrationRefused,
            "the database has no \(nearestFunctionName) function (or not with this version's arguments); connect once with a client that creates the chambers (the default, Options.createsChambers) so it is installed",
            sqlState: error.sqlState, underlying: error)
    }

    /// A vector search's empty result, explained: empty when the space is not registered or has no
    /// match, ``PhylacteryError/Code/dimensionMismatch`` when it is registered with other dimensions.
    func explainNoMatches(in space: EmbeddingSpace) async throws -> [Match] {
        if let record = try await self.spaceRecord(space), Int(record.dimensions) != space.dimensions {
            throw Self.registeredWithOtherDimensions(record, space)
        }
        return []
    }
}
