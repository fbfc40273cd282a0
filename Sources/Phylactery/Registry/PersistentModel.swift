public import Foundation
public import PostgresNIO

/// A Swift type stored as rows of one table.
///
/// The contract has three parts: the table description (``schema``), how to bind a row
/// (``bindColumns(to:)``, the model's own columns in ``ModelSchema/columns`` order) and how to
/// read one (``init(row:)``, the base columns then the model's own, in the same order). The
/// `@Model` macro writes all three for a plain struct; writing them by hand works the same:
///
/// ```swift
/// struct Tag: PersistentModel {
///     var id = UUID.v7(), createdAt = Date(), updatedAt = Date()
///     var label: String
///     static let schema = ModelSchema(modelName: "Tag", table: "tags", columns: [
///         ModelSchema.column("label", String.self, unique: true),
///     ])
///     func bindColumns(to row: inout ModelRowWriter) throws { try row.write(self.label) }
///     init(row: inout ModelRowReader) throws {
///         (self.id, self.createdAt, self.updatedAt) = try row.readBase()
///         self.label = try row.read(String.self)
///     }
/// }
/// ```
public protocol PersistentModel: UUIDBase {
    /// The table, columns, indexes and constraints this model needs.
    static var schema: ModelSchema { get }
    /// The chamber and table alone: what a ``ForeignKey`` to this model needs.
    ///
    /// Reading it must not build ``schema``, or a model whose foreign key points at itself (or two
    /// models pointing at each other) would recurse forever. `@Model` writes it as constants; the
    /// default reads ``schema``, which is fine for a model no foreign key of its own leads back to.
    static var tableLocation: (chamber: Chamber, table: String) { get }
    /// Binds the model's own columns (not the base ones), in ``ModelSchema/columns`` order.
    func bindColumns(to row: inout ModelRowWriter) throws
    /// Reads a row selected as ``ModelSchema/allColumns``, in that order.
    init(row: inout ModelRowReader) throws
    /// The key path of each own column's property, mapped to the property's name (its
    /// ``ColumnDescription/property``): how a partial update
    /// (``Transaction/update(_:set:where:file:line:)``) finds the column a `$0.set(\.status, …)`
    /// writes. `@Model` writes it; the default is empty, which makes partial updates of a
    /// hand-written model refuse every key path until it lists them (`[\Tag.label: "label"]`).
    static var columnKeyPaths: [PartialKeyPath<Self>: String] { get }
}

extension PersistentModel {
    /// None: a hand-written model lists its columns' key paths to take partial updates.
    public static var columnKeyPaths: [PartialKeyPath<Self>: String] { [:] }

    /// Reads ``schema``; a hand-written model that a foreign key of its own leads back to returns constants instead.
    public static var tableLocation: (chamber: Chamber, table: String) {
        let schema = Self.schema
        return (schema.chamber, schema.table)
    }
}

/// Appends a model's column values to a statement's bind parameters.
public struct ModelRowWriter {
    /// The parameters gathered so far.
    public internal(set) var bindings: PostgresBindings
    let encoder: JSONBEncoder
    /// The model's own columns and the binding count where they start, when known: each value is
    /// checked against its column (``ColumnCodable/validate(for:)``) before it is bound.
    var columns: [ColumnDescription] = []
    var columnsStart = 0

    init(bindings: PostgresBindings = PostgresBindings(), encoder: JSONBEncoder = JSONBEncoder()) {
        self.bindings = bindings
        self.encoder = encoder
    }

    /// Binds a value stored in its own SQL type.
    public mutating func write<Value: ColumnCodable>(_ value: Value) throws {
        let position = self.bindings.count - self.columnsStart
        if position >= 0, position < self.columns.count { try value.validate(for: self.columns[position]) }
        try value.bindColumn(to: &self.bindings)
    }

    /// Binds any other `Codable` value as jsonb, through Phylactery's codec.
    @_disfavoredOverload
    public mutating func write<Value: Codable>(_ value: Value) throws {
        try self.bindings.append(JSONB(value, encoder: self.encoder))
    }

    /// Binds an optional `Codable` value as jsonb, or NULL.
    @_disfavoredOverload
    public mutating func write<Value: Codable>(_ value: Value?) throws {
        switch value {
        case .some(let value): try self.bindings.append(JSONB(value, encoder: self.encoder))
        case .none: self.bindings.appendNull()
        }
    }
}

/// Reads a model's columns from a result row, left to right.
public struct ModelRowReader {
    let row: PostgresRandomAccessRow
    /// The index of the next column to read.
    public private(set) var index: Int

    init(_ row: PostgresRow) {
        self.row = row.makeRandomAccess()
        self.index = 0
    }

    private mutating func nextCell() throws -> PostgresCell {
        guard self.index < self.row.count else {
            throw PhylacteryError(.decodingFailed, "row has \(self.row.count) columns; the model reads more")
        }
        defer { self.index += 1 }
        return self.row[self.index]
    }

    /// Reads `id`, `created_at` and `updated_at`.
    public mutating func readBase() throws -> (UUID, Date, Date) {
        (try self.read(UUID.self), try self.read(Date.self), try self.read(Date.self))
    }

    /// Reads a value stored in its own SQL type.
    public mutating func read<Value: ColumnCodable>(_ type: Value.Type) throws -> Value {
        let cell = try self.nextCell()
        do {
            return try Value.decodeColumn(from: cell)
        } catch let error as PhylacteryError {
            throw error
        } catch {
            throw PhylacteryError(.decodingFailed, "column \(cell.columnName) cannot be read as \(Value.self)", underlying: error)
        }
    }

    /// Reads a jsonb value through Phylactery's codec.
    @_disfavoredOverload
    public mutating func read<Value: Codable>(_ type: Value.Type) throws -> Value {
        let cell = try self.nextCell()
        guard cell.bytes != nil else {
            throw PhylacteryError(.decodingFailed, "column \(cell.columnName) is NULL but \(Value.self) is not optional")
        }
        return try self.decodeJSON(cell, as: Value.self)
    }

    /// Reads a nullable jsonb value through Phylactery's codec.
    @_disfavoredOverload
    public mutating func read<Value: Codable>(_ type: Value?.Type) throws -> Value? {
        let cell = try self.nextCell()
        guard cell.bytes != nil else { return nil }
        return try self.decodeJSON(cell, as: Value.self)
    }

    private func decodeJSON<Value: Codable>(_ cell: PostgresCell, as type: Value.Type) throws -> Value {
        do {
            return try cell.decode(JSONB<Value>.self).value
        } catch {
            throw PhylacteryError(.decodingFailed, "column \(cell.columnName) cannot be read as \(Value.self): \(error)", underlying: error)
        }
    }
}

extension ModelSchema {
    /// Describes a column stored in its own SQL type (what the `@Model` macro writes for each property).
    public static func column<Value: ColumnCodable>(
        _ property: String,
        _ type: Value.Type,
        name: String? = nil,
        type explicitType: SQLType? = nil,
        default defaultSQL: String? = nil,
        unique: Bool = false,
        index: IndexMethod? = nil,
        operatorClass: String? = nil,
        references: ForeignKey? = nil,
        renamedFrom: [String] = []
    ) -> ColumnDescription {
        ColumnDescription(
            property: property, name: name, type: explicitType ?? Value.sqlType, isNullable: Value.isNullable,
            defaultSQL: defaultSQL, isUnique: unique, indexMethod: index, indexOperatorClass: operatorClass,
            references: references, allowedValues: Value.allowedValues, renamedFrom: renamedFrom
        )
    }

    /// Describes the model's version column, for optimistic concurrency (what `@Version` writes).
    ///
    /// An integer column (default `0`) that Phylactery counts up on every write through
    /// ``Transaction/update(_:file:line:)``, ``Transaction/update(_:where:file:line:)``, partial
    /// updates and upserts; an update whose model carries an older version than the row throws
    /// ``PhylacteryError/Code/staleRow``. A model has at most one.
    public static func versionColumn<Value: ColumnCodable & BinaryInteger>(
        _ property: String,
        _ type: Value.Type,
        name: String? = nil
    ) -> ColumnDescription {
        ColumnDescription(property: property, name: name, type: Value.sqlType, defaultSQL: "0", isVersion: true)
    }

    /// Describes a jsonb column holding any other `Codable` value.
    @_disfavoredOverload
    public static func column<Value: Codable>(
        _ property: String,
        _ type: Value.Type,
        name: String? = nil,
        type explicitType: SQLType? = nil,
        default defaultSQL: String? = nil,
        unique: Bool = false,
        index: IndexMethod? = nil,
        operatorClass: String? = nil,
        references: ForeignKey? = nil,
        renamedFrom: [String] = []
    ) -> ColumnDescription {
        ColumnDescription(
            property: property, name: name, type: explicitType ?? .jsonb, isNullable: false,
            defaultSQL: defaultSQL, isUnique: unique, indexMethod: index, indexOperatorClass: operatorClass,
            references: references, renamedFrom: renamedFrom
        )
    }

    /// Describes a nullable jsonb column holding an optional `Codable` value.
    @_disfavoredOverload
    public static func column<Value: Codable>(
        _ property: String,
        _ type: Value?.Type,
        name: String? = nil,
        type explicitType: SQLType? = nil,
        default defaultSQL: String? = nil,
        unique: Bool = false,
        index: IndexMethod? = nil,
        operatorClass: String? = nil,
        references: ForeignKey? = nil,
        renamedFrom: [String] = []
    ) -> ColumnDescription {
        ColumnDescription(
            property: property, name: name, type: explicitType ?? .jsonb, isNullable: true,
            defaultSQL: defaultSQL, isUnique: unique, indexMethod: index, indexOperatorClass: operatorClass,
            references: references, renamedFrom: renamedFrom
        )
    }
}
