public import Foundation
public import NIOCore
public import PostgresNIO

/// A Swift type stored in a column of its own SQL type (not as jsonb).
///
/// `String`, the integer and floating-point types, `Bool`, `UUID`, `Date`, `Data`, `[UInt8]`,
/// `Decimal` and `Optional`s of them conform; a string-backed enum conforms by adopting
/// ``PersistentEnum``. Every other `Codable` property is stored as jsonb through the codec.
public protocol ColumnCodable: Sendable {
    /// The SQL type of the column.
    static var sqlType: SQLType { get }
    /// Whether the column allows NULL (only `Optional` says yes).
    static var isNullable: Bool { get }
    /// The values a CHECK constraint allows, for string-backed enums.
    static var allowedValues: [String]? { get }
    /// Appends the value as the next bind parameter.
    func bindColumn(to bindings: inout PostgresBindings) throws
    /// Reads a value from one cell of a result row.
    static func decodeColumn(from cell: PostgresCell) throws -> Self
    /// Checks the value against the column it is about to be bound to (a ``Vector`` against the
    /// column's `vector(n)`); throws before anything is sent. The default accepts every value.
    func validate(for column: ColumnDescription) throws
}

extension ColumnCodable {
    public static var isNullable: Bool { false }
    public static var allowedValues: [String]? { nil }
    public func validate(for column: ColumnDescription) throws {}
}

/// The PostgresNIO codecs already do the work for the plain scalar types.
public protocol ScalarColumnCodable: ColumnCodable, PostgresEncodable, PostgresDecodable {}

extension ScalarColumnCodable {
    public func bindColumn(to bindings: inout PostgresBindings) throws { try bindings.append(self) }
    public static func decodeColumn(from cell: PostgresCell) throws -> Self { try cell.decode(Self.self) }
}

extension String: ScalarColumnCodable {
    public static var sqlType: SQLType { .text }
    /// Refuses U+0000, which PostgreSQL cannot store in text (``StorableText``), naming the column.
    public func validate(for column: ColumnDescription) throws {
        try StorableText.check(self, "The value for \(column.property) (column \(column.name))")
    }
}
extension Int: ScalarColumnCodable { public static var sqlType: SQLType { .bigint } }
extension Int64: ScalarColumnCodable { public static var sqlType: SQLType { .bigint } }
extension Int32: ScalarColumnCodable { public static var sqlType: SQLType { .integer } }
extension Int16: ScalarColumnCodable { public static var sqlType: SQLType { .smallint } }
extension Double: ScalarColumnCodable { public static var sqlType: SQLType { .doublePrecision } }
extension Float: ScalarColumnCodable { public static var sqlType: SQLType { .real } }
extension Bool: ScalarColumnCodable { public static var sqlType: SQLType { .boolean } }
extension UUID: ScalarColumnCodable { public static var sqlType: SQLType { .uuid } }
extension Date: ScalarColumnCodable { public static var sqlType: SQLType { .timestamptz } }
extension Data: ScalarColumnCodable { public static var sqlType: SQLType { .bytea } }
extension Decimal: ScalarColumnCodable { public static var sqlType: SQLType { .numeric } }
/// Already-serialized JSON is a `jsonb` column of its own, stored and read without decoding.
extension RawJSONB: ScalarColumnCodable { public static var sqlType: SQLType { .jsonb } }

extension Array: ColumnCodable where Element == UInt8 {
    public static var sqlType: SQLType { .bytea }
    public func bindColumn(to bindings: inout PostgresBindings) throws {
        bindings.append(ByteBuffer(bytes: self))
    }
    public static func decodeColumn(from cell: PostgresCell) throws -> [UInt8] {
        var buffer = try cell.decode(ByteBuffer.self)
        return buffer.readBytes(length: buffer.readableBytes) ?? []
    }
}

extension Optional: ColumnCodable where Wrapped: ColumnCodable {
    public static var sqlType: SQLType { Wrapped.sqlType }
    public static var isNullable: Bool { true }
    public static var allowedValues: [String]? { Wrapped.allowedValues }
    public func validate(for column: ColumnDescription) throws { try self?.validate(for: column) }
    public func bindColumn(to bindings: inout PostgresBindings) throws {
        switch self {
        case .some(let value): try value.bindColumn(to: &bindings)
        case .none: bindings.appendNull()
        }
    }
    public static func decodeColumn(from cell: PostgresCell) throws -> Wrapped? {
        if cell.bytes == nil { return nil }
        return try Wrapped.decodeColumn(from: cell)
    }
}

/// A string-backed enum stored as `text` with a CHECK constraint listing its cases.
///
/// ```swift
/// enum Status: String, PersistentEnum { case open, done }
/// ```
public protocol PersistentEnum: ColumnCodable, RawRepresentable, CaseIterable, Codable where RawValue == String {}

extension PersistentEnum {
    public static var sqlType: SQLType { .text }
    public static var allowedValues: [String]? { Self.allCases.map(\.rawValue) }
    public func bindColumn(to bindings: inout PostgresBindings) throws { bindings.append(self.rawValue) }
    public static func decodeColumn(from cell: PostgresCell) throws -> Self {
        let raw = try cell.decode(String.self)
        guard let value = Self(rawValue: raw) else {
            throw PhylacteryError(.decodingFailed, "column \(cell.columnName) holds '\(raw)', which is not a case of \(Self.self)")
        }
        return value
    }
}
