public import NIOCore
public import PostgresNIO

/// An embedding: a fixed number of finite `Float` elements, stored in a pgvector `vector` column.
///
/// Values travel in pgvector's binary format (`vector_send`/`vector_recv`: an `int16` dimension
/// count, an unused `int16`, then each element as a big-endian `float4`), never as text literals.
///
/// **Type OID.** `vector` is an extension type: its OID differs from one database to the next, so a
/// `Vector` bind parameter is sent with type OID 0 ("unspecified") and binary format. The server then
/// infers the parameter's type from the statement (an `INSERT` into a `vector` column, or the
/// explicit `$1::vector` casts Phylactery's own SQL writes) and decodes the bytes with `vector_recv`.
/// Nothing is looked up per client and no cache can go stale after `DROP EXTENSION`/`CREATE
/// EXTENSION`. In hand-written SQL, cast the parameter (`\(vector)::vector`) wherever the context
/// alone does not say it is a vector (`SELECT $1` does not).
///
/// Reading accepts any column of binary-format vector data, whatever its OID.
public struct Vector: Sendable, Hashable, CustomStringConvertible {
    /// The elements, all finite.
    public let elements: [Float]

    /// pgvector's largest `vector` (16,000 dimensions).
    public static let maximumDimensions = 16_000

    /// A vector of `elements`, which must be finite (no NaN, no ±infinity), at least one and at most
    /// ``maximumDimensions``.
    ///
    /// - Throws: ``PhylacteryError`` with ``PhylacteryError/Code/invalidVector`` naming the first bad
    ///   element's position (never its value).
    public init(_ elements: [Float]) throws {
        guard !elements.isEmpty else {
            throw PhylacteryError(.invalidVector, "a vector needs at least one element")
        }
        guard elements.count <= Self.maximumDimensions else {
            throw PhylacteryError(.invalidVector, "a vector has at most \(Self.maximumDimensions) elements; this one has \(elements.count)")
        }
        if let position = elements.firstIndex(where: { !$0.isFinite }) {
            let kind = elements[position].isNaN ? "NaN" : "infinite"
            throw PhylacteryError(.invalidVector, "vector element \(position) of \(elements.count) is \(kind); pgvector stores only finite values")
        }
        self.elements = elements
    }

    /// A vector from `Double`s, converted to `Float` and then checked the same way. (An array literal
    /// picks the `Float` initialiser.)
    @_disfavoredOverload
    public init(_ elements: [Double]) throws {
        try self.init(elements.map { Float($0) })
    }

    /// Elements already known to be valid (read from the database).
    init(trusted elements: [Float]) { self.elements = elements }

    /// The number of elements.
    public var dimensions: Int { self.elements.count }

    /// The vector as pgvector's text literal (`[1,2.5,3]`), for messages and text-format paths.
    public var literal: String {
        "[" + self.elements.map { "\($0)" }.joined(separator: ",") + "]"
    }

    /// A short summary: the dimension count only, since embeddings can carry user data.
    public var description: String { "Vector(\(self.dimensions) dimensions)" }

    /// Throws unless the vector has `expected` elements.
    ///
    /// - Throws: ``PhylacteryError`` with ``PhylacteryError/Code/dimensionMismatch`` naming both dimensions.
    public func requireDimensions(_ expected: Int, for what: String = "the column") throws {
        guard self.dimensions == expected else {
            throw PhylacteryError(.dimensionMismatch, "\(what) holds vectors of \(expected) dimensions; this vector has \(self.dimensions)")
        }
    }

    /// The dimension count of a `vector(n)` type spelling, or `nil` for `vector` without one (or another type).
    public static func dimensions(of type: SQLType) -> Int? {
        type.declaredDimensions(of: "vector")
    }
}

extension SQLType {
    /// The `n` of a `base(n)` spelling (`vector(384)`, `halfvec(384)`), or `nil` for another spelling.
    func declaredDimensions(of base: String) -> Int? {
        guard self.spelling.hasPrefix(base + "("), self.spelling.hasSuffix(")") else { return nil }
        return Int(self.spelling.dropFirst(base.count + 1).dropLast())
    }
}

extension Vector: PostgresNonThrowingEncodable, PostgresDecodable {
    /// OID 0: the server infers `vector` from the statement (see the type's documentation).
    public static var psqlType: PostgresDataType { .null }
    public static var psqlFormat: PostgresFormat { .binary }

    public func encode<E: PostgresJSONEncoder>(into byteBuffer: inout ByteBuffer, context: PostgresEncodingContext<E>) {
        Self.write(self.elements, into: &byteBuffer)
    }

    /// pgvector's binary layout: `int16` dim, `int16` unused (0), `dim` × big-endian `float4`.
    static func write(_ elements: [Float], into buffer: inout ByteBuffer) {
        buffer.reserveCapacity(minimumWritableBytes: 4 + 4 * elements.count)
        buffer.writeInteger(Int16(elements.count))
        buffer.writeInteger(Int16(0))
        for element in elements { buffer.writeInteger(element.bitPattern) }
    }

    public init<D: PostgresJSONDecoder>(from buffer: inout ByteBuffer, type: PostgresDataType, format: PostgresFormat, context: PostgresDecodingContext<D>) throws {
        guard format == .binary else {
            throw PhylacteryError(.decodingFailed, "a vector column arrived in text format; Phylactery reads vectors in binary format")
        }
        guard let count = buffer.readInteger(as: Int16.self), let unused = buffer.readInteger(as: Int16.self) else {
            throw PhylacteryError(.decodingFailed, "a vector value is shorter than its 4-byte header")
        }
        guard count >= 1, unused == 0, buffer.readableBytes == 4 * Int(count) else {
            throw PhylacteryError(.decodingFailed, "a vector value's header (\(count) dimensions) does not match its \(buffer.readableBytes) bytes of elements; is the column a vector (not halfvec or sparsevec)?")
        }
        var elements = [Float]()
        elements.reserveCapacity(Int(count))
        for _ in 0..<count {
            elements.append(Float(bitPattern: buffer.readInteger(as: UInt32.self)!))
        }
        self.init(trusted: elements)
    }
}

/// A `Vector` property is a `vector` column. Its dimension is declared on the column, e.g.
/// `@Column(type: .vector(384)) var embedding: Vector`; every bind checks the value against it
/// (``PhylacteryError/Code/dimensionMismatch`` naming both dimensions) before anything is sent.
extension Vector: ColumnCodable {
    /// `vector` without a dimension; declare `.vector(n)` on the column to fix one.
    public static var sqlType: SQLType { SQLType("vector") }

    public func bindColumn(to bindings: inout PostgresBindings) throws { bindings.append(self) }

    public static func decodeColumn(from cell: PostgresCell) throws -> Vector { try cell.decode(Vector.self) }

    public func validate(for column: ColumnDescription) throws {
        if let expected = Self.dimensions(of: column.type) {
            try self.requireDimensions(expected, for: "column \(column.name)")
        }
    }
}
