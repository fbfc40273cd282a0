public import Foundation
import Logging
import PostgresNIO

/// What turns memories' text into vectors of one space: the daemon's embedding model.
///
/// The library never embeds by itself; a daemon registers its embedder as the handler of
/// ``EmbedMemories`` jobs (``JobHandlers/registerMemoryEmbedder(batchSize:_:)``).
public protocol MemoryEmbedder: Sendable {
    /// One vector per text, in order, each with `space.dimensions` elements. Throwing fails the job's
    /// attempt: its memories keep no vector and the queue retries the job by its normal rule.
    func embed(_ texts: [String], in space: EmbeddingSpace) async throws -> [Vector]
}

/// The job that embeds memories waiting for a vector in one space (``VectorMemory/remember(_:embedLater:)``,
/// ``VectorMemory/requestEmbeddings(in:)``).
///
/// The job carries only its space, never memory ids: each run claims up to a batch of the space's
/// waiting requests (`FOR UPDATE SKIP LOCKED`, so several workers share the work), embeds their
/// texts with the daemon's ``MemoryEmbedder``, and stores the vectors, deletes the requests and
/// completes in one transaction. A full batch enqueues a follow-up job for the rest. At most one
/// job per space waits at a time (a unique key), so memories remembered in one transaction, or close
/// together, share one job. A memory forgotten before its job runs is simply not there to claim.
public struct EmbedMemories: Job, Hashable {
    public static let kind = "phylactery.memory.embed"
    /// The queue embedding jobs go to: a daemon hosting the embedder works it (``JobHandlers/queues``).
    public static let queue = "memory"

    /// The space to embed into.
    public var space: EmbeddingSpace

    /// A job for `space`; normally enqueued by ``VectorMemory``.
    public init(space: EmbeddingSpace) {
        self.space = space
    }

    /// The default number of memories one job embeds.
    public static let defaultBatchSize = 64

    /// The prefix of the per-space advisory lock key (see ``VectorMemory/lockForRequests(_:)``).
    static let lockPrefix = "phylactery.memory.embed:"

    /// One waiting job per space.
    static func options(for record: EmbeddingSpaceRecord) -> JobOptions {
        JobOptions(uniqueKey: "space:\(record.id.uuidString)", uniqueness: .whileWaiting)
    }

    /// Runs one job: claims a batch, embeds it with `embed`, writes the vectors back with the job's
    /// completion. Returns how many memories got a vector.
    @discardableResult
    public static func run(
        _ job: EmbedMemories, context: JobContext, batchSize: Int = defaultBatchSize,
        embed: @escaping @Sendable ([String], EmbeddingSpace) async throws -> [Vector]
    ) async throws -> Int {
        guard batchSize >= 1 else { throw PhylacteryError(.invalidArgument, "an embedding batch holds at least one memory; got \(batchSize)") }
        let space = job.space
        guard let record = try await context.client.transaction({ tx in try await tx.memory.spaceRecord(space) }) else {
            return 0  // dropped since: nothing waits for it any more
        }
        // Wait for every transaction that may have joined this job while it waited (they hold the
        // lock shared until they commit): their requests are visible to the claim below.
        try await context.client.transaction { tx in
            try await tx.execute("SELECT pg_advisory_xact_lock(hashtextextended(\(lockPrefix + record.id.uuidString), 0))")
        }
        return try await context.transaction { tx in
            let rows = try await tx.rows("""
                SELECT r.memory_id, m.content FROM vectors.embedding_requests AS r JOIN vectors.memories AS m ON m.id = r.memory_id
                WHERE r.space_id = \(record.id) ORDER BY r.id LIMIT \(batchSize)
                FOR UPDATE OF r SKIP LOCKED FOR KEY SHARE OF m SKIP LOCKED
                """, doing: "Claiming memories to embed")
            var ids: [UUID] = [], texts: [String] = []
            for row in rows {
                do {
                    let (id, text) = try row.decode((UUID, String).self)
                    ids.append(id)
                    texts.append(text)
                } catch {
                    throw tx.aborting(error, doing: "Claiming memories to embed", file: #fileID, line: #line)
                }
            }
            guard !ids.isEmpty else { return 0 }
            let vectors = try await embed(texts, space)
            guard vectors.count == texts.count else {
                throw PhylacteryError(.invalidArgument, "the embedder returned \(vectors.count) vectors for \(texts.count) texts of space \(space.name); it must return one per text, in order")
            }
            for vector in vectors { try vector.requireDimensions(space.dimensions, for: "embedding space \(space.name) (the embedder's output)") }
            let stored = try await tx.memory.storeEmbeddings(zip(ids, vectors).map { (memory: $0.0, embedding: $0.1) }, spaceID: record.id)
            if ids.count == batchSize { try await tx.memory.enqueueEmbedding(record) }
            context.logger.debug("embedded memories", metadata: ["space": "\(space.name)", "count": "\(stored)"])
            return stored
        }
    }
}

extension JobHandlers {
    /// Registers the daemon's embedder as the handler of ``EmbedMemories`` jobs, in one line:
    ///
    /// ```swift
    /// handlers.registerMemoryEmbedder { texts, space in try await model.embed(texts) }
    /// ```
    ///
    /// Its workers must work the ``EmbedMemories/queue`` (`memory`), which ``queues`` includes.
    public mutating func registerMemoryEmbedder(
        batchSize: Int = EmbedMemories.defaultBatchSize, _ embed: @escaping @Sendable ([String], EmbeddingSpace) async throws -> [Vector]
    ) {
        self.register(EmbedMemories.self) { job, context in
            _ = try await EmbedMemories.run(job, context: context, batchSize: batchSize, embed: embed)
        }
    }

    /// Registers a ``MemoryEmbedder`` as the handler of ``EmbedMemories`` jobs.
    public mutating func registerMemoryEmbedder(_ embedder: some MemoryEmbedder, batchSize: Int = EmbedMemories.defaultBatchSize) {
        self.registerMemoryEmbedder(batchSize: batchSize) { texts, space in try await embedder.embed(texts, in: space) }
    }
}
