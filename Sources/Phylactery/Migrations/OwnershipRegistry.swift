import Foundation
package import Logging
package import PostgresNIO

/// Who owns which table, kept in `public.phylactery_registry`.
///
/// Besides owner, model and revision, each row remembers the objects the model declared when it
/// was last migrated. That is how the planner tells a column the owner removed from its model
/// (dropped, with consent) from one somebody added by hand (reported, never touched).
package struct OwnershipRecord: Sendable, Hashable, Codable {
    package var owner: String
    package var model: String
    package var schema: String
    package var table: String
    package var ownerVersion: String
    /// A fingerprint of the table shape the model asked for.
    package var revision: String
    package var declared: Declared

    /// Names of the objects a model declared.
    package struct Declared: Sendable, Hashable, Codable {
        package var columns: [String]
        package var indexes: [String]
        package var constraints: [String]
        package var storage: [String]
        /// Trigger names; absent (not empty) when the model has none, so older records still compare equal.
        package var triggers: [String]? = nil
    }

    package var tableName: QualifiedName { QualifiedName(self.schema, self.table) }

    package init(_ table: WantedSchema.Table) {
        let shape = table.shape
        self.owner = table.owner
        self.model = table.model
        self.schema = shape.name.schema
        self.table = shape.name.name
        self.ownerVersion = table.ownerVersion
        self.declared = Declared(
            columns: shape.columns.map(\.name),
            indexes: shape.indexes.map(\.name),
            constraints: (shape.uniques.map(\.name) + shape.checks.map(\.name) + shape.foreignKeys.map(\.name)).sorted(),
            storage: shape.storage.keys.sorted(),
            triggers: shape.triggers.isEmpty ? nil : shape.triggers.map(\.name)
        )
        self.revision = Self.fingerprint(of: shape)
    }

    /// A stable hash of a rendering of the shape: equal shapes, equal revisions, on any machine.
    static func fingerprint(of shape: TableShape) -> String {
        var text = DDL.createTable(shape)
        for index in shape.indexes { text += "\n" + DDL.createIndex(index, on: shape, concurrently: false) }
        for key in shape.foreignKeys { text += "\n" + DDL.addForeignKey(key, on: shape.name, notValid: false) }
        for trigger in shape.triggers { text += "\n" + ([DDL.createTriggerFunction(trigger)] + DDL.createTrigger(trigger, on: shape.name)).joined(separator: "\n") }
        let hex = String(SQLNaming.stableHash(text), radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}

/// The registry and ledger tables, created by the core before anything is planned.
package enum MigrationBookkeeping {
    package static let registryTable = QualifiedName("public", "phylactery_registry")
    package static let ledgerTable = QualifiedName("public", "phylactery_migrations")
    /// Tables in `public` that belong to the core's bookkeeping, never reported as unknown.
    package static let reservedPrefix = "phylactery_"
    /// The advisory lock key held while migrations apply ("phylmigr").
    package static let advisoryLockKey: Int64 = 0x7068_796C_6D69_6772

    package static let createStatements = [
        """
        CREATE TABLE IF NOT EXISTS public.phylactery_registry (
            owner text NOT NULL,
            model text NOT NULL,
            table_schema text NOT NULL,
            table_name text NOT NULL,
            owner_version text NOT NULL,
            revision text NOT NULL,
            declared jsonb NOT NULL,
            recorded_at timestamp with time zone NOT NULL DEFAULT now(),
            PRIMARY KEY (owner, model)
        )
        """,
        """
        CREATE TABLE IF NOT EXISTS public.phylactery_migrations (
            position bigint GENERATED ALWAYS AS IDENTITY,
            revision text PRIMARY KEY,
            parent text,
            message text NOT NULL,
            up_sql text NOT NULL,
            down_sql text NOT NULL,
            checksum text NOT NULL,
            source text NOT NULL,
            text text NOT NULL,
            applied_at timestamp with time zone NOT NULL DEFAULT now()
        )
        """,
    ]

    /// Creates both tables if missing, under the migration lock so two processes don't race.
    package static func bootstrap(on connection: PostgresConnection, logger: Logger) async throws {
        for statement in createStatements {
            _ = try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger).collect()
        }
    }

    /// Every ownership row.
    package static func readRegistry(on connection: PostgresConnection, logger: Logger) async throws -> [OwnershipRecord] {
        let rows = try await connection.query(
            "SELECT owner, model, table_schema, table_name, owner_version, revision, declared FROM public.phylactery_registry ORDER BY owner, model",
            logger: logger
        ).collect()
        return try rows.map { row in
            let (owner, model, schema, table, version, revision) = try row.decode((String, String, String, String, String, String).self)
            let declared = try row.decodeJSON(OwnershipRecord.Declared.self, column: 6)
            return OwnershipRecord(owner: owner, model: model, schema: schema, table: table, ownerVersion: version, revision: revision, declared: declared)
        }
    }

    /// The statement that makes the registry row of `record`'s model equal `record` (an upsert).
    /// Every value is a bind parameter carried with the statement, never spliced into its text.
    static func recordStatement(_ record: OwnershipRecord) -> MigrationStatement {
        let declared = String(decoding: (try? JSONBEncoder().encodeToBytes(record.declared)) ?? Array("{}".utf8), as: UTF8.self)
        return MigrationStatement(
            """
            INSERT INTO public.phylactery_registry (owner, model, table_schema, table_name, owner_version, revision, declared) \
            VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb) \
            ON CONFLICT (owner, model) DO UPDATE SET table_schema = EXCLUDED.table_schema, table_name = EXCLUDED.table_name, \
            owner_version = EXCLUDED.owner_version, revision = EXCLUDED.revision, declared = EXCLUDED.declared, recorded_at = now()
            """,
            parameters: [record.owner, record.model, record.schema, record.table, record.ownerVersion, record.revision, declared])
    }

    /// The statement that removes the registry row of one model.
    static func forgetStatement(owner: String, model: String) -> MigrationStatement {
        MigrationStatement("DELETE FROM public.phylactery_registry WHERE owner = $1 AND model = $2", parameters: [owner, model])
    }
}

extension OwnershipRecord {
    package init(owner: String, model: String, schema: String, table: String, ownerVersion: String, revision: String, declared: Declared) {
        self.owner = owner
        self.model = model
        self.schema = schema
        self.table = table
        self.ownerVersion = ownerVersion
        self.revision = revision
        self.declared = declared
    }
}
