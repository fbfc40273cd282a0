import PhylacteryNaming

/// What a model asks of the database: its table, columns, indexes and constraints.
///
/// The `@Model` macro writes one for a struct; a model written by hand builds one the same way.
/// Names are PostgreSQL names (snake_case columns); the core adds the ``UUIDBase`` columns
/// (`id`, `created_at`, `updated_at`) itself, so `columns` holds only the model's own.
public struct ModelSchema: Sendable, Hashable {
    /// The Swift type's name, used in messages and in the ownership registry.
    public var modelName: String
    /// The table name, without schema. Extension tables start with their owner's slug and `_`.
    public var table: String
    /// The chamber (schema) the table lives in.
    public var chamber: Chamber
    /// Former names of the table: when the table is missing and one of these exists, it is renamed.
    public var renamedFrom: [String]
    /// The model's own columns, in declaration order.
    public var columns: [ColumnDescription]
    /// Indexes, including the single-column ones declared on properties.
    public var indexes: [IndexDescription]
    /// Composite unique constraints (single-column ones are on the column).
    public var uniqueConstraints: [UniqueConstraint]
    /// Table-level CHECK constraints written as SQL boolean expressions.
    public var checks: [CheckConstraint]
    /// Storage parameters (`fillfactor`, `autovacuum_vacuum_scale_factor`, …) as `WITH (…)` takes them.
    public var storage: [String: String]
    /// Native partitioning of the table (`PARTITION BY …`), or `nil` for a plain table; see ``TablePartitioning``.
    public var partitioning: TablePartitioning? = nil
    /// Triggers on the table, each with its PL/pgSQL function (the verbatim chamber's immutability).
    public var triggers: [TriggerDescription]

    /// Describes a model's table.
    public init(
        modelName: String,
        table: String,
        chamber: Chamber = .public,
        renamedFrom: [String] = [],
        columns: [ColumnDescription],
        indexes: [IndexDescription] = [],
        uniqueConstraints: [UniqueConstraint] = [],
        checks: [CheckConstraint] = [],
        storage: [String: String] = [:],
        triggers: [TriggerDescription] = []
    ) {
        self.modelName = modelName
        self.table = table
        self.chamber = chamber
        self.renamedFrom = renamedFrom
        self.columns = columns
        self.indexes = indexes
        self.uniqueConstraints = uniqueConstraints
        self.checks = checks
        self.storage = storage
        self.triggers = triggers
    }

    /// The `id`, `created_at` and `updated_at` columns every model has, ahead of its own.
    public static let baseColumns: [ColumnDescription] = [
        ColumnDescription(property: "id", name: "id", type: .uuid),
        ColumnDescription(property: "createdAt", name: "created_at", type: .timestamptz, defaultSQL: "now()"),
        ColumnDescription(property: "updatedAt", name: "updated_at", type: .timestamptz, defaultSQL: "now()"),
    ]

    /// Every column in the order rows are read: the base columns, then the model's own.
    public var allColumns: [ColumnDescription] { Self.baseColumns + self.columns }

    /// The version column (``ColumnDescription/isVersion``), if the model has one.
    public var rowVersionColumn: ColumnDescription? { self.columns.first(where: \.isVersion) }

    /// Indexes declared on columns (`@Index`) plus table-level ones, with names filled in.
    public var allIndexes: [IndexDescription] {
        var result = [IndexDescription]()
        for column in self.columns {
            if let method = column.indexMethod {
                result.append(IndexDescription(columns: [column.name], method: method, operatorClass: column.indexOperatorClass))
            }
        }
        result += self.indexes
        return result.map { index in
            var index = index
            if index.name == nil { index.name = SQLNaming.constraintName(table: self.table, columns: index.keyNames, suffix: "idx") }
            return index
        }
    }

    /// Unique constraints from `@Unique` columns and composite ones, with names filled in.
    public var allUniqueConstraints: [UniqueConstraint] {
        var result = self.columns.filter(\.isUnique).map { UniqueConstraint(columns: [$0.name]) }
        result += self.uniqueConstraints
        return result.map { constraint in
            var constraint = constraint
            if constraint.name == nil { constraint.name = SQLNaming.constraintName(table: self.table, columns: constraint.columns, suffix: "key") }
            return constraint
        }
    }

    /// The name of the foreign key from `column`: `<table>_<column>_fkey`, as PostgreSQL would name it.
    public func foreignKeyName(for column: ColumnDescription) -> String {
        SQLNaming.constraintName(table: self.table, columns: [column.name], suffix: "fkey")
    }

    /// CHECK constraints: one per string-backed enum column, then the table-level ones.
    public var allChecks: [CheckConstraint] {
        var result = [CheckConstraint]()
        for column in self.columns {
            if let allowed = column.allowedValues {
                let list = allowed.map(SQLIdentifier.literal).joined(separator: ", ")
                result.append(CheckConstraint(name: SQLNaming.constraintName(table: self.table, columns: [column.name], suffix: "check"), expression: "\(SQLIdentifier.quote(column.name)) IN (\(list))"))
            }
        }
        for check in self.checks {
            var check = check
            if check.name == nil { check.name = SQLNaming.constraintName(table: self.table, columns: ["check", String(result.count + 1)], suffix: "check") }
            result.append(check)
        }
        return result
    }
}

/// One column of a model.
public struct ColumnDescription: Sendable, Hashable {
    /// The Swift property the column stores.
    public var property: String
    /// The column name (the property's name in snake_case unless given).
    public var name: String
    /// The SQL type.
    public var type: SQLType
    /// Whether NULL is allowed (an `Optional` property).
    public var isNullable: Bool
    /// A default, as an SQL expression (`0`, `'draft'`, `now()`), or `nil`.
    public var defaultSQL: String?
    /// Whether the column alone is unique.
    public var isUnique: Bool
    /// An index on this column alone, with this method.
    public var indexMethod: IndexMethod?
    /// The operator class of that index (`vector_cosine_ops` for an hnsw index on a vector).
    public var indexOperatorClass: String?
    /// A foreign key from this column.
    public var references: ForeignKey?
    /// For a string-backed enum: the values the CHECK constraint allows.
    public var allowedValues: [String]?
    /// Former names: when the column is missing and one of these exists, it is renamed.
    public var renamedFrom: [String]
    /// Whether this is the model's version column for optimistic concurrency (`@Version`,
    /// ``ModelSchema/versionColumn(_:_:name:)``): counted up by every update, checked by
    /// ``Transaction/update(_:file:line:)``.
    public var isVersion: Bool

    /// Describes a column; usually written by the `@Model` macro through ``ModelSchema/column(_:_:name:type:default:unique:index:operatorClass:references:renamedFrom:)``.
    public init(
        property: String,
        name: String? = nil,
        type: SQLType,
        isNullable: Bool = false,
        defaultSQL: String? = nil,
        isUnique: Bool = false,
        indexMethod: IndexMethod? = nil,
        indexOperatorClass: String? = nil,
        references: ForeignKey? = nil,
        allowedValues: [String]? = nil,
        renamedFrom: [String] = [],
        isVersion: Bool = false
    ) {
        self.property = property
        self.name = name ?? SQLNaming.snakeCase(property)
        self.type = type
        self.isNullable = isNullable
        self.defaultSQL = defaultSQL
        self.isUnique = isUnique
        self.indexMethod = indexMethod
        self.indexOperatorClass = indexOperatorClass
        self.references = references
        self.allowedValues = allowedValues
        self.renamedFrom = renamedFrom
        self.isVersion = isVersion
    }
}

/// An SQL type, spelled as PostgreSQL's `format_type` reports it for the built-in mappings.
///
/// An explicit type given as text (`"varchar(20)"`) is respelled by the server when a plan is
/// made, so `varchar(20)` and `character varying(20)` never show as a difference.
public struct SQLType: Sendable, Hashable, CustomStringConvertible, ExpressibleByStringLiteral {
    /// The type as written in DDL.
    public var spelling: String

    /// A type written as SQL.
    public init(_ spelling: String) { self.spelling = spelling }
    public init(stringLiteral value: String) { self.spelling = value }
    public var description: String { self.spelling }

    public static let text = SQLType("text")
    public static let bigint = SQLType("bigint")
    public static let integer = SQLType("integer")
    public static let smallint = SQLType("smallint")
    public static let doublePrecision = SQLType("double precision")
    public static let real = SQLType("real")
    public static let boolean = SQLType("boolean")
    public static let uuid = SQLType("uuid")
    public static let timestamptz = SQLType("timestamp with time zone")
    public static let bytea = SQLType("bytea")
    public static let numeric = SQLType("numeric")
    public static let jsonb = SQLType("jsonb")
    /// `character varying(n)`.
    public static func varchar(_ length: Int) -> SQLType { SQLType("character varying(\(length))") }
    /// pgvector's `vector(n)`.
    public static func vector(_ dimensions: Int) -> SQLType { SQLType("vector(\(dimensions))") }

    /// The spellings that are already what `format_type` prints, so they need no respelling.
    static let canonicalSpellings: Set<String> = [
        "text", "bigint", "integer", "smallint", "double precision", "real", "boolean", "uuid",
        "timestamp with time zone", "bytea", "numeric", "jsonb",
    ]
}

/// An index access method.
public enum IndexMethod: String, Sendable, Hashable, CaseIterable {
    case btree, hash, gin, gist, brin, hnsw, ivfflat
}

/// An index on a table.
public struct IndexDescription: Sendable, Hashable {
    /// The index name; `<table>_<columns>_idx` when `nil`.
    public var name: String?
    /// Key columns, or SQL expressions in parentheses (`"(lower(title))"`).
    public var columns: [String]
    /// The access method.
    public var method: IndexMethod
    /// Whether the index is unique.
    public var isUnique: Bool
    /// One operator class for every key (`vector_cosine_ops`, `jsonb_path_ops`), or `nil` for the default.
    public var operatorClass: String?
    /// A partial index predicate (`status = 'open'`), or `nil`.
    public var predicate: String?
    /// Index storage parameters (`m`, `ef_construction` for hnsw).
    public var parameters: [String: String]

    /// Describes an index.
    public init(name: String? = nil, columns: [String], method: IndexMethod = .btree, isUnique: Bool = false, operatorClass: String? = nil, predicate: String? = nil, parameters: [String: String] = [:]) {
        self.name = name
        self.columns = columns
        self.method = method
        self.isUnique = isUnique
        self.operatorClass = operatorClass
        self.predicate = predicate
        self.parameters = parameters
    }

    /// The keys as words for a generated name (expressions reduced to their identifiers).
    var keyNames: [String] {
        self.columns.map { key in
            let words = key.split(whereSeparator: { !($0.isLetter || $0.isNumber || $0 == "_") })
            return words.joined(separator: "_").lowercased()
        }
    }

    /// Whether a key is an expression rather than a column name.
    static func isExpression(_ key: String) -> Bool { key.hasPrefix("(") }
}

/// A unique constraint over one or more columns.
public struct UniqueConstraint: Sendable, Hashable {
    /// The constraint name; `<table>_<columns>_key` when `nil`.
    public var name: String?
    /// The columns, in order.
    public var columns: [String]
    /// Describes a unique constraint.
    public init(name: String? = nil, columns: [String]) {
        self.name = name
        self.columns = columns
    }
}

/// A CHECK constraint.
public struct CheckConstraint: Sendable, Hashable {
    /// The constraint name; generated when `nil`.
    public var name: String?
    /// A boolean SQL expression over the table's columns.
    public var expression: String
    /// Describes a CHECK constraint.
    public init(name: String? = nil, expression: String) {
        self.name = name
        self.expression = expression
    }
}

/// A foreign key from one column to another table's primary key.
public struct ForeignKey: Sendable, Hashable {
    /// The referenced table's chamber.
    public var chamber: Chamber
    /// The referenced table.
    public var table: String
    /// The referenced column.
    public var column: String
    /// What happens to this row when the referenced row is deleted.
    public var onDelete: ReferentialAction

    /// A foreign key to the `id` of another model's table.
    public init<Target: PersistentModel>(_ target: Target.Type, onDelete: ReferentialAction = .noAction) {
        let location = Target.tableLocation
        self.init(chamber: location.chamber, table: location.table, onDelete: onDelete)
    }

    /// A foreign key to a table by name.
    public init(chamber: Chamber = .public, table: String, column: String = "id", onDelete: ReferentialAction = .noAction) {
        self.chamber = chamber
        self.table = table
        self.column = column
        self.onDelete = onDelete
    }
}

/// The `ON DELETE` rule of a foreign key.
public enum ReferentialAction: String, Sendable, Hashable, CaseIterable {
    case noAction = "NO ACTION"
    case restrict = "RESTRICT"
    case cascade = "CASCADE"
    case setNull = "SET NULL"
    case setDefault = "SET DEFAULT"
}

/// How Phylactery derives SQL names from Swift names.
public enum SQLNaming {
    /// PostgreSQL's longest identifier (NAMEDATALEN − 1 bytes); longer names are silently truncated by the server.
    public static let maximumIdentifierLength = 63

    /// `workspaceID` → `workspace_id`, `createdAt` → `created_at`, `HTTPServer` → `http_server`.
    public static func snakeCase(_ name: String) -> String {
        SnakeCase.convert(name)
    }

    /// FNV-1a over the UTF-8 bytes: the same on every run and machine, unlike `Hasher`, so names and
    /// fingerprints derived from it can be stored and compared later.
    static func stableHash(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        return hash
    }

    /// `<table>_<columns>_<suffix>`, shortened with a stable hash when longer than 63 bytes.
    public static func constraintName(table: String, columns: [String], suffix: String) -> String {
        let full = ([table] + columns + [suffix]).joined(separator: "_")
        guard full.utf8.count > maximumIdentifierLength else { return full }
        let tag = String(stableHash(full), radix: 36).prefix(8)
        let keep = maximumIdentifierLength - tag.count - suffix.count - 2
        return String(full.utf8.prefix(keep))! + "_" + tag + "_" + suffix
    }
}
