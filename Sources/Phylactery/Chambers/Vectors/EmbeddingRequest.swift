public import Foundation
import PostgresNIO

/// A memory waiting for its vector in one space, in `vectors.embedding_requests`.
///
/// Written by ``VectorMemory/remember(_:embedLater:)`` and ``VectorMemory/requestEmbeddings(in:)``;
/// claimed in batches (`FOR UPDATE SKIP LOCKED`) and deleted by the ``EmbedMemories`` job that
/// stores the vectors. Forgetting the memory deletes its requests (`ON DELETE CASCADE`), so a job
/// never sees it.
public struct EmbeddingRequest: PersistentModel, Hashable {
    public var id: UUID
    /// When the vector was asked for.
    public var createdAt: Date
    public var updatedAt: Date
    /// The memory to embed.
    public var memoryID: UUID
    /// The space to embed it in.
    public var spaceID: UUID

    /// A request; normally written by ``VectorMemory``.
    public init(memoryID: UUID, spaceID: UUID, id: UUID = .v7(), createdAt: Date = Date(), updatedAt: Date = Date()) {
        self.id = id
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.memoryID = memoryID
        self.spaceID = spaceID
    }

    public static var tableLocation: (chamber: Chamber, table: String) { (.vectors, "embedding_requests") }

    public static let schema = ModelSchema(
        modelName: "EmbeddingRequest",
        table: "embedding_requests",
        chamber: .vectors,
        columns: [
            ModelSchema.column("memoryID", UUID.self, name: "memory_id", references: ForeignKey(Memory.self, onDelete: .cascade)),
            ModelSchema.column("spaceID", UUID.self, name: "space_id", references: ForeignKey(EmbeddingSpaceRecord.self, onDelete: .cascade)),
        ],
        indexes: [IndexDescription(name: "embedding_requests_space_idx", columns: ["space_id", "id"])],
        uniqueConstraints: [UniqueConstraint(name: "embedding_requests_memory_space_key", columns: ["memory_id", "space_id"])]
    )

    public func bindColumns(to row: inout ModelRowWriter) throws {
        try row.write(self.memoryID)
        try row.write(self.spaceID)
    }

    public init(row: inout ModelRowReader) throws {
        (self.id, self.createdAt, self.updatedAt) = try row.readBase()
        self.memoryID = try row.read(UUID.self)
        self.spaceID = try row.read(UUID.self)
    }
}
