public import Foundation
import PostgresNIO

/// The vectors chamber: semantic memory with a trust status, searched by similarity.
///
/// Reached through a transaction (``Transaction/memory``), so memories commit or roll back with
/// the rest of a unit of work:
///
/// ```swift
/// let space = EmbeddingSpace(model: "all-MiniLM-L6-v2", fingerprint: "v1", dimensions: 384)
/// try await client.transaction { tx in
///     let entry = try await tx.memory.remember(Memory(content: "the gateway is flaky", embedding: vector,
///                                                     space: space, owner: "core", source: "chat"))
///     try await tx.memory.consecrate(entry.id, by: "operator")
///     let nearest = try await tx.memory.search(query, in: space, options: .init(k: 5, statuses: [.consecrated]))
/// }
/// ```
///
/// **Searches** are scoped to one ``EmbeddingSpace`` and filtered by status, owner and metadata.
/// Cosine searches of an indexed dimension (``Memory/indexedDimensions``) use the HNSW index with
/// pgvector 0.8's iterative index scans, so a selective filter still returns `k` rows: the settings
/// are made with `set_config(…, true)` (what `SET LOCAL` does) inside the search's transaction right
/// before the query, where they take effect, and put back right after it, so the rest of a caller's
/// transaction is unaffected. Other metrics and dimensions, and ``SearchOptions/exact``, scan exactly.
public struct VectorMemory: Sendable {
    let transaction: Transaction

    /// A distance function.
    public enum Metric: String, Sendable, Hashable, CaseIterable {
        /// Cosine distance (`<=>`), from 0 (same direction) to 2. The HNSW indexes use it.
        case cosine
        /// Euclidean distance (`<->`).
        case l2
        /// Negative inner product (`<#>`): smaller is more similar.
        case innerProduct = "inner_product"

        var sqlOperator: String {
            switch self {
            case .cosine: "<=>"
            case .l2: "<->"
            case .innerProduct: "<#>"
            }
        }
    }

    /// pgvector's `hnsw.iterative_scan`.
    public enum IterativeScan: String, Sendable, Hashable, CaseIterable {
        /// One pass of `ef_search` candidates: a selective filter can leave fewer than `k` rows.
        case off
        /// Scans on until `k` rows pass the filter; rows are re-sorted by distance afterwards.
        case relaxedOrder = "relaxed_order"
        /// Scans on until `k` rows pass the filter, in exact distance order.
        case strictOrder = "strict_order"
    }

    /// What a search returns and how it runs.
    public struct SearchOptions: Sendable, Hashable {
        /// How many neighbours at most.
        public var k: Int
        /// Only entries with one of these statuses.
        public var statuses: Set<MemoryStatus>
        /// Only entries of this owner, when set.
        public var owner: String?
        /// Only entries whose metadata contains this JSON (`metadata @> filter`), when set.
        public var metadata: RawJSONB?
        /// The distance function.
        public var metric: Metric
        /// Exact search (a scan of the space, no index): for small sets and to measure recall.
        public var exact: Bool
        /// `hnsw.ef_search`: candidates per index pass; more is slower and more accurate.
        public var efSearch: Int
        /// `hnsw.iterative_scan`.
        public var iterativeScan: IterativeScan
        /// `hnsw.max_scan_tuples`: how many index tuples an iterative scan visits at most (pgvector's default 20,000).
        public var maxScanTuples: Int

        /// Search options; the defaults return the 10 nearest speculative or consecrated entries by cosine.
        public init(
            k: Int = 10, statuses: Set<MemoryStatus> = [.speculative, .consecrated], owner: String? = nil, metadata: RawJSONB? = nil,
            metric: Metric = .cosine, exact: Bool = false, efSearch: Int = 100, iterativeScan: IterativeScan = .relaxedOrder,
            maxScanTuples: Int = 20_000
        ) {
            self.k = k
            self.statuses = statuses
            self.owner = owner
            self.metadata = metadata
            self.metric = metric
            self.exact = exact
            self.efSearch = efSearch
            self.iterativeScan = iterativeScan
            self.maxScanTuples = maxScanTuples
        }
    }

    /// One search result.
    public struct Match: Sendable, Hashable {
        /// The entry.
        public var memory: Memory
        /// Its distance from the query under the search's metric.
        public var distance: Double
        /// The entry's trust status.
        public var status: MemoryStatus { self.memory.status }
    }

    /// How many entries one space holds with one status.
    public struct Count: Sendable, Hashable {
        /// The embedding space.
        public var space: EmbeddingSpace
        /// The status counted.
        public var status: MemoryStatus
        /// How many entries.
        public var count: Int
    }

    // MARK: - Writing

    /// Stores one entry and returns it as stored.
    @discardableResult
    public func remember(_ memory: Memory) async throws -> Memory {
        try Self.check(memory)
        return try await self.transaction.insert(memory)
    }

    /// Stores many entries with multi-row inserts (vectors in binary format); returns how many.
    @discardableResult
    public func remember(contentsOf memories: [Memory]) async throws -> Int {
        for memory in memories { try Self.check(memory) }
        return try await self.transaction.insert(contentsOf: memories)
    }

    /// Marks an entry verified, recording who did it and when.
    @discardableResult
    public func consecrate(_ id: UUID, by actor: String) async throws -> Memory {
        try await self.setStatus(.consecrated, of: id, by: actor)
    }

    /// Marks an entry wrong, recording who did it and when. It stays stored, out of default searches.
    @discardableResult
    public func reject(_ id: UUID, by actor: String) async throws -> Memory {
        try await self.setStatus(.rejected, of: id, by: actor)
    }

    /// Deletes an entry; returns whether it existed.
    @discardableResult
    public func forget(_ id: UUID) async throws -> Bool {
        try await self.transaction.delete(Memory.self, id: id)
    }

    /// Every status change of an entry, oldest first (empty when its status never changed or it
    /// does not exist).
    public func statusHistory(of id: UUID) async throws -> [MemoryStatusChange] {
        try await self.transaction.fetch(MemoryStatusChange.self, where: "memory_id = \(id)", orderBy: "created_at, id")
    }

    /// One page of an entry's status changes, oldest first: at most `limit` of them, after the first
    /// `offset`. ``statusChangeCount(of:)`` tells how many there are.
    ///
    /// - Throws: ``PhylacteryError/Code/invalidArgument`` for a negative `offset` or `limit`.
    public func statusHistory(of id: UUID, offset: Int, limit: Int) async throws -> [MemoryStatusChange] {
        guard offset >= 0, limit >= 0 else {
            throw PhylacteryError(.invalidArgument, "offset and limit must not be negative; got \(offset) and \(limit)")
        }
        return try await self.transaction.models("""
            SELECT \(unescaped: ModelSQL.selectList(MemoryStatusChange.schema)) FROM \(unescaped: ModelSQL.table(MemoryStatusChange.schema))
            WHERE memory_id = \(id) ORDER BY created_at, id LIMIT \(limit) OFFSET \(offset)
            """, as: MemoryStatusChange.self, file: #fileID, line: #line)
    }

    /// How many status changes an entry has (0 when it has none or does not exist).
    public func statusChangeCount(of id: UUID) async throws -> Int {
        try await self.transaction.count(MemoryStatusChange.self, where: "memory_id = \(id)")
    }

    /// Changes the status and appends the change to `vectors.status_changes` in one statement: the
    /// row is locked first, so the logged previous status is the one this change replaced.
    func setStatus(_ status: MemoryStatus, of id: UUID, by actor: String) async throws -> Memory {
        guard !actor.isEmpty else {
            throw PhylacteryError(.invalidArgument, "a status change needs the name of who made it")
        }
        try StorableText.check(actor, "The name of who changed the memory's status")
        let rows = try await self.transaction.models(PostgresQuery(unsafeSQL: """
            WITH previous AS (SELECT id, status FROM vectors.memories WHERE id = $3 FOR UPDATE),
            changed AS (
                UPDATE vectors.memories AS m SET status = $1, status_changed_by = $2, status_changed_at = now(), updated_at = now()
                FROM previous WHERE m.id = previous.id
                RETURNING m.*, previous.status AS previous_status),
            logged AS (
                INSERT INTO vectors.status_changes (id, memory_id, from_status, to_status, changed_by)
                SELECT $4, id, previous_status, status, $2 FROM changed)
            SELECT \(ModelSQL.selectList(Memory.schema)) FROM changed
            """, binds: Self.binds(status.rawValue, actor, id, UUID.v7())), as: Memory.self, file: #fileID, line: #line)
        guard let memory = rows.first else {
            throw PhylacteryError(.notFound, "no memory has id \(id); nothing was changed")
        }
        return memory
    }

    static func check(_ memory: Memory) throws {
        try memory.embedding.requireDimensions(Int(memory.dimensions), for: "memory \(memory.id)'s space")
        guard !memory.embeddingModel.isEmpty, !memory.spaceFingerprint.isEmpty else {
            throw PhylacteryError(.invalidArgument, "a memory needs an embedding model name and a space fingerprint")
        }
    }

    // MARK: - Searching

    /// The entries of `space` nearest to `query`, nearest first, with their distances.
    ///
    /// - Throws: ``PhylacteryError/Code/dimensionMismatch`` when `query` does not have the space's
    ///   dimensions; ``PhylacteryError/Code/invalidArgument`` for `k` outside 1…1000, no status,
    ///   or an `efSearch` outside 1…1000.
    public func search(_ query: Vector, in space: EmbeddingSpace, options: SearchOptions = SearchOptions()) async throws -> [Match] {
        try query.requireDimensions(space.dimensions, for: "embedding space \(space.model)@\(space.fingerprint)")
        guard (1...1000).contains(options.k) else { throw PhylacteryError(.invalidArgument, "k must be between 1 and 1000; got \(options.k)") }
        guard (1...1000).contains(options.efSearch) else { throw PhylacteryError(.invalidArgument, "efSearch must be between 1 and 1000; got \(options.efSearch)") }
        guard options.maxScanTuples >= 1 else { throw PhylacteryError(.invalidArgument, "maxScanTuples must be positive; got \(options.maxScanTuples)") }
        guard !options.statuses.isEmpty else { throw PhylacteryError(.invalidArgument, "a search needs at least one status") }

        let n = space.dimensions
        let usesIndex = !options.exact && options.metric == .cosine && Memory.indexedDimensions.contains(n)
        var binds = PostgresBindings()
        binds.append(query)
        binds.append(space.model)
        binds.append(space.fingerprint)
        binds.append(options.statuses.map(\.rawValue).sorted())
        // The expression must match the partial index's key for the index to be used; the exact path
        // compares the column itself, which no index covers.
        let column = usesIndex ? "(embedding::vector(\(n)))" : "embedding"
        var sql = """
            SELECT \(ModelSQL.selectList(Memory.schema)), (\(column) \(options.metric.sqlOperator) $1::vector(\(n)))::float8 AS distance
            FROM vectors.memories
            WHERE dimensions = \(n) AND embedding_model = $2 AND space_fingerprint = $3 AND status = ANY($4::text[])
            """
        if let owner = options.owner {
            binds.append(owner)
            sql += " AND owner = $\(binds.count)"
        }
        if let metadata = options.metadata {
            try binds.append(metadata)
            sql += " AND metadata @> $\(binds.count)"
        }
        sql += " ORDER BY \(column) \(options.metric.sqlOperator) $1::vector(\(n)) LIMIT \(options.k)"
        // relaxed_order may hand rows back slightly out of order: sort the k rows again.
        sql = "SELECT * FROM (\(sql)) AS nearest ORDER BY distance"

        let restore = usesIndex ? try await self.applyScanSettings(options) : nil
        let matches = try await self.matches(PostgresQuery(unsafeSQL: sql, binds: binds))
        if let restore { try await self.transaction.execute(restore) }
        return matches
    }

    /// Sets `hnsw.ef_search`, `hnsw.iterative_scan` and `hnsw.max_scan_tuples` for the rest of the
    /// transaction (`set_config(…, true)`, i.e. `SET LOCAL`) and returns the statement that puts the
    /// previous values back.
    func applyScanSettings(_ options: SearchOptions) async throws -> PostgresQuery {
        // Reading the old values in the statement that sets the new ones: a select list is evaluated
        // left to right. `current_setting(…, true)` is NULL before pgvector's library is loaded.
        let rows = try await self.transaction.rows(PostgresQuery(unsafeSQL: """
            SELECT COALESCE(current_setting('hnsw.ef_search', true), '40'),
                   COALESCE(current_setting('hnsw.iterative_scan', true), 'off'),
                   COALESCE(current_setting('hnsw.max_scan_tuples', true), '20000'),
                   set_config('hnsw.ef_search', $1, true), set_config('hnsw.iterative_scan', $2, true),
                   set_config('hnsw.max_scan_tuples', $3, true)
            """, binds: Self.binds(String(options.efSearch), options.iterativeScan.rawValue, String(options.maxScanTuples))),
            doing: "Setting the HNSW scan parameters")
        var old = ("40", "off", "20000")
        for row in rows {
            do {
                let (ef, scan, tuples, _, _, _) = try row.decode((String, String, String, String, String, String).self)
                old = (ef, scan, tuples)
            } catch {
                throw self.transaction.aborting(error, doing: "Setting the HNSW scan parameters", file: #fileID, line: #line)
            }
        }
        return PostgresQuery(unsafeSQL: """
            SELECT set_config('hnsw.ef_search', $1, true), set_config('hnsw.iterative_scan', $2, true),
                   set_config('hnsw.max_scan_tuples', $3, true)
            """, binds: Self.binds(old.0, old.1, old.2))
    }

    func matches(_ query: PostgresQuery) async throws -> [Match] {
        try await self.transaction.rows(query, doing: "Searching vector memory").map { row in
            var reader = ModelRowReader(row)
            do {
                let memory = try Memory(row: &reader)
                return Match(memory: memory, distance: try reader.read(Double.self))
            } catch let error as PhylacteryError {
                throw error
            } catch {
                throw self.transaction.aborting(error, doing: "Searching vector memory", file: #fileID, line: #line)
            }
        }
    }

    // MARK: - Counting

    /// Entry counts per space and status.
    public func stats() async throws -> [Count] {
        let rows = try await self.transaction.rows("""
            SELECT embedding_model, space_fingerprint, dimensions, status, count(*)::int8
            FROM vectors.memories GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
            """, doing: "Counting vector memory")
        var result: [Count] = []
        for row in rows {
            let (model, fingerprint, dimensions, status, count): (String, String, Int32, String, Int64)
            do {
                (model, fingerprint, dimensions, status, count) = try row.decode((String, String, Int32, String, Int64).self)
            } catch {
                throw self.transaction.aborting(error, doing: "Counting vector memory", file: #fileID, line: #line)
            }
            guard let status = MemoryStatus(rawValue: status) else { continue }
            result.append(Count(space: EmbeddingSpace(model: model, fingerprint: fingerprint, dimensions: Int(dimensions)), status: status, count: Int(count)))
        }
        return result
    }

    static func binds(_ values: any PostgresNonThrowingEncodable...) -> PostgresBindings {
        var binds = PostgresBindings(capacity: values.count)
        for value in values { binds.append(value) }
        return binds
    }
}

extension Transaction {
    /// The vectors chamber, inside this transaction.
    public var memory: VectorMemory { VectorMemory(transaction: self) }
}
