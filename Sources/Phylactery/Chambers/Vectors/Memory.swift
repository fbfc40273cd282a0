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

/// One entry of semantic memory in `vectors.memories`: content, a trust status, a sensitivity
/// label and where it came from.
///
/// A memory is stored before (or without) any vector: its vectors live in `vectors.embeddings`, one
/// per embedding space (``MemoryEmbedding``). A memory built with an embedding
/// (``init(content:embedding:space:status:metadata:owner:source:sensitivity:id:createdAt:updatedAt:)``)
/// carries it in ``embedding`` and ``space``, and ``VectorMemory/remember(_:)`` stores both in one
/// call; a memory built without one is stored alone and embedded later
/// (``VectorMemory/remember(_:embedLater:)``). Memories a search returns carry their vector in the
/// searched space; memories read otherwise carry none.
///
/// The content is indexed for full-text search (a GIN index over `to_tsvector('english', content)`),
/// which ``VectorMemory/SearchOptions/mode`` uses for text and hybrid searches.
public struct Memory: PersistentModel, Hashable {
    public var id: UUID
    public var createdAt: Date
    public var updatedAt: Date
    /// The remembered text.
    public var content: String
    /// Free-form metadata, as JSON; searches can filter on it by containment (`@>`).
    public var metadata: RawJSONB
    /// How far the entry is trusted.
    public var status: MemoryStatus
    /// Who wrote it (the core, an extension's slug, a user).
    public var owner: String
    /// Where it came from (a conversation, a document, a tool call).
    public var source: String
    /// Who may see it. `nil` only on a value not stored yet: ``VectorMemory/remember(_:)`` gives it
    /// the transaction's ``Transaction/defaultSensitivity``. Searches return only the labels their
    /// caller may see (``VectorMemory/SearchOptions/sensitivities``).
    public var sensitivity: Sensitivity?
    /// Who last changed ``status`` (consecrated or rejected it), or `nil` while it never changed. Every
    /// change is logged too: ``VectorMemory/statusHistory(of:)``.
    public var statusChangedBy: String?
    /// When ``status`` last changed, or `nil`.
    public var statusChangedAt: Date?

    /// A vector this value carries (not a column): the one given to the initializer, for
    /// ``VectorMemory/remember(_:)`` to store, or the memory's vector in the space a search used.
    public var embedding: Vector?
    /// The space of ``embedding``, when it carries one.
    public var space: EmbeddingSpace?

    /// A memory with its embedding in `space`, to store with ``VectorMemory/remember(_:)`` (memory and
    /// vector in one call).
    ///
    /// - Throws: ``PhylacteryError/Code/dimensionMismatch`` when the embedding's dimension is not the space's.
    public init(content: String, embedding: Vector, space: EmbeddingSpace, status: MemoryStatus = .speculative,
                metadata: RawJSONB = Memory.emptyMetadata, owner: String, source: String, sensitivity: Sensitivity? = nil,
                id: UUID = .v7(), createdAt: Date = Date(), updatedAt: Date = Date()) throws {
        try embedding.requireDimensions(space.dimensions, for: "embedding space \(space.model)@\(space.fingerprint)")
        self.init(content: content, status: status, metadata: metadata, owner: owner, source: source, sensitivity: sensitivity,
                  id: id, createdAt: createdAt, updatedAt: updatedAt)
        self.embedding = embedding
        self.space = space
    }

    /// A memory without a vector: stored alone by ``VectorMemory/remember(_:)``, or with an embedding
    /// job by ``VectorMemory/remember(_:embedLater:)``.
    public init(content: String, status: MemoryStatus = .speculative, metadata: RawJSONB = Memory.emptyMetadata,
                owner: String, source: String, sensitivity: Sensitivity? = nil,
                id: UUID = .v7(), createdAt: Date = Date(), updatedAt: Date = Date()) {
        self.id = id
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.content = content
        self.metadata = metadata
        self.status = status
        self.owner = owner
        self.source = source
        self.sensitivity = sensitivity
        self.statusChangedBy = nil
        self.statusChangedAt = nil
        self.embedding = nil
        self.space = nil
    }

    /// `{}`.
    public static let emptyMetadata = try! RawJSONB(validating: "{}")

    /// The text-search configuration of the content's full-text index.
    public static let textSearchConfiguration = "english"

    /// The full-text expression over the content, as the GIN index has it (queries must repeat it
    /// exactly for the index to be used).
    static let textVector = "to_tsvector('\(textSearchConfiguration)'::regconfig, content)"

    public static var tableLocation: (chamber: Chamber, table: String) { (.vectors, "memories") }

    public static let schema = ModelSchema(
        modelName: "Memory",
        table: "memories",
        chamber: .vectors,
        columns: [
            ModelSchema.column("content", String.self),
            ModelSchema.column("metadata", RawJSONB.self, default: "'{}'::jsonb"),
            ModelSchema.column("status", MemoryStatus.self, default: "'speculative'"),
            ModelSchema.column("owner", String.self),
            ModelSchema.column("source", String.self),
            ModelSchema.column("sensitivity", Sensitivity.self, default: "'private'"),
            ModelSchema.column("statusChangedBy", String?.self),
            ModelSchema.column("statusChangedAt", Date?.self),
        ],
        indexes: [
            IndexDescription(name: "memories_status_idx", columns: ["status"]),
            IndexDescription(name: "memories_content_fts", columns: ["(\(textVector))"], method: .gin),
        ]
    )

    public func bindColumns(to row: inout ModelRowWriter) throws {
        try row.write(self.content)
        try row.write(self.metadata)
        try row.write(self.status)
        try row.write(self.owner)
        try row.write(self.source)
        try row.write(self.sensitivity ?? .private)
        try row.write(self.statusChangedBy)
        try row.write(self.statusChangedAt)
    }

    public init(row: inout ModelRowReader) throws {
        (self.id, self.createdAt, self.updatedAt) = try row.readBase()
        self.content = try row.read(String.self)
        self.metadata = try row.read(RawJSONB.self)
        self.status = try row.read(MemoryStatus.self)
        self.owner = try row.read(String.self)
        self.source = try row.read(String.self)
        self.sensitivity = try row.read(Sensitivity.self)
        self.statusChangedBy = try row.read(String?.self)
        self.statusChangedAt = try row.read(Date?.self)
        self.embedding = nil
        self.space = nil
    }
}
