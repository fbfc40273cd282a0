public import NIOCore
public import PostgresNIO

/// A pgvector `halfvec`: half-precision elements, half the storage of ``Vector``.
///
/// Sent and read in pgvector's binary format (`halfvec_send`/`halfvec_recv`: `int16` dimension count,
/// `int16` unused, then each element as a big-endian IEEE half), with type OID 0 like ``Vector``
/// (the server infers `halfvec` from the statement; cast with `::halfvec` where it cannot). Declare
/// the dimension on the column: `@Column(type: "halfvec(384)") var embedding: HalfVector`.
public struct HalfVector: Sendable, Hashable, CustomStringConvertible {
    /// The elements as `Float`s (each exactly representable in half precision).
    public let elements: [Float]

    /// pgvector's largest `halfvec` (16,000 dimensions).
    public static let maximumDimensions = 16_000

    /// A half vector of `elements`, rounded to half precision; each must stay finite once rounded
    /// (|x| ≤ 65504).
    ///
    /// - Throws: ``PhylacteryError/Code/invalidVector`` naming the first bad element's position.
    public init(_ elements: [Float]) throws {
        guard !elements.isEmpty, elements.count <= Self.maximumDimensions else {
            throw PhylacteryError(.invalidVector, "a half vector has 1 to \(Self.maximumDimensions) elements; this one has \(elements.count)")
        }
        let rounded = elements.map { Float(Float16($0)) }
        if let position = rounded.firstIndex(where: { !$0.isFinite }) {
            let kind = elements[position].isNaN ? "NaN" : "infinite in half precision"
            throw PhylacteryError(.invalidVector, "half vector element \(position) of \(elements.count) is \(kind); pgvector stores only finite values")
        }
        self.elements = rounded
    }

    init(trusted elements: [Float]) { self.elements = elements }

    /// The number of elements.
    public var dimensions: Int { self.elements.count }

    public var description: String { "HalfVector(\(self.dimensions) dimensions)" }
}

extension HalfVector: PostgresNonThrowingEncodable, PostgresDecodable {
    /// OID 0: the server infers `halfvec` from the statement.
    public static var psqlType: PostgresDataType { .null }
    public static var psqlFormat: PostgresFormat { .binary }

    public func encode<E: PostgresJSONEncoder>(into byteBuffer: inout ByteBuffer, context: PostgresEncodingContext<E>) {
        byteBuffer.reserveCapacity(minimumWritableBytes: 4 + 2 * self.elements.count)
        byteBuffer.writeInteger(Int16(self.elements.count))
        byteBuffer.writeInteger(Int16(0))
        for element in self.elements { byteBuffer.writeInteger(Float16(element).bitPattern) }
    }

    public init<D: PostgresJSONDecoder>(from buffer: inout ByteBuffer, type: PostgresDataType, format: PostgresFormat, context: PostgresDecodingContext<D>) throws {
        guard format == .binary else {
            throw PhylacteryError(.decodingFailed, "a halfvec column arrived in text format; Phylactery reads vectors in binary format")
        }
        guard let count = buffer.readInteger(as: Int16.self), let unused = buffer.readInteger(as: Int16.self),
              count >= 1, unused == 0, buffer.readableBytes == 2 * Int(count) else {
            throw PhylacteryError(.decodingFailed, "a halfvec value's header does not match its length; is the column a halfvec?")
        }
        var elements = [Float]()
        elements.reserveCapacity(Int(count))
        for _ in 0..<count { elements.append(Float(Float16(bitPattern: buffer.readInteger(as: UInt16.self)!))) }
        self.init(trusted: elements)
    }
}

/// A `HalfVector` property is a `halfvec` column; a declared `halfvec(n)` is checked at bind time.
extension HalfVector: ColumnCodable {
    /// `halfvec` without a dimension; declare `"halfvec(n)"` on the column to fix one.
    public static var sqlType: SQLType { SQLType("halfvec") }

    public func bindColumn(to bindings: inout PostgresBindings) throws { bindings.append(self) }

    public static func decodeColumn(from cell: PostgresCell) throws -> HalfVector { try cell.decode(HalfVector.self) }

    public func validate(for column: ColumnDescription) throws {
        guard let expected = column.type.declaredDimensions(of: "halfvec") else { return }
        guard self.dimensions == expected else {
            throw PhylacteryError(.dimensionMismatch, "column \(column.name) holds half vectors of \(expected) dimensions; this one has \(self.dimensions)")
        }
    }
}
