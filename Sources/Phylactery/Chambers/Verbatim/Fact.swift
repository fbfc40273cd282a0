public import Foundation
import PostgresNIO

/// One recorded version of a fact: `namespace` + `key` → a JSON value, in `verbatim.facts`.
///
/// Rows are never changed: the table carries triggers that refuse `UPDATE`, `DELETE` and `TRUNCATE`
/// for everyone, raw SQL included (SQLSTATE ``FactStore/immutableSQLState``); they are enabled
/// `ALWAYS`, so a session with `session_replication_role = replica` cannot slip past them. Changing a fact records
/// a new version (``FactStore/supersede(_:key:value:source:sensitivity:expectedVersion:)``) that points at the one
/// it replaces; the current fact is the highest version of its key.
///
/// Two kinds of version carry no value:
/// - a **retraction** (``isRetraction``), recorded by ``FactStore/retract(_:key:reason:source:)``: a
///   tombstone saying the fact no longer holds, with its ``reason``;
/// - an **erased** version (``erasedAt`` set): its value (and its retraction reason) was removed for
///   privacy by ``FactStore/erase(_:key:reason:by:)``, the one change the triggers allow, made only
///   through the database function `verbatim.erase_fact`.
public struct Fact: PersistentModel, Hashable {
    public var id: UUID
    /// When this version was recorded (the database's clock).
    public var createdAt: Date
    /// Always equal to ``createdAt``: the row is never updated (erasure changes only ``value``,
    /// ``reason`` and ``erasedAt``).
    public var updatedAt: Date
    /// The fact's namespace (`network`, `people`, an extension's slug).
    public var namespace: String
    /// The key within the namespace (`gateway.ip`).
    public var key: String
    /// 1 for the first recording, one more for each later version (supersede, retraction, or a `put`
    /// after a retraction).
    public var version: Int32
    /// The value, as JSON; `nil` for a retraction and for an erased version.
    public var value: RawJSONB?
    /// Where the fact came from (a user, a document, an extension).
    public var source: String
    /// The version this one replaced, or `nil` for version 1.
    public var supersedes: UUID?
    /// True for a tombstone recorded by ``FactStore/retract(_:key:reason:source:)``.
    public var isRetraction: Bool
    /// Why the fact was retracted (retractions only; `nil` once erased).
    public var reason: String?
    /// Who may see this version; reads take the labels their caller may see.
    public var sensitivity: Sensitivity
    /// When the value was erased by ``FactStore/erase(_:key:reason:by:)``, or `nil`.
    public var erasedAt: Date?

    /// When this version was recorded.
    public var recordedAt: Date { self.createdAt }

    /// Whether the value was erased.
    public var isErased: Bool { self.erasedAt != nil }

    /// Decodes ``value`` as `T`.
    ///
    /// - Throws: ``PhylacteryError/Code/notFound`` for a version without a value (a retraction or an
    ///   erased version).
    public func decode<T: Decodable>(_ type: T.Type = T.self) throws -> T {
        guard let value = self.value else {
            throw PhylacteryError(.notFound, "fact \(self.namespace)/\(self.key) version \(self.version) has no value (\(self.isErased ? "it was erased" : "it is a retraction")); read the current version with get")
        }
        return try value.decode(type)
    }

    /// A fact version; normally made by ``FactStore``.
    public init(namespace: String, key: String, version: Int32, value: RawJSONB?, source: String, supersedes: UUID? = nil,
                isRetraction: Bool = false, reason: String? = nil, sensitivity: Sensitivity = .private, erasedAt: Date? = nil,
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
        self.isRetraction = isRetraction
        self.reason = reason
        self.sensitivity = sensitivity
        self.erasedAt = erasedAt
    }

    /// The trigger body: one refusal for every operation that would change or remove a row, but for
    /// the erasure `verbatim.erase_fact` makes.
    ///
    /// How the trigger knows the erase function is calling (and not someone imitating it): a session
    /// setting (GUC) or a marker row would be forgeable by any session that can write them, so the
    /// trigger reads the call stack PostgreSQL itself reports (`GET DIAGNOSTICS … PG_CONTEXT`). It
    /// must be exactly three frames: this trigger; the erase function's `UPDATE`, word for word; and
    /// `verbatim.erase_fact` itself, schema-qualified (it runs with a fixed `search_path`, so its
    /// frame always prints the schema), as the outermost frame. A statement's text can be made to
    /// contain a forged frame line, but only inside a longer stack: a `DO` block or a function of the
    /// caller's adds its own frame last, and a top-level statement adds none, so the count and the
    /// last line cannot both match. Even then the row may change in one way only: `value` and
    /// `reason` set to NULL and `erased_at` set where it was NULL, every other column as it was.
    /// `DELETE` and `TRUNCATE` are always refused. (An owner who can replace the function or drop
    /// the trigger is beyond any trigger's reach; `doctor` and `migrate check` report a changed or
    /// missing trigger.)
    static let immutableTriggerBody = """
        DECLARE
            stack text;
            frames text[];
        BEGIN
            IF TG_OP = 'UPDATE' AND pg_trigger_depth() = 1 THEN
                GET DIAGNOSTICS stack = PG_CONTEXT;
                frames := string_to_array(stack, E'\\n');
                IF cardinality(frames) = 3
                   AND frames[2] = 'SQL statement "\(FactStore.eraseStatement)"'
                   AND frames[3] ~ '^PL/pgSQL function verbatim\\.erase_fact\\(text,text,text,text,uuid\\) line [0-9]+ at SQL statement$'
                   AND OLD.erased_at IS NULL AND NEW.erased_at IS NOT NULL AND NEW.value IS NULL AND NEW.reason IS NULL
                   AND to_jsonb(NEW) - ARRAY['value', 'reason', 'erased_at'] = to_jsonb(OLD) - ARRAY['value', 'reason', 'erased_at'] THEN
                    RETURN NEW;
                END IF;
            END IF;
            RAISE EXCEPTION 'verbatim facts are immutable: % on %.% refused', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
                USING ERRCODE = '\(FactStore.immutableSQLState)', HINT = 'record a new version with supersede, withdraw it with retract, or remove its value for privacy with erase (verbatim.erase_fact)';
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
            ModelSchema.column("value", RawJSONB?.self),
            ModelSchema.column("source", String.self),
            ModelSchema.column("supersedes", UUID?.self, references: ForeignKey(chamber: .verbatim, table: "facts")),
            ModelSchema.column("isRetraction", Bool.self, name: "retracted", default: "false"),
            ModelSchema.column("reason", String?.self),
            ModelSchema.column("sensitivity", Sensitivity.self, default: "'private'"),
            ModelSchema.column("erasedAt", Date?.self),
        ],
        indexes: [
            IndexDescription(columns: ["namespace", "key"], operatorClass: "text_pattern_ops"),
            // Recall by question: the words of namespace, key and value (full text) and the trigrams
            // of the fact's name (pg_trgm); see FactStore.search(question:options:).
            IndexDescription(name: "facts_words_idx", columns: ["(\(FactStore.wordsSQL))"], method: .gin),
            IndexDescription(name: "facts_name_trgm_idx", columns: ["(\(FactStore.nameSQL))"], method: .gin, operatorClass: "gin_trgm_ops"),
        ],
        uniqueConstraints: [UniqueConstraint(columns: ["namespace", "key", "version"])],
        checks: [
            CheckConstraint(name: "facts_version_check", expression: "version >= 1"),
            CheckConstraint(name: "facts_names_check", expression: "namespace <> '' AND key <> ''"),
            // A value exactly when the version is neither a retraction nor erased.
            CheckConstraint(name: "facts_value_check", expression: "(value IS NULL) = (retracted OR erased_at IS NOT NULL)"),
        ],
        // ENABLE ALWAYS: they fire even in a session with session_replication_role = replica.
        triggers: TriggerDescription.refusingChanges(name: "facts_immutable", body: immutableTriggerBody)
    )

    public func bindColumns(to row: inout ModelRowWriter) throws {
        try row.write(self.namespace)
        try row.write(self.key)
        try row.write(self.version)
        try row.write(self.value)
        try row.write(self.source)
        try row.write(self.supersedes)
        try row.write(self.isRetraction)
        try row.write(self.reason)
        try row.write(self.sensitivity)
        try row.write(self.erasedAt)
    }

    public init(row: inout ModelRowReader) throws {
        (self.id, self.createdAt, self.updatedAt) = try row.readBase()
        self.namespace = try row.read(String.self)
        self.key = try row.read(String.self)
        self.version = try row.read(Int32.self)
        self.value = try row.read(RawJSONB?.self)
        self.source = try row.read(String.self)
        self.supersedes = try row.read(UUID?.self)
        self.isRetraction = try row.read(Bool.self)
        self.reason = try row.read(String?.self)
        self.sensitivity = try row.read(Sensitivity.self)
        self.erasedAt = try row.read(Date?.self)
    }
}

