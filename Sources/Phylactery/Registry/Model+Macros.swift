/// Makes a struct a ``PersistentModel``: one table, one column per stored property.
///
/// ```swift
/// import Foundation
/// import Phylactery
///
/// @Model(table: "notebook_pages")
/// struct NotebookPage {
///     @References(Notebook.self, onDelete: .cascade) @Index
///     var notebookID: UUID
///     @Column(type: .varchar(200)) @Unique
///     var title: String
///     var body: String?
///     var tags: [String] = []          // any other Codable: jsonb
///     @Transient var isExpanded = false
/// }
/// ```
///
/// What the macro writes:
/// - `id`, `createdAt` and `updatedAt` (a version 7 UUID and the current time), unless the struct
///   declares them itself; they have the struct's access level.
/// - For a public or package struct that declares no initialiser, a memberwise initialiser as
///   visible as the struct and its stored properties allow: the struct's properties in declaration
///   order (initial values as defaults, `nil` for optional `var`s), then `id`, `createdAt` and
///   `updatedAt` with their defaults. An internal struct needs none: Swift's implicit memberwise
///   initialiser already takes the added properties, last and defaulted.
/// - One `_PhylacteryColumn_<property>` type alias per column (and `_PhylacteryReference_<property>`
///   per `@References`) inside the struct, so that the extension, which sits at file scope, names
///   the property types as the struct body resolves them (types nested beside the model included).
/// - In an extension, the conformance: ``PersistentModel/tableLocation``, ``PersistentModel/schema``,
///   ``PersistentModel/bindColumns(to:)``, ``PersistentModel/init(row:)`` and
///   ``PersistentModel/columnKeyPaths`` (for partial updates), public for a public struct.
///
/// Every stored instance property with an explicit type is a column, except `id`, `createdAt`,
/// `updatedAt` and `@Transient` ones; computed, `static` and `lazy` properties are not. A
/// ``ColumnCodable`` type gets its own SQL type (a ``PersistentEnum`` is `text` with a CHECK of its
/// cases), any other `Codable` type is `jsonb`, and an `Optional` makes the column nullable. Column
/// names are the property names in snake_case unless `@Column(name:)` says otherwise. A `let`
/// property is a column too, but it may not have an initial value (a row could not set it).
///
/// The generated code names `UUID` and `Date`, so the file needs `import Foundation`.
///
/// - Parameters:
///   - table: The table name. Defaults to the type name in snake_case, pluralised (`NotebookPage`
///     → `notebook_pages`, `Category` → `categories`, `Box` → `boxes`). An extension's tables must
///     start with its slug and `_`, so extension models always pass this.
///   - chamber: The schema the table lives in.
///   - renamedFrom: Former table names, to rename from when the table is missing.
///   - storage: Table storage parameters (`["fillfactor": "70"]`).
///   - indexes: Indexes over several columns or expressions; single-column ones are `@Index`.
///   - unique: Unique constraints over several columns; single-column ones are `@Unique`.
///   - checks: Table-level CHECK constraints.
@attached(extension, conformances: PersistentModel, names: named(tableLocation), named(schema), named(bindColumns(to:)), named(init(row:)), named(columnKeyPaths))
@attached(member, names: named(id), named(createdAt), named(updatedAt), named(init), arbitrary)
public macro Model(
    table: String? = nil,
    chamber: Chamber = .public,
    renamedFrom: [String] = [],
    storage: [String: String] = [:],
    indexes: [IndexDescription] = [],
    unique: [UniqueConstraint] = [],
    checks: [CheckConstraint] = []
) = #externalMacro(module: "PhylacteryMacros", type: "ModelMacro")

/// Describes the column of a property of a `@Model` struct beyond what its type says.
///
/// ```swift
/// @Column(name: "summary_text", type: .varchar(500), default: "''", renamedFrom: ["abstract"])
/// var summary: String
/// ```
///
/// - Parameters:
///   - name: The column name, instead of the property name in snake_case.
///   - type: The SQL type, instead of the one the Swift type maps to.
///   - default: A default as an SQL expression (`0`, `'draft'`, `now()`).
///   - renamedFrom: Former column names, to rename from when the column is missing.
@attached(peer)
public macro Column(
    name: String? = nil,
    type: SQLType? = nil,
    default: String? = nil,
    renamedFrom: [String] = []
) = #externalMacro(module: "PhylacteryMacros", type: "PropertyMarkerMacro")

/// Indexes the column of a property of a `@Model` struct on its own.
///
/// ```swift
/// @Index(.hnsw, operatorClass: "vector_cosine_ops") @Column(type: .vector(1536))
/// var embedding: [Float]
/// ```
///
/// - Parameters:
///   - method: The index access method.
///   - operatorClass: The operator class, or `nil` for the type's default.
@attached(peer)
public macro Index(
    _ method: IndexMethod = .btree,
    operatorClass: String? = nil
) = #externalMacro(module: "PhylacteryMacros", type: "PropertyMarkerMacro")

/// Makes the column of a property of a `@Model` struct unique on its own.
/// Unique constraints over several columns are `@Model(unique:)`.
@attached(peer)
public macro Unique() = #externalMacro(module: "PhylacteryMacros", type: "PropertyMarkerMacro")

/// Makes the column of a property of a `@Model` struct a foreign key to another model's `id`.
///
/// ```swift
/// @References(Workspace.self, onDelete: .cascade)
/// var workspaceID: UUID
/// ```
///
/// - Parameters:
///   - model: The referenced model (the struct itself is fine: a tree's `parentID`).
///   - onDelete: What happens to this row when the referenced one is deleted.
@attached(peer)
public macro References(
    _ model: any PersistentModel.Type,
    onDelete: ReferentialAction = .noAction
) = #externalMacro(module: "PhylacteryMacros", type: "PropertyMarkerMacro")

/// Keeps a stored property of a `@Model` struct out of the table: it is neither written nor read,
/// and a model read from a row has the property's initial value, which it must therefore have.
@attached(peer)
public macro Transient() = #externalMacro(module: "PhylacteryMacros", type: "PropertyMarkerMacro")

/// Makes an integer property of a `@Model` struct its version column, for optimistic concurrency.
///
/// ```swift
/// @Model(table: "runs")
/// struct Run {
///     var status: RunStatus
///     @Version var version: Int64 = 0
/// }
/// ```
///
/// Every update counts it up (`version = version + 1`); ``Transaction/update(_:file:line:)`` writes
/// only when the row is still at the model's version and otherwise throws
/// ``PhylacteryError/Code/staleRow``. The column is `bigint NOT NULL DEFAULT 0` (see
/// ``ModelSchema/versionColumn(_:_:name:)``); `@Column(name:)` may rename it. One per model.
@attached(peer)
public macro Version() = #externalMacro(module: "PhylacteryMacros", type: "PropertyMarkerMacro")
