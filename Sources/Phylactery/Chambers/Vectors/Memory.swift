public import Foundation
import PostgresNIO

/// How far a memory is trusted.
public enum MemoryStatus: String, PersistentEnum, Sendable {
    /// A thought: recorded, not verified. Where every memory starts.
    case speculative
    /// A verified truth, preferred by recall.
    case consecrated
    /// Found wrong; kept (so it is not learnt again) but not recalled unless asked for.
    case rejected
}

/// The embedding model that produced a vector and the space its vectors live in.
///
/// Vectors are only ever compared within one space: every search is filtered by the model's name,
/// its ``fingerprint`` and its ``dimensions``, so two embedding models (or two versions of one whose
/// spaces differ) never meet in a distance.
public struct EmbeddingSpace: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The embedding model's name (`all-MiniLM-L6-v2`).
    public var model: String
    /// A fingerprint of the model's space: a version, a weights hash, anything that changes when
    /// its vectors stop being comparable with older ones.
    public var fingerprint: String
    /// The number of dimensions its vectors have.
    public var dimensions: Int

    /// Describes an embedding space.
    public init(model: String, fingerprint: String, dimensions: Int) {
        self.model = model
        self.fingerprint = fingerprint
        self.dimensions = dimensions
    }

    public var description: String { "\(self.model)@\(self.fingerprint) (\(self.dimensions) dimensions)" }
}

/// One entry of semantic memory in `vectors.memories`: content, its embedding, a trust status and
/// where it came from.
///
/// The table holds vectors of any dimension (`vector` without a size, with `dimensions` checked
/// against the vector). Similarity search goes through partial HNSW indexes, one per dimension in
/// ``indexedDimensions`` (`(embedding::vector(n)) vector_cosine_ops WHERE dimensions = n`); other
/// dimensions are searched exactly.
public struct Memory: PersistentModel, Hashable {
    public var id: UUID
    public var createdAt: Date
    public var updatedAt: Date
    /// The remembered text.
    public var content: String
    /// Free-form metadata, as JSON; searches can filter on it by containment (`@>`).
    public var metadata: RawJSONB
    /// The content's embedding.
    public var embedding: Vector
    /// The embedding's dimension count (kept in a column so a partial index can select one size).
    public var dimensions: Int32
    /// The embedding model's name.
    public var embeddingModel: String
    /// The fingerprint of the embedding model's space.
    public var spaceFingerprint: String
    /// How far the entry is trusted.
    public var status: MemoryStatus
    /// Who wrote it (the core, an extension's slug, a user).
    public var owner: String
    /// Where it came from (a conversation, a document, a tool call).
    public var source: String
    /// Who last changed ``status`` (consecrated or rejected it), or `nil` while it never changed. Every
    /// change is logged too: ``VectorMemory/statusHistory(of:)``.
    public var statusChangedBy: String?
    /// When ``status`` last changed, or `nil`.
    public var statusChangedAt: Date?

    /// The space the embedding lives in.
    public var space: EmbeddingSpace {
        EmbeddingSpace(model: self.embeddingModel, fingerprint: self.spaceFingerprint, dimensions: Int(self.dimensions))
    }

    /// A memory of `space`, to store with ``VectorMemory/remember(_:)``.
    ///
    /// - Throws: ``PhylacteryError/Code/dimensionMismatch`` when the embedding's dimension is not the space's.
    public init(content: String, embedding: Vector, space: EmbeddingSpace, status: MemoryStatus = .speculative,
                metadata: RawJSONB = Memory.emptyMetadata, owner: String, source: String,
                id: UUID = .v7(), createdAt: Date = Date(), updatedAt: Date = Date()) throws {
        try embedding.requireDimensions(space.dimensions, for: "embedding space \(space.model)@\(space.fingerprint)")
        self.id = id
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.content = content
        self.metadata = metadata
        self.embedding = embedding
        self.dimensions = Int32(embedding.dimensions)
        self.embeddingModel = space.model
        self.spaceFingerprint = space.fingerprint
        self.status = status
        self.owner = owner
        self.source = source
        self.statusChangedBy = nil
        self.statusChangedAt = nil
    }

    /// `{}`.
    public static let emptyMetadata = try! RawJSONB(validating: "{}")

    /// The dimensions that get an HNSW index (cosine distance) on the core table.
    public static let indexedDimensions = [384, 768, 1024, 1536]

    /// HNSW build parameters of those indexes.
    public static let hnswParameters = ["m": "16", "ef_construction": "64"]

    /// The name of the HNSW index for `dimensions`.
    public static func hnswIndexName(dimensions: Int) -> String { "memories_embedding_\(dimensions)_hnsw" }

    /// The partial HNSW index for one dimension.
    public static func hnswIndex(dimensions: Int) -> IndexDescription {
        IndexDescription(
            name: hnswIndexName(dimensions: dimensions), columns: ["((embedding)::vector(\(dimensions)))"], method: .hnsw,
            operatorClass: "vector_cosine_ops", predicate: "dimensions = \(dimensions)", parameters: hnswParameters)
    }

    public static var tableLocation: (chamber: Chamber, table: String) { (.vectors, "memories") }

    public static let schema = ModelSchema(
        modelName: "Memory",
        table: "memories",
        chamber: .vectors,
        columns: [
            ModelSchema.column("content", String.self),
            ModelSchema.column("metadata", RawJSONB.self, default: "'{}'::jsonb"),
            ModelSchema.column("embedding", Vector.self),
            ModelSchema.column("dimensions", Int32.self),
            ModelSchema.column("embeddingModel", String.self),
            ModelSchema.column("spaceFingerprint", String.self),
            ModelSchema.column("status", MemoryStatus.self, default: "'speculative'"),
            ModelSchema.column("owner", String.self),
            ModelSchema.column("source", String.self),
            ModelSchema.column("statusChangedBy", String?.self),
            ModelSchema.column("statusChangedAt", Date?.self),
        ],
        indexes: [IndexDescription(columns: ["embedding_model", "space_fingerprint", "status"])]
            + indexedDimensions.map { hnswIndex(dimensions: $0) },
        checks: [CheckConstraint(name: "memories_dimensions_check", expression: "vector_dims(embedding) = dimensions")]
    )

    public func bindColumns(to row: inout ModelRowWriter) throws {
        try row.write(self.content)
        try row.write(self.metadata)
        try row.write(self.embedding)
        try row.write(self.dimensions)
        try row.write(self.embeddingModel)
        try row.write(self.spaceFingerprint)
        try row.write(self.status)
        try row.write(self.owner)
        try row.write(self.source)
        try row.write(self.statusChangedBy)
        try row.write(self.statusChangedAt)
    }

    public init(row: inout ModelRowReader) throws {
        (self.id, self.createdAt, self.updatedAt) = try row.readBase()
        self.content = try row.read(String.self)
        self.metadata = try row.read(RawJSONB.self)
        self.embedding = try row.read(Vector.self)
        self.dimensions = try row.read(Int32.self)
        self.embeddingModel = try row.read(String.self)
        self.spaceFingerprint = try row.read(String.self)
        self.status = try row.read(MemoryStatus.self)
        self.owner = try row.read(String.self)
        self.source = try row.read(String.self)
        self.statusChangedBy = try row.read(String?.self)
        self.statusChangedAt = try row.read(Date?.self)
    }
}
