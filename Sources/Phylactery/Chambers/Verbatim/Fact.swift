public import Foundation
import PostgresNIO

/// One recorded version of a fact: `namespace` + `key` → a JSON value, in `verbatim.facts`.
///
/// Rows are never changed: the table carries triggers that refuse `UPDATE`, `DELETE` and `TRUNCATE`
/// for everyone, raw SQL included (SQLSTATE ``FactStore/immutableSQLState``); they are enabled
/// `ALWAYS`, so a session with `session_replication_role = replica` cannot slip past them. Changing a fact records
/// a new version (``FactStore/supersede(_:key:value:source:expectedVersion:)``) that points at the one
/// it replaces; the current fact is the highest version of its key.
public struct Fact: PersistentModel, Hashable {
    public var id: UUID
    /// When this version was recorded (the database's clock).
    public var createdAt: Date
    /// Always equal to ``createdAt``: the row is never updated.
    public var updatedAt: Date
    /// The fact's namespace (`network`, `people`, an extension's slug).
    public var namespace: String
    /// The key within the namespace (`gateway.ip`).
    public var key: String
    /// 1 for the first recording, one more for each supersede.
    public var version: Int32
    /// The value, as JSON.
    public var value: RawJSONB
    /// Where the fact came from (a user, a document, an extension).
    public var source: String
    /// The version this one replaced, or `nil` for version 1.
    public var supersedes: UUID?

    /// When this version was recorded.
    public var recordedAt: Date { self.createdAt }

    /// Decodes ``value`` as `T`.
    public func decode<T: Decodable>(_ type: T.Type = T.self) throws -> T { try self.value.decode(type) }

    /// A fact version; normally made by ``FactStore``.
    public init(namespace: String, key: String, version: Int32, value: RawJSONB, source: String, supersedes: UUID? = nil,
                id: UUID = .v7(), createdAt: Date = Date(), updatedAt: Date = Date()) {
        self.id = id
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.namespace = namespace
        self.key = key
        self.version = version
        self.value = value
        self.source = source
        self.supersedes = supersedes
    }

    /// The trigger body: one refusal for every operation that would change or remove a row.
    static let immutableTriggerBody = """
        BEGIN
            RAISE EXCEPTION 'verbatim facts are immutable: % on %.% refused', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
                USING ERRCODE = '\(FactStore.immutableSQLState)', HINT = 'record a new version with supersede';
        END;
        """

    public static var tableLocation: (chamber: Chamber, table: String) { (.verbatim, "facts") }

    public static let schema = ModelSchema(
        modelName: "Fact",
        table: "facts",
        chamber: .verbatim,
        columns: [
            ModelSchema.column("namespace", String.self),
            ModelSchema.column("key", String.self),
            ModelSchema.column("version", Int32.self),
            ModelSchema.column("value", RawJSONB.self),
            ModelSchema.column("source", String.self),
            ModelSchema.column("supersedes", UUID?.self, references: ForeignKey(chamber: .verbatim, table: "facts")),
        ],
        indexes: [IndexDescription(columns: ["namespace", "key"], operatorClass: "text_pattern_ops")],
        uniqueConstraints: [UniqueConstraint(columns: ["namespace", "key", "version"])],
        checks: [
            CheckConstraint(name: "facts_version_check", expression: "version >= 1"),
            CheckConstraint(name: "facts_names_check", expression: "namespace <> '' AND key <> ''"),
        ],
        triggers: [
            // ENABLE ALWAYS: they fire even in a session with session_replication_role = replica.
            TriggerDescription(name: "facts_immutable", timing: .before, events: [.update, .delete], firing: .always, body: immutableTriggerBody),
            TriggerDescription(name: "facts_immutable_truncate", timing: .before, events: [.truncate], forEachRow: false, firing: .always, body: immutableTriggerBody),
        ]
    )

    public func bindColumns(to row: inout ModelRowWriter) throws {
        try row.write(self.namespace)
        try row.write(self.key)
        try row.write(self.version)
        try row.write(self.value)
        try row.write(self.source)
        try row.write(self.supersedes)
    }

    public init(row: inout ModelRowReader) throws {
        (self.id, self.createdAt, self.updatedAt) = try row.readBase()
        self.namespace = try row.read(String.self)
        self.key = try row.read(String.self)
        self.version = try row.read(Int32.self)
        self.value = try row.read(RawJSONB.self)
        self.source = try row.read(String.self)
        self.supersedes = try row.read(UUID?.self)
    }
}

