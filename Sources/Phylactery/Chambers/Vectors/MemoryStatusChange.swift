public import Foundation
import PostgresNIO

/// One change of a memory's trust status, in `vectors.status_changes`: from what, to what, by whom
/// and when.
///
/// ``VectorMemory/consecrate(_:by:)`` and ``VectorMemory/reject(_:by:)`` write one in the same
/// statement that changes the memory, so the log and the status never disagree;
/// ``VectorMemory/statusHistory(of:)`` reads them back. Forgetting a memory deletes its log with it.
public struct MemoryStatusChange: PersistentModel, Hashable {
    public var id: UUID
    /// When the status changed (the database's clock).
    public var createdAt: Date
    /// Always equal to ``createdAt``: entries are only ever appended.
    public var updatedAt: Date
    /// The memory whose status changed.
    public var memoryID: UUID
    /// The status before the change.
    public var fromStatus: MemoryStatus
    /// The status after it (equal to ``fromStatus`` when a status was confirmed again).
    public var toStatus: MemoryStatus
    /// Who changed it (an operator, an extension's slug).
    public var changedBy: String

    /// When the status changed.
    public var changedAt: Date { self.createdAt }

    /// A log entry; normally written by ``VectorMemory``.
    public init(memoryID: UUID, fromStatus: MemoryStatus, toStatus: MemoryStatus, changedBy: String,
                id: UUID = .v7(), createdAt: Date = Date(), updatedAt: Date = Date()) {
        self.id = id
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.memoryID = memoryID
        self.fromStatus = fromStatus
        self.toStatus = toStatus
        self.changedBy = changedBy
    }

    public static var tableLocation: (chamber: Chamber, table: String) { (.vectors, "status_changes") }

    public static let schema = ModelSchema(
        modelName: "MemoryStatusChange",
        table: "status_changes",
        chamber: .vectors,
        columns: [
            ModelSchema.column("memoryID", UUID.self, name: "memory_id", references: ForeignKey(Memory.self, onDelete: .cascade)),
            ModelSchema.column("fromStatus", MemoryStatus.self),
            ModelSchema.column("toStatus", MemoryStatus.self),
            ModelSchema.column("changedBy", String.self),
        ],
        indexes: [IndexDescription(columns: ["memory_id", "created_at"])]
    )

    public func bindColumns(to row: inout ModelRowWriter) throws {
        try row.write(self.memoryID)
        try row.write(self.fromStatus)
        try row.write(self.toStatus)
        try row.write(self.changedBy)
    }

    public init(row: inout ModelRowReader) throws {
        (self.id, self.createdAt, self.updatedAt) = try row.readBase()
        self.memoryID = try row.read(UUID.self)
        self.fromStatus = try row.read(MemoryStatus.self)
        self.toStatus = try row.read(MemoryStatus.self)
        self.changedBy = try row.read(String.self)
    }
}

extension MemoryStatusChange: Codable {}
