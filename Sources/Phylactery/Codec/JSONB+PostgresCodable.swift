public import Foundation
public import NIOCore
public import PostgresNIO

/// The `jsonb` wire format's version byte: every binary jsonb value starts with it.
let jsonbVersionByte: UInt8 = 0x01

// MARK: - Plugging the codec into PostgresNIO

extension JSONBEncoder: PostgresJSONEncoder {
    /// PostgresNIO's `Data` entry point; Phylactery itself always uses ``encode(_:into:)``.
    public func encode<T: Encodable>(_ value: T) throws -> Data {
        Data(try self.encodeToBuffer(value).readableBytesView)
    }
}

extension JSONBDecoder: PostgresJSONDecoder {
    /// PostgresNIO's `Data` entry point; Phylactery itself decodes from the `ByteBuffer`.
    public func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        try data.withUnsafeBytes { try self.decode(type, fromBytes: $0) }
    }
}

extension PostgresEncodingContext where JSONEncoder == JSONBEncoder {
    /// Binds `Codable` values through Phylactery's codec: `"… \(document, context: .phylactery)"`.
    public static var phylactery: PostgresEncodingContext<JSONBEncoder> { .init(jsonEncoder: JSONBEncoder()) }
}

extension PostgresDecodingContext where JSONDecoder == JSONBDecoder {
    /// Reads `json`/`jsonb` columns through Phylactery's codec: `row.decode(T.self, context: .phylactery)`.
    public static var phylactery: PostgresDecodingContext<JSONBDecoder> { .init(jsonDecoder: JSONBDecoder()) }
}

// MARK: - JSONB<Value>

/// A `Codable` value stored as `jsonb` through Phylactery's codec, whatever context the query uses.
///
/// ```swift
/// try await tx.execute("INSERT INTO public.snapshots (body) VALUES (\(JSONB(snapshot)))")
/// let snapshot = try row.decode(JSONB<Snapshot>.self).value
/// ```
public struct JSONB<Value: Codable>: PostgresEncodable, PostgresDecodable {
    /// The wrapped value.
    public var value: Value
    /// The encoder used when the value is bound (date and data strategies).
    public var encoder: JSONBEncoder

    public init(_ value: Value, encoder: JSONBEncoder = JSONBEncoder()) {
        self.value = value
        self.encoder = encoder
    }

    public static var psqlType: PostgresDataType { .jsonb }
    public static var psqlFormat: PostgresFormat { .binary }

    public func encode<E: PostgresJSONEncoder>(into byteBuffer: inout ByteBuffer, context: PostgresEncodingContext<E>) throws {
        let start = byteBuffer.writerIndex
        byteBuffer.writeInteger(jsonbVersionByte)
        do {
            try self.encoder.encode(self.value, into: &byteBuffer)
        } catch {
            byteBuffer.moveWriterIndex(to: start)
            throw error
        }
    }

    public init<D: PostgresJSONDecoder>(from buffer: inout ByteBuffer, type: PostgresDataType, format: PostgresFormat, context: PostgresDecodingContext<D>) throws {
        let body = try JSONBWire.body(of: &buffer, type: type, format: format)
        self.value = try JSONBDecoder().decode(Value.self, from: body)
        self.encoder = JSONBEncoder()
    }
}

extension JSONB: Sendable where Value: Sendable {}

// MARK: - RawJSONB

/// JSON bytes that are already serialized, stored and read as they are.
///
/// Sending: one `0x01` version byte and the bytes. The bytes are validated first (strict RFC 8259):
/// invalid JSON throws ``JSONBError`` and nothing is written. Receiving: the column's bytes without
/// parsing, for a caller that forwards or caches them.
public struct RawJSONB: Sendable, Hashable, PostgresEncodable, PostgresDecodable {
    /// The JSON text, without the version byte.
    public private(set) var bytes: ByteBuffer

    /// Wraps `bytes` after checking that they are one valid JSON document that jsonb can store.
    ///
    /// Invalid JSON throws ``JSONBError/Code/malformed`` (or ``JSONBError/Code/tooDeep``); a string
    /// holding the escape `\u0000`, valid JSON that PostgreSQL's jsonb refuses, throws
    /// ``JSONBError/Code/unstorableCharacter`` with its JSON Pointer.
    public init(validating bytes: ByteBuffer, maximumDepth: Int = 512) throws(JSONBError) {
        try bytes.withUnsafeReadableBytes { (raw) throws(JSONBError) in
            try JSONTape.validate(raw, maximumDepth: maximumDepth, storable: true)
        }
        self.bytes = bytes
    }

    /// Wraps the UTF-8 bytes of `text` after validating them.
    public init(validating text: String) throws(JSONBError) {
        try self.init(validating: ByteBuffer(string: text))
    }

    /// Wraps `bytes` after validating them.
    public init(validating bytes: [UInt8]) throws(JSONBError) {
        try self.init(validating: ByteBuffer(bytes: bytes))
    }

    /// Bytes read from the database, already valid JSON.
    init(trusted bytes: ByteBuffer) { self.bytes = bytes }

    /// The JSON text as a `String`.
    public var text: String { String(buffer: self.bytes) }

    /// Decodes the bytes into a `Decodable` type.
    public func decode<T: Decodable>(_ type: T.Type, using decoder: JSONBDecoder = JSONBDecoder()) throws -> T {
        try decoder.decode(type, from: self.bytes)
    }

    public static var psqlType: PostgresDataType { .jsonb }
    public static var psqlFormat: PostgresFormat { .binary }

    public func encode<E: PostgresJSONEncoder>(into byteBuffer: inout ByteBuffer, context: PostgresEncodingContext<E>) {
        byteBuffer.writeInteger(jsonbVersionByte)
        byteBuffer.writeImmutableBuffer(self.bytes)
    }

    public init<D: PostgresJSONDecoder>(from buffer: inout ByteBuffer, type: PostgresDataType, format: PostgresFormat, context: PostgresDecodingContext<D>) throws {
        self.bytes = try JSONBWire.body(of: &buffer, type: type, format: format)
    }
}

/// The JSON text inside a `json` or `jsonb` column value, binary or text format.
enum JSONBWire {
    static func body(of buffer: inout ByteBuffer, type: PostgresDataType, format: PostgresFormat) throws -> ByteBuffer {
        switch (format, type) {
        case (.binary, .jsonb):
            guard let version = buffer.readInteger(as: UInt8.self) else {
                throw JSONBError(.unsupportedVersion, "An empty jsonb value has no version byte.")
            }
            guard version == jsonbVersionByte else {
                throw JSONBError(.unsupportedVersion, "jsonb version \(version) is not supported (only 1).")
            }
            return buffer.readSlice(length: buffer.readableBytes)!
        case (.binary, .json), (.text, .jsonb), (.text, .json):
            return buffer.readSlice(length: buffer.readableBytes)!
        default:
            throw JSONBError(.typeMismatch, "A \(type) column cannot be read as JSON.")
        }
    }
}

// MARK: - Interpolation and rows

extension PostgresQuery.StringInterpolation {
    /// Binds `value` as `jsonb`, encoded by Phylactery's codec: `"… VALUES (\(jsonb: document))"`.
    public mutating func appendInterpolation<Value: Codable>(jsonb value: Value) throws {
        try self.appendInterpolation(JSONB(value))
    }

    /// Binds any `Codable` value that PostgresNIO has no encoding for as `jsonb`, through
    /// Phylactery's codec: `"… VALUES (\(document))"`. Types PostgresNIO knows (strings, numbers,
    /// dates, UUIDs, its own `PostgresCodable` types) keep PostgresNIO's encoding.
    @_disfavoredOverload
    public mutating func appendInterpolation<Value: Codable>(_ value: Value) throws {
        try self.appendInterpolation(JSONB(value))
    }
}

extension PostgresRow {
    /// Reads the row's single `json`/`jsonb` column into a `Decodable` type PostgresNIO has no
    /// decoding for, through Phylactery's codec: `try row.decodeJSON(Snapshot.self)`.
    public func decodeJSON<Value: Decodable>(_ type: Value.Type, column: Int = 0, file: String = #fileID, line: Int = #line) throws -> Value {
        let cell = self.makeRandomAccess()[column]
        guard var bytes = cell.bytes else {
            throw DecodingError.valueNotFound(Value.self, .init(codingPath: [], debugDescription: "The column \(cell.columnName) is NULL."))
        }
        let body = try JSONBWire.body(of: &bytes, type: cell.dataType, format: cell.format)
        return try JSONBDecoder().decode(type, from: body)
    }
}
