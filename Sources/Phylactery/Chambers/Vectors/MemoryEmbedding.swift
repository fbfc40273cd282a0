public import Foundation
import PostgresNIO

/// One memory's vector in one embedding space, in `vectors.embeddings`.
///
/// A memory has at most one vector per space (unique on `(memory_id, space_id)`) and may have
/// vectors in several spaces at once (the old and the new model while a space is switched).
/// Forgetting the memory or dropping the space deletes its vectors with it (`ON DELETE CASCADE`).
///
/// The table holds vectors of any dimension (`vector` without a size, with `dimensions` checked
/// against the vector). Similarity search goes through partial HNSW indexes, one per dimension in
/// ``indexedDimensions`` (`(embedding::vector(n)) vector_cosine_ops WHERE dimensions = n`); other
/// dimensions are searched exactly.
public struct MemoryEmbedding: PersistentModel, Hashable {
    public var id: UUID
    /// When the vector was stored.
    public var createdAt: Date
    public var updatedAt: Date
    /// The memory it embeds.
    public var memoryID: UUID
    /// The space it lives in (``EmbeddingSpaceRecord/id``).
    public var spaceID: UUID
    /// Its dimension count (kept in a column so a partial index can select one size).
    public var dimensions: Int32
    /// The vector.
    public var embedding: Vector

    /// A memory's vector in a registered space; normally written by ``VectorMemory``.
    public init(memoryID: UUID, spaceID: UUID, embedding: Vector, id: UUID = .v7(), createdAt: Date = Date(), updatedAt: Date = Date()) {
        self.id = id
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.memoryID = memoryID
        self.spaceID = spaceID
        self.dimensions = Int32(embedding.dimensions)
        self.embedding = embedding
    }

    /// The dimensions that get an HNSW index (cosine distance).
    public static let indexedDimensions = [384, 768, 1024, 1536]

    /// HNSW build parameters of those indexes.
    public static let hnswParameters = ["m": "16", "ef_construction": "64"]

    /// The name of the HNSW index for `dimensions`.
    public static func hnswIndexName(dimensions: Int) -> String { "embeddings_\(dimensions)_hnsw" }

    /// The partial HNSW index for one dimension.
    public static func hnswIndex(dimensions: Int) -> IndexDescription {
        IndexDescription(
            name: hnswIndexName(dimensions: dimensions), columns: ["((embedding)::vector(\(dimensions)))"], method: .hnsw,
            operatorClass: "vector_cosine_ops", predicate: "dimensions = \(dimensions)", parameters: hnswParameters)
    }

    public static var tableLocation: (chamber: Chamber, table: String) { (.vectors, "embeddings") }

    public static let schema = ModelSchema(
        modelName: "MemoryEmbedding",
        table: "embeddings",
        chamber: .vectors,
        columns: [
            ModelSchema.column("memoryID", UUID.self, name: "memory_id", references: ForeignKey(Memory.self, onDelete: .cascade)),
            ModelSchema.column("spaceID", UUID.self, name: "space_id", references: ForeignKey(EmbeddingSpaceRecord.self, onDelete: .cascade)),
            ModelSchema.column("dimensions", Int32.self),
            ModelSchema.column("embedding", Vector.self),
        ],
        indexes: [IndexDescription(name: "embeddings_space_idx", columns: ["space_id"])]
            + indexedDimensions.map { hnswIndex(dimensions: $0) },
        uniqueConstraints: [UniqueConstraint(name: "embeddings_memory_space_key", columns: ["memory_id", "space_id"])],
        checks: [CheckConstraint(name: "embeddings_dimensions_check", expression: "vector_dims(embedding) = dimensions")]
    )

    public func bindColumns(to row: inout ModelRowWriter) throws {
        try row.write(self.memoryID)
        try row.write(self.spaceID)
        try row.write(self.dimensions)
        try row.write(self.embedding)
    }

    public init(row: inout ModelRowReader) throws {
        (self.id, self.createdAt, self.updatedAt) = try row.readBase()
        self.memoryID = try row.read(UUID.self)
        self.spaceID = try row.read(UUID.self)
        self.dimensions = try row.read(Int32.self)
        self.embedding = try row.read(Vector.self)
    }
}
