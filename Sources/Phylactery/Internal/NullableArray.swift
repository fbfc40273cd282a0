public import NIOCore
public import PostgresNIO

/// A one-dimensional PostgreSQL array whose elements may be NULL, sent in the binary array format
/// PostgresNIO uses for its own arrays (which cannot hold NULL elements).
///
/// Batched statements bind one array per column (`unnest($1::uuid[], $2::jsonb[], …)`); a column
/// that may be NULL in some rows goes as a `NullableArray` instead of a sentinel value the server
/// would have to parse back.
package struct NullableArray<Element: PostgresArrayEncodable>: PostgresEncodable {
    package var elements: [Element?]

    package init(_ elements: [Element?]) { self.elements = elements }

    package static var psqlType: PostgresDataType { Element.psqlArrayType }
    package static var psqlFormat: PostgresFormat { .binary }

    package func encode<JSONEncoder: PostgresJSONEncoder>(into buffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>) throws {
        buffer.writeInteger(self.elements.isEmpty ? 0 : 1, as: Int32.self)                        // dimensions
        buffer.writeInteger(self.elements.contains { $0 == nil } ? 1 : 0, as: Int32.self)          // has NULLs
        buffer.writeInteger(Element.psqlType.rawValue)                                             // element type
        guard !self.elements.isEmpty else { return }
        buffer.writeInteger(Int32(self.elements.count))                                            // length
        buffer.writeInteger(1, as: Int32.self)                                                     // lower bound
        for element in self.elements {
            guard let element else {
                buffer.writeInteger(-1, as: Int32.self)
                continue
            }
            let lengthIndex = buffer.writerIndex
            buffer.writeInteger(0, as: Int32.self)
            try element.encode(into: &buffer, context: context)
            buffer.setInteger(Int32(buffer.writerIndex - lengthIndex - 4), at: lengthIndex)
        }
    }
}

extension RawJSONB: PostgresArrayEncodable {
    /// `jsonb[]`: batches bind their documents as one binary array (see ``NullableArray``).
    public static var psqlArrayType: PostgresDataType { .jsonbArray }
}
