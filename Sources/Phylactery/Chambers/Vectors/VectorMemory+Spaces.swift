public import Foundation
import PostgresNIO

extension VectorMemory {
    /// How far one space covers the memories: what a switch to it waits for.
    public struct SpaceCoverage: Sendable, Hashable {
        /// The space.
        public var space: EmbeddingSpace
        /// Whether it is the default space now.
        public var isDefault: Bool
        /// Memories stored (every status).
        public var memories: Int
        /// Memories with a vector in the space.
        public var embedded: Int
        /// Memories waiting for an embedding job in the space.
        public var pending: Int
        /// Memories without a vector in the space.
        public var missing: Int { max(0, self.memories - self.embedded) }
        /// Whether every memory has a vector in the space.
        public var isComplete: Bool { self.missing == 0 }
    }

    // MARK: - Registering

    /// Registers `space` (idempotent) and returns its record. The first space ever registered becomes
    /// the default one.
    ///
    /// - Throws: ``PhylacteryError/Code/dimensionMismatch`` when the model and fingerprint are
    ///   registered with other dimensions; ``PhylacteryError/Code/invalidArgument`` for an empty name.
    @discardableResult
    public func register(_ space: EmbeddingSpace) async throws -> EmbeddingSpaceRecord {
        try space.check()
        if let record = try await self.spaceRecord(space) {
            guard Int(record.dimensions) == space.dimensions else { throw Self.registeredWithOtherDimensions(record, space) }
            return record
        }
        // Two registrations racing: ON CONFLICT keeps one (of the space, or of the default flag when
        // both wanted it); the loser reads the winner's row, or registers again without the flag.
        _ = try await self.transaction.rows(PostgresQuery(unsafeSQL: """
            INSERT INTO vectors.spaces (id, model, fingerprint, dimensions, is_default)
            VALUES ($1, $2, $3, $4, NOT EXISTS (SELECT 1 FROM vectors.spaces WHERE is_default))
            ON CONFLICT DO NOTHING
            """, binds: Self.binds(UUID.v7(), space.model, space.fingerprint, Int32(space.dimensions))), doing: "Registering an embedding space")
        if let record = try await self.spaceRecord(space) {
            guard Int(record.dimensions) == space.dimensions else { throw Self.registeredWithOtherDimensions(record, space) }
            return record
        }
        return try await self.transaction.insert(EmbeddingSpaceRecord(space: space))
    }

    /// The record of `space` (by model and fingerprint), or `nil` when it was never registered.
    public func spaceRecord(_ space: EmbeddingSpace) async throws -> EmbeddingSpaceRecord? {
        try await self.spaceRecord(model: space.model, fingerprint: space.fingerprint)
    }

    /// The record of the space `model@fingerprint`, or `nil`.
    public func spaceRecord(model: String, fingerprint: String) async throws -> EmbeddingSpaceRecord? {
        try await self.transaction.fetch(EmbeddingSpaceRecord.self, where: "model = \(model) AND fingerprint = \(fingerprint)").first
    }

    /// Every registered space, oldest first.
    public func spaces() async throws -> [EmbeddingSpaceRecord] {
        try await self.transaction.models("""
            SELECT \(unescaped: ModelSQL.selectList(EmbeddingSpaceRecord.schema)) FROM \(unescaped: ModelSQL.table(EmbeddingSpaceRecord.schema))
            ORDER BY created_at, id
            """, as: EmbeddingSpaceRecord.self, file: #fileID, line: #line)
    }

    /// The space searches without a space use, or `nil` before any is registered.
    public func defaultSpace() async throws -> EmbeddingSpace? {
        try await self.transaction.fetch(EmbeddingSpaceRecord.self, where: "is_default").first?.space
    }

    // MARK: - Embedding

    /// Stores `embedding` as memory `id`'s vector in `space` (registered on first use), replacing one
    /// it had there. Returns `false` when no memory has that id.
    ///
    /// - Throws: ``PhylacteryError/Code/dimensionMismatch`` when the vector does not fit the space.
    @discardableResult
    public func storeEmbedding(_ embedding: Vector, of id: UUID, in space: EmbeddingSpace) async throws -> Bool {
        try embedding.requireDimensions(space.dimensions, for: "embedding space \(space.name)")
        let record = try await self.register(space)
        return try await self.storeEmbeddings([(id, embedding)], spaceID: record.id) == 1
    }

    /// Writes vectors of one space for existing memories (replacing older ones there) and removes
    /// their embedding requests; returns how many memories got one.
    func storeEmbeddings(_ vectors: [(memory: UUID, embedding: Vector)], spaceID: UUID) async throws -> Int {
        guard !vectors.isEmpty else { return 0 }
        let ids = vectors.map(\.memory)
        try await self.transaction.execute("DELETE FROM vectors.embeddings WHERE space_id = \(spaceID) AND memory_id = ANY(\(ids)::uuid[])")
        try await self.transaction.execute("DELETE FROM vectors.embedding_requests WHERE space_id = \(spaceID) AND memory_id = ANY(\(ids)::uuid[])")
        // Only memories that still exist (one forgotten meanwhile has nothing to embed).
        let existing = Set(try await self.transaction.rows("SELECT id FROM vectors.memories WHERE id = ANY(\(ids)::uuid[]) FOR KEY SHARE",
                                                           doing: "Storing embeddings").map { row in
            do { return try row.decode(UUID.self) } catch {
                throw self.transaction.aborting(error, doing: "Storing embeddings", file: #fileID, line: #line)
            }
        })
        let rows = vectors.filter { existing.contains($0.memory) }.map { MemoryEmbedding(memoryID: $0.memory, spaceID: spaceID, embedding: $0.embedding) }
        guard !rows.isEmpty else { return 0 }
        return try await self.transaction.insert(contentsOf: rows)
    }

    /// Memory `id`'s vector in `space`, or `nil` when it has none there.
    public func embedding(of id: UUID, in space: EmbeddingSpace) async throws -> Vector? {
        guard let record = try await self.spaceRecord(space) else { return nil }
        return try await self.transaction.fetch(MemoryEmbedding.self, where: "memory_id = \(id) AND space_id = \(record.id)").first?.embedding
    }

    /// Asks for a vector in `space` for every memory that has none there and no request yet, and
    /// enqueues the embedding job; returns how many memories were asked for. What the backfill
    /// (`phylactery memory embed`) and a switch of spaces start with; the daemon's embedder does the work.
    @discardableResult
    public func requestEmbeddings(in space: EmbeddingSpace) async throws -> Int {
        let record = try await self.register(space)
        try await self.lockForRequests(record)
        let rows = try await self.transaction.rows("""
            WITH asked AS (
                INSERT INTO vectors.embedding_requests (id, memory_id, space_id)
                SELECT uuidv7(), m.id, \(record.id) FROM vectors.memories AS m
                WHERE NOT EXISTS (SELECT 1 FROM vectors.embeddings AS e WHERE e.memory_id = m.id AND e.space_id = \(record.id))
                  -- A request a running job holds is still visible here (its delete is not committed):
                  -- skipping it keeps this from asking again for a memory that job is embedding.
                  AND NOT EXISTS (SELECT 1 FROM vectors.embedding_requests AS r WHERE r.memory_id = m.id AND r.space_id = \(record.id))
                ORDER BY m.id
                ON CONFLICT (memory_id, space_id) DO NOTHING
                RETURNING 1)
            SELECT count(*)::int8 FROM asked
            """, doing: "Requesting embeddings")
        let asked = try self.decodeCount(rows, doing: "Requesting embeddings")
        let waiting = try await self.transaction.count(EmbeddingRequest.self, where: "space_id = \(record.id)")
        if waiting > 0 { try await self.enqueueEmbedding(record) }
        return asked
    }

    /// Asks for vectors of `ids` in the registered space and enqueues the job.
    func request(_ ids: [UUID], in record: EmbeddingSpaceRecord) async throws {
        guard !ids.isEmpty else { return }
        try await self.lockForRequests(record)
        try await self.transaction.execute("""
            INSERT INTO vectors.embedding_requests (id, memory_id, space_id)
            SELECT uuidv7(), memory_id, \(record.id) FROM unnest(\(ids)::uuid[]) AS t(memory_id)
            ON CONFLICT (memory_id, space_id) DO NOTHING
            """)
        try await self.enqueueEmbedding(record)
    }

    /// Takes the space's request lock in shared mode until the transaction ends. An embedding job
    /// takes it exclusively (and lets go at once) before it claims requests, so it waits for every
    /// transaction that may have joined its waiting job: none of their requests is left behind.
    func lockForRequests(_ record: EmbeddingSpaceRecord) async throws {
        try await self.transaction.execute("SELECT pg_advisory_xact_lock_shared(hashtextextended(\(EmbedMemories.lockPrefix + record.id.uuidString), 0))")
    }

    /// Enqueues the space's embedding job unless one already waits.
    func enqueueEmbedding(_ record: EmbeddingSpaceRecord) async throws {
        try await self.transaction.enqueue(EmbedMemories(space: record.space), options: EmbedMemories.options(for: record))
    }

    // MARK: - Switching

    /// How far `space` covers the memories: how many lack a vector there (what
    /// ``switchDefaultSpace(to:force:)`` waits for) and how many wait for their job.
    public func coverage(of space: EmbeddingSpace) async throws -> SpaceCoverage {
        let record = try await self.spaceRecord(space)
        let rows = try await self.transaction.rows("""
            SELECT (SELECT count(*) FROM vectors.memories)::int8,
                   (SELECT count(*) FROM vectors.embeddings WHERE space_id = \(record?.id))::int8,
                   (SELECT count(*) FROM vectors.embedding_requests WHERE space_id = \(record?.id))::int8
            """, doing: "Measuring a space's coverage")
        guard let row = rows.first else { throw PhylacteryError(.queryFailed, "measuring a space's coverage returned no row") }
        do {
            let (memories, embedded, pending) = try row.decode((Int64, Int64, Int64).self)
            return SpaceCoverage(space: space, isDefault: record?.isDefault ?? false, memories: Int(memories), embedded: Int(embedded), pending: Int(pending))
        } catch {
            throw self.transaction.aborting(error, doing: "Measuring a space's coverage", file: #fileID, line: #line)
        }
    }

    /// Makes `space` the default space, atomically: searches without a space use it from this
    /// transaction's commit on. Refused while memories lack a vector in it, unless `force`d (they are
    /// then not found by vector until embedded). The old default keeps its vectors (``dropSpace(_:)``
    /// removes them).
    ///
    /// - Throws: ``PhylacteryError/Code/incompleteCoverage`` naming how many memories lack a vector;
    ///   ``PhylacteryError/Code/notFound`` when the space was never registered.
    @discardableResult
    public func switchDefaultSpace(to space: EmbeddingSpace, force: Bool = false) async throws -> SpaceCoverage {
        guard let record = try await self.spaceRecord(space) else {
            throw PhylacteryError(.notFound, "embedding space \(space.name) is not registered; embed the memories in it first (phylactery memory embed --space \(space.name))")
        }
        // Memories remembered meanwhile must not slip in between the count and the switch.
        try await self.transaction.execute("LOCK TABLE vectors.spaces IN EXCLUSIVE MODE")
        try await self.transaction.execute("LOCK TABLE vectors.memories IN SHARE MODE")
        let coverage = try await self.coverage(of: record.space)
        if !coverage.isComplete && !force {
            throw PhylacteryError(.incompleteCoverage, "\(coverage.missing) of \(coverage.memories) memories still lack a vector in \(space.name) (\(coverage.pending) waiting for the embedding job); run `phylactery memory embed --space \(space.name)` and wait for it, or force the switch")
        }
        try await self.transaction.execute("UPDATE vectors.spaces SET is_default = false, updated_at = now() WHERE is_default AND id <> \(record.id)")
        try await self.transaction.execute("UPDATE vectors.spaces SET is_default = true, updated_at = now() WHERE id = \(record.id) AND NOT is_default")
        var switched = coverage
        switched.isDefault = true
        return switched
    }

    /// Deletes `space` with every vector and embedding request in it. Refused for the default space
    /// (switch away first). Returns how many vectors were deleted, or `nil` when the space was not registered.
    ///
    /// - Throws: ``PhylacteryError/Code/invalidArgument`` for the default space.
    @discardableResult
    public func dropSpace(_ space: EmbeddingSpace) async throws -> Int? {
        guard let record = try await self.spaceRecord(space) else { return nil }
        guard !record.isDefault else {
            throw PhylacteryError(.invalidArgument, "embedding space \(space.name) is the default; switch the default to another space first (phylactery memory switch-space)")
        }
        let vectors = try await self.transaction.count(MemoryEmbedding.self, where: "space_id = \(record.id)")
        try await self.transaction.execute("DELETE FROM vectors.spaces WHERE id = \(record.id)")
        return vectors
    }

    // MARK: - Counting

    /// Vector counts per space and memory status (memories without a vector in a space are not
    /// counted there; ``coverage(of:)`` counts them).
    public func stats() async throws -> [Count] {
        let rows = try await self.transaction.rows("""
            SELECT s.model, s.fingerprint, s.dimensions, m.status, count(*)::int8
            FROM vectors.embeddings AS e JOIN vectors.spaces AS s ON s.id = e.space_id JOIN vectors.memories AS m ON m.id = e.memory_id
            GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
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
}
