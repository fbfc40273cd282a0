public import Foundation
import PostgresNIO

/// The vectors chamber: semantic memory with a trust status and a sensitivity label, searched by
/// similarity, by words, or both.
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
/// **The memory lifecycle.** A memory is stored first (``remember(_:)``), with its vector when the
/// caller has one, or with an embedding job (``remember(_:embedLater:)``) that the daemon's embedder
/// runs later (``EmbedMemories``); it is verified or refuted (``consecrate(_:by:)``,
/// ``reject(_:by:)``); and it is forgotten on request (``forget(_:by:reason:)``), leaving an audit
/// record without content (``ForgottenMemory``).
///
/// **Embedding spaces** are data (``EmbeddingSpaceRecord``): a memory has at most one vector per
/// space, and several spaces can hold vectors of one memory at once, so a new model can embed
/// everything (``requestEmbeddings(in:)``, ``coverage(of:)``) before the default space is switched
/// (``switchDefaultSpace(to:force:)``) and the old one dropped (``dropSpace(_:)``).
///
/// **Searches** are scoped to one space (given, or the default one) and ignore memories without a
/// vector there; they filter by status, owner, metadata and sensitivity label. Cosine searches of
/// an indexed dimension (``MemoryEmbedding/indexedDimensions``) use the HNSW index with pgvector
/// 0.8's iterative index scans, so a selective filter still returns `k` rows. Such a search is one
/// statement: the database function `vectors.nearest_memories` makes the settings with
/// `set_config(…, true)` before its query scans, and its `SET` clauses put the caller's values back
/// when it returns, so the rest of a caller's transaction is unaffected (see
/// ``search(_:in:options:)``; ``PhylacteryClient/searchMemory(_:in:options:file:line:)`` runs it
/// without a transaction). Other metrics and dimensions, and ``SearchOptions/exact``, scan
/// exactly. ``SearchOptions/mode`` selects full-text or hybrid search (reciprocal rank fusion of the
/// vector and the text ranking, in one statement).
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

    /// What a search ranks by.
    public enum SearchMode: String, Sendable, Hashable, CaseIterable {
        /// Vector distance in the search's space only.
        case vector
        /// Full-text relevance of ``SearchOptions/text`` only (`ts_rank_cd` over the content's
        /// tsvector; the words are OR-ed, stemmed by ``Memory/textSearchConfiguration``). The query
        /// vector is not used.
        case text
        /// Both, fused by reciprocal rank fusion (`1/(60 + rank)` summed over the two rankings) in one
        /// statement: a memory that is near *and* names the query's words comes first, and an exact
        /// word (an error code, a name) lifts a memory the vector alone ranks low.
        case hybrid
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
        /// Only entries with one of these labels: the labels the caller may see. The default,
        /// `Sensitivity.visible(upTo: .private)`, is what the daemon's own user may see; `secret`
        /// entries are returned only to a caller that asks for them, so a search that forgets to say
        /// never reads a secret aloud.
        public var sensitivities: Set<Sensitivity>
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
        /// What to rank by; ``SearchMode/text`` and ``SearchMode/hybrid`` need ``text``.
        public var mode: SearchMode
        /// The query's words, for text and hybrid searches.
        public var text: String?
        /// How many candidates each ranking contributes to a hybrid fusion (at least `k`).
        public var fusionCandidates: Int

        /// Search options; the defaults return the 10 nearest speculative or consecrated entries by
        /// cosine that a caller seeing labels up to `private` may see.
        public init(
            k: Int = 10, statuses: Set<MemoryStatus> = [.speculative, .consecrated], owner: String? = nil, metadata: RawJSONB? = nil,
            sensitivities: Set<Sensitivity> = Sensitivity.visible(upTo: .private),
            metric: Metric = .cosine, exact: Bool = false, efSearch: Int = 100, iterativeScan: IterativeScan = .relaxedOrder,
            maxScanTuples: Int = 20_000, mode: SearchMode = .vector, text: String? = nil, fusionCandidates: Int = 50
        ) {
            self.k = k
            self.statuses = statuses
            self.owner = owner
            self.metadata = metadata
            self.sensitivities = sensitivities
            self.metric = metric
            self.exact = exact
            self.efSearch = efSearch
            self.iterativeScan = iterativeScan
            self.maxScanTuples = maxScanTuples
            self.mode = mode
            self.text = text
            self.fusionCandidates = fusionCandidates
        }
    }

    /// One search result.
    public struct Match: Sendable, Hashable {
        /// The entry, carrying its vector in the searched space (none in a text search).
        public var memory: Memory
        /// Its distance from the query vector under the search's metric; `.infinity` in a
        /// ``SearchMode/text`` search, which compares no vectors.
        public var distance: Double
        /// What the result was ranked by: `-distance` in a vector search, the text rank (`ts_rank_cd`,
        /// higher is better) in a text search, the fused reciprocal-rank score in a hybrid one.
        public var score: Double
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

    /// Stores one entry, with its vector when it carries one (``Memory/embedding`` in
    /// ``Memory/space``, registered on first use), and returns it as stored. An entry without a
    /// vector is stored alone: searchable by text at once, by vector once a vector is stored
    /// (``remember(_:embedLater:)`` asks for one).
    ///
    /// - Throws: ``PhylacteryError/Code/dimensionMismatch`` when the vector does not fit its space
    ///   (or the space is registered with other dimensions).
    @discardableResult
    public func remember(_ memory: Memory) async throws -> Memory {
        var memory = memory
        try self.prepare(&memory)
        var stored = try await self.transaction.insert(memory)
        if let embedding = memory.embedding, let space = memory.space {
            let record = try await self.register(space)
            try await self.transaction.insert(MemoryEmbedding(memoryID: stored.id, spaceID: record.id, embedding: embedding))
            stored.embedding = embedding
            stored.space = space
        }
        return stored
    }

    /// Stores many entries with multi-row inserts (vectors in binary format, in their own table);
    /// returns how many.
    @discardableResult
    public func remember(contentsOf memories: [Memory]) async throws -> Int {
        var prepared = memories
        for index in prepared.indices { try self.prepare(&prepared[index]) }
        var spaceIDs: [EmbeddingSpace: UUID] = [:]
        for space in Set(prepared.compactMap(\.space)) where spaceIDs[space] == nil {
            spaceIDs[space] = try await self.register(space).id
        }
        let count = try await self.transaction.insert(contentsOf: prepared)
        let embeddings = prepared.compactMap { memory -> MemoryEmbedding? in
            guard let embedding = memory.embedding, let space = memory.space, let spaceID = spaceIDs[space] else { return nil }
            return MemoryEmbedding(memoryID: memory.id, spaceID: spaceID, embedding: embedding)
        }
        if !embeddings.isEmpty { try await self.transaction.insert(contentsOf: embeddings) }
        return count
    }

    /// Stores an entry without waiting for its vector and enqueues an ``EmbedMemories`` job for
    /// `space` in this transaction: the memory and its job commit together or not at all. The
    /// daemon's embedder (``JobHandlers/registerMemoryEmbedder(batchSize:_:)``) stores the vector;
    /// until then the memory is found by text but not by vector in `space`.
    ///
    /// Many memories remembered in one transaction, or close together, share one job (at most one
    /// job per space waits at a time; a job embeds a batch and leaves the rest to a follow-up).
    @discardableResult
    public func remember(_ memory: Memory, embedLater space: EmbeddingSpace) async throws -> Memory {
        let stored = try await self.remember(memory)
        let record = try await self.register(space)
        try await self.request([stored.id], in: record)
        return stored
    }

    /// ``remember(_:embedLater:)`` for many entries, with one job.
    @discardableResult
    public func remember(contentsOf memories: [Memory], embedLater space: EmbeddingSpace) async throws -> Int {
        let count = try await self.remember(contentsOf: memories)
        let record = try await self.register(space)
        try await self.request(memories.map(\.id), in: record)
        return count
    }

    /// Fills in the defaults a stored memory needs and checks what it carries.
    func prepare(_ memory: inout Memory) throws {
        if memory.sensitivity == nil { memory.sensitivity = self.transaction.defaultSensitivity }
        switch (memory.embedding, memory.space) {
        case (let embedding?, let space?):
            try space.check()
            try embedding.requireDimensions(space.dimensions, for: "embedding space \(space.name)")
        case (nil, nil):
            break
        default:
            throw PhylacteryError(.invalidArgument, "memory \(memory.id) carries an embedding without a space or a space without an embedding; build it with Memory(content:embedding:space:…) or without either")
        }
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

    /// Forgets an entry for good: its content, metadata, every vector, its pending embedding requests
    /// and its status history are deleted, and an audit record without content
    /// (``ForgottenMemory``: the id, who, when, why) is written, in one statement. Returns whether the
    /// entry existed (forgetting it twice writes one record).
    ///
    /// An embedding job that has not claimed the memory yet skips it; one that holds it finishes first
    /// (the delete waits for it) and its vector is deleted with the memory. The deleted rows stay in
    /// the table's pages until `VACUUM` reclaims them, as for any PostgreSQL delete.
    ///
    /// - Throws: ``PhylacteryError/Code/invalidArgument`` without an actor or a reason.
    @discardableResult
    public func forget(_ id: UUID, by actor: String, reason: String) async throws -> Bool {
        guard !actor.isEmpty, !reason.isEmpty else {
            throw PhylacteryError(.invalidArgument, "forgetting a memory needs who asked (by:) and why (reason:); both are kept in the audit record")
        }
        try StorableText.check(actor, "The name of who forgot the memory")
        try StorableText.check(reason, "The reason a memory was forgotten")
        let rows = try await self.transaction.rows(PostgresQuery(unsafeSQL: """
            WITH gone AS (DELETE FROM vectors.memories WHERE id = $1 RETURNING id),
            audit AS (INSERT INTO vectors.forgotten (id, memory_id, forgotten_by, reason) SELECT $2, id, $3, $4 FROM gone)
            SELECT count(*)::int8 FROM gone
            """, binds: Self.binds(id, UUID.v7(), actor, reason)), doing: "Forgetting a memory")
        return try self.decodeCount(rows, doing: "Forgetting a memory") > 0
    }

    /// The audit records of forgotten memories, newest first (at most `limit`).
    public func forgotten(limit: Int = 100) async throws -> [ForgottenMemory] {
        guard limit >= 0 else { throw PhylacteryError(.invalidArgument, "limit must not be negative; got \(limit)") }
        return try await self.transaction.models("""
            SELECT \(unescaped: ModelSQL.selectList(ForgottenMemory.schema)) FROM \(unescaped: ModelSQL.table(ForgottenMemory.schema))
            ORDER BY created_at DESC, id DESC LIMIT \(limit)
            """, as: ForgottenMemory.self, file: #fileID, line: #line)
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

    /// The one `count(*)` a statement returned.
    func decodeCount(_ rows: [PostgresRow], doing what: String) throws -> Int {
        guard let row = rows.first else { return 0 }
        do {
            return Int(try row.decode(Int64.self))
        } catch {
            throw self.transaction.aborting(error, doing: what, file: #fileID, line: #line)
        }
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
