public import Foundation
import PostgresNIO

/// The audit record of one erasure, in `verbatim.fact_erasures`: who erased which fact, when, why,
/// and how many versions lost their value. It never holds the value.
///
/// Written only by the database function `verbatim.erase_fact`, in the same transaction as the
/// erasure (see ``FactStore/erase(_:key:reason:by:)``). Like the facts, the rows are never changed
/// or removed: triggers enabled `ALWAYS` refuse `UPDATE`, `DELETE` and `TRUNCATE` with SQLSTATE
/// ``FactStore/immutableSQLState``.
public struct FactErasure: PersistentModel, Hashable {
    public var id: UUID
    /// When the erasure was made (the database's clock).
    public var createdAt: Date
    /// Always equal to ``createdAt``.
    public var updatedAt: Date
    /// The erased fact's namespace.
    public var namespace: String
    /// The erased fact's key.
    public var key: String
    /// How many versions had their value removed by this erasure (0 when all already were).
    public var versions: Int32
    /// Why the fact was erased (a user's request, a retention rule).
    public var reason: String
    /// Who erased it.
    public var erasedBy: String

    /// When the erasure was made.
    public var erasedAt: Date { self.createdAt }

    /// An erasure record; normally made by `verbatim.erase_fact`.
    public init(namespace: String, key: String, versions: Int32, reason: String, erasedBy: String,
                id: UUID = .v7(), createdAt: Date = Date(), updatedAt: Date = Date()) {
        self.id = id
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.namespace = namespace
        self.key = key
        self.versions = versions
        self.reason = reason
        self.erasedBy = erasedBy
    }

    /// Refuses every change of an audit row.
    static let appendOnlyTriggerBody = """
        BEGIN
            RAISE EXCEPTION 'the erasure audit is append-only: % on %.% refused', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
                USING ERRCODE = '\(FactStore.immutableSQLState)';
        END;
        """

    public static var tableLocation: (chamber: Chamber, table: String) { (.verbatim, "fact_erasures") }

    public static let schema = ModelSchema(
        modelName: "FactErasure",
        table: "fact_erasures",
        chamber: .verbatim,
        columns: [
            ModelSchema.column("namespace", String.self),
            ModelSchema.column("key", String.self),
            ModelSchema.column("versions", Int32.self),
            ModelSchema.column("reason", String.self),
            ModelSchema.column("erasedBy", String.self),
        ],
        indexes: [IndexDescription(columns: ["namespace", "key"])],
        checks: [CheckConstraint(name: "fact_erasures_text_check", expression: "reason <> '' AND erased_by <> ''")],
        triggers: TriggerDescription.refusingChanges(name: "fact_erasures_append_only", body: appendOnlyTriggerBody)
    )

    public func bindColumns(to row: inout ModelRowWriter) throws {
        try row.write(self.namespace)
        try row.write(self.key)
        try row.write(self.versions)
        try row.write(self.reason)
        try row.write(self.erasedBy)
    }

    public init(row: inout ModelRowReader) throws {
        (self.id, self.createdAt, self.updatedAt) = try row.readBase()
        self.namespace = try row.read(String.self)
        self.key = try row.read(String.self)
        self.versions = try row.read(Int32.self)
        self.reason = try row.read(String.self)
        self.erasedBy = try row.read(String.self)
    }
}
