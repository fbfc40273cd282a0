public import Foundation
import PostgresNIO

/// The audit record a forgotten memory leaves, in `vectors.forgotten`: which memory, who forgot
/// it, when and why — and nothing of what it said.
///
/// ``VectorMemory/forget(_:by:reason:)`` deletes the memory with its vectors, embedding requests and
/// status history, and writes this record in the same statement. The record keeps no content,
/// metadata, owner or source: only the id (so a copy restored from elsewhere can be recognised and
/// forgotten again), the actor and the reason.
public struct ForgottenMemory: PersistentModel, Hashable {
    public var id: UUID
    /// When the memory was forgotten (the database's clock).
    public var createdAt: Date
    /// Always equal to ``createdAt``.
    public var updatedAt: Date
    /// The forgotten memory's id (no foreign key: the memory is gone).
    public var memoryID: UUID
    /// Who forgot it (a user, an operator, an extension's slug).
    public var forgottenBy: String
    /// Why (a user's request, a retention rule).
    public var reason: String

    /// When the memory was forgotten.
    public var forgottenAt: Date { self.createdAt }

    /// A record; normally written by ``VectorMemory/forget(_:by:reason:)``.
    public init(memoryID: UUID, forgottenBy: String, reason: String, id: UUID = .v7(), createdAt: Date = Date(), updatedAt: Date = Date()) {
        self.id = id
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.memoryID = memoryID
        self.forgottenBy = forgottenBy
        self.reason = reason
    }

    public static var tableLocation: (chamber: Chamber, table: String) { (.vectors, "forgotten") }

    public static let schema = ModelSchema(
        modelName: "ForgottenMemory",
        table: "forgotten",
        chamber: .vectors,
        columns: [
            ModelSchema.column("memoryID", UUID.self, name: "memory_id"),
            ModelSchema.column("forgottenBy", String.self),
            ModelSchema.column("reason", String.self),
        ],
        indexes: [IndexDescription(name: "forgotten_memory_idx", columns: ["memory_id"])]
    )

    public func bindColumns(to row: inout ModelRowWriter) throws {
        try row.write(self.memoryID)
        try row.write(self.forgottenBy)
        try row.write(self.reason)
    }

    public init(row: inout ModelRowReader) throws {
        (self.id, self.createdAt, self.updatedAt) = try row.readBase()
        self.memoryID = try row.read(UUID.self)
        self.forgottenBy = try row.read(String.self)
        self.reason = try row.read(String.self)
    }
}
