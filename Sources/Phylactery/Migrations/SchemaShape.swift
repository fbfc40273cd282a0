/// A database schema as PostgreSQL itself spells it: the live catalog (read by ``CatalogReader``)
/// and the federation's wish (``WantedSchema``) are both turned into this, so comparing them never
/// shows differences that are only spelling.
///
/// Types are `format_type` output, defaults `pg_get_expr`, CHECK expressions
/// `pg_get_constraintdef`, index expressions and predicates `pg_get_indexdef`/`pg_get_expr`.
package struct SchemaShape: Sendable, Hashable {
    /// Schemas that exist (only those asked about).
    package var schemas: Set<String> = []
    /// Installed extensions: name → version.
    package var extensions: [String: String] = [:]
    /// Tables, sorted by schema then name.
    package var tables: [TableShape] = []

    package init(schemas: Set<String> = [], extensions: [String: String] = [:], tables: [TableShape] = []) {
        self.schemas = schemas
        self.extensions = extensions
        self.tables = tables.sorted { $0.name < $1.name }
    }

    /// The table with this name, if present.
    package subscript(_ name: QualifiedName) -> TableShape? {
        self.tables.first { $0.name == name }
    }
}

/// `schema.name`.
package struct QualifiedName: Sendable, Hashable, Comparable, CustomStringConvertible {
    package var schema: String
    package var name: String

    package init(_ schema: String, _ name: String) {
        self.schema = schema
        self.name = name
    }

    /// Quoted for SQL: `"schema"."name"`.
    package var sql: String { SQLIdentifier.quote(schema: self.schema, name: self.name) }
    package var description: String { "\(self.schema).\(self.name)" }

    package static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.schema, lhs.name) < (rhs.schema, rhs.name)
    }
}

/// One table and everything attached to it.
package struct TableShape: Sendable, Hashable {
    package var name: QualifiedName
    /// Columns in `attnum` order.
    package var columns: [ColumnShape]
    /// The primary key, if any.
    package var primaryKey: KeyShape?
    /// Unique constraints, sorted by name.
    package var uniques: [KeyShape]
    /// CHECK constraints (not NOT NULL ones), sorted by name.
    package var checks: [CheckShape]
    /// Foreign keys from this table, sorted by name.
    package var foreignKeys: [ForeignKeyShape]
    /// Indexes that do not back a primary key or unique constraint, sorted by name.
    package var indexes: [IndexShape]
    /// Storage parameters from `reloptions` (`fillfactor` → `70`).
    package var storage: [String: String]
    /// `pg_class.reltuples`: an estimate, −1 when never analysed. Not compared.
    package var estimatedRows: Double
    /// The partition key as `pg_get_partkeydef` prints it (`RANGE (start_us)`), or `nil` for a plain table.
    package var partitioning: String? = nil
    /// User triggers with their functions, sorted by name.
    package var triggers: [TriggerShape]

    package init(
        name: QualifiedName, columns: [ColumnShape], primaryKey: KeyShape? = nil, uniques: [KeyShape] = [],
        checks: [CheckShape] = [], foreignKeys: [ForeignKeyShape] = [], indexes: [IndexShape] = [],
        storage: [String: String] = [:], estimatedRows: Double = -1, triggers: [TriggerShape] = []
    ) {
        self.name = name
        self.columns = columns
        self.primaryKey = primaryKey
        self.uniques = uniques.sorted { $0.name < $1.name }
        self.checks = checks.sorted { $0.name < $1.name }
        self.foreignKeys = foreignKeys.sorted { $0.name < $1.name }
        self.indexes = indexes.sorted { $0.name < $1.name }
        self.storage = storage
        self.estimatedRows = estimatedRows
        self.triggers = triggers.sorted { $0.name < $1.name }
    }

    package func column(_ name: String) -> ColumnShape? { self.columns.first { $0.name == name } }

    /// Equality of everything the planner compares (not the row estimate).
    package func sameStructure(as other: TableShape) -> Bool {
        var left = self, right = other
        left.estimatedRows = 0
        right.estimatedRows = 0
        return left == right
    }
}

/// A column.
package struct ColumnShape: Sendable, Hashable {
    package var name: String
    /// `format_type(atttypid, atttypmod)`: `text`, `character varying(20)`, `vector(384)`.
    package var type: String
    package var notNull: Bool
    /// `pg_get_expr(adbin, adrelid)`, or `nil`.
    package var defaultExpression: String?

    package init(name: String, type: String, notNull: Bool, defaultExpression: String? = nil) {
        self.name = name
        self.type = type
        self.notNull = notNull
        self.defaultExpression = defaultExpression
    }
}

/// A primary key or unique constraint.
package struct KeyShape: Sendable, Hashable {
    package var name: String
    package var columns: [String]

    package init(name: String, columns: [String]) {
        self.name = name
        self.columns = columns
    }
}

/// A CHECK constraint.
package struct CheckShape: Sendable, Hashable {
    package var name: String
    /// `pg_get_constraintdef` without a trailing ` NOT VALID`: `CHECK ((price > 0))`.
    package var definition: String
    /// False while the constraint is `NOT VALID` (added but existing rows not yet checked).
    package var validated: Bool

    package init(name: String, definition: String, validated: Bool = true) {
        self.name = name
        self.definition = definition
        self.validated = validated
    }
}

/// A foreign key.
package struct ForeignKeyShape: Sendable, Hashable {
    package var name: String
    package var columns: [String]
    package var target: QualifiedName
    package var targetColumns: [String]
    /// `NO ACTION`, `RESTRICT`, `CASCADE`, `SET NULL` or `SET DEFAULT`.
    package var onDelete: String
    package var validated: Bool

    package init(name: String, columns: [String], target: QualifiedName, targetColumns: [String], onDelete: String, validated: Bool = true) {
        self.name = name
        self.columns = columns
        self.target = target
        self.targetColumns = targetColumns
        self.onDelete = onDelete
        self.validated = validated
    }
}

/// An index that does not back a constraint.
package struct IndexShape: Sendable, Hashable {
    package var name: String
    /// `pg_am.amname`: `btree`, `gin`, `hnsw`, …
    package var method: String
    package var isUnique: Bool
    /// Key columns by name; expression keys as `pg_get_indexdef(indexrelid, k, true)` prints them.
    package var keys: [String]
    /// Per key: the operator class when it is not the type's default, else `nil`.
    package var operatorClasses: [String?]
    /// `pg_get_expr(indpred, indrelid)`, or `nil`.
    package var predicate: String?
    /// Index storage parameters from the index's `reloptions` (`m` → `16`).
    package var parameters: [String: String]
    /// False for an index left invalid by a failed `CREATE INDEX CONCURRENTLY`. Not compared.
    package var isValid: Bool

    package init(name: String, method: String, isUnique: Bool, keys: [String], operatorClasses: [String?], predicate: String? = nil, parameters: [String: String] = [:], isValid: Bool = true) {
        self.name = name
        self.method = method
        self.isUnique = isUnique
        self.keys = keys
        self.operatorClasses = operatorClasses
        self.predicate = predicate
        self.parameters = parameters
        self.isValid = isValid
    }
}
