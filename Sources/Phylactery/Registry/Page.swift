import Foundation
import NIOCore
import PostgresNIO

/// One page of a keyset-paginated read (``Transaction/page(_:where:orderBy:after:limit:file:line:)``):
/// the rows, and the cursor of the next page when there is one.
public struct Page<Model: PersistentModel>: Sendable {
    /// The rows of this page, in the page's order.
    public var items: [Model]
    /// Where the next page starts (after the last row of this one), or `nil` on the last page.
    public var next: PageCursor?

    /// A page of rows.
    public init(items: [Model], next: PageCursor?) {
        self.items = items
        self.next = next
    }
}

/// Where a keyset page starts: the ordering's key values of the last row of the previous page.
///
/// Its ``description`` is an opaque token (URL-safe base64) for a CLI's `--after` or a UI's next
/// link; ``init(_:)`` reads it back. A cursor is tied to the ordering it was made with: using it
/// with another ordering throws ``PhylacteryError/Code/invalidArgument``. Its values travel as
/// bind parameters, so a forged token can at worst make the server refuse the statement.
public struct PageCursor: Sendable, Hashable, LosslessStringConvertible {
    /// One key value as the server sent it: type, wire format and bytes.
    struct Key: Codable, Sendable, Hashable {
        var type: UInt32
        var format: Int16
        var bytes: Data?
    }

    /// The ordering's terms as SQL (`"due" DESC`), ending with `id`.
    var ordering: [String]
    var keys: [Key]

    init(ordering: [String], keys: [Key]) {
        self.ordering = ordering
        self.keys = keys
    }

    private struct Token: Codable {
        var o: [String]
        var k: [Key]
    }

    /// Reads a token made by ``description``; `nil` when it is not one.
    public init?(_ description: String) {
        var base64 = description.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        guard let data = Data(base64Encoded: base64),
              let token = try? JSONDecoder().decode(Token.self, from: data),
              token.o.count == token.k.count, !token.o.isEmpty else { return nil }
        self.init(ordering: token.o, keys: token.k)
    }

    /// The cursor as an opaque, URL-safe token.
    public var description: String {
        let data = (try? JSONEncoder().encode(Token(o: self.ordering, k: self.keys))) ?? Data()
        return data.base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }
}

/// A cursor's key value bound as the type and format the server sent it in.
struct CursorKeyValue: PostgresDynamicTypeEncodable {
    let key: PageCursor.Key
    var psqlType: PostgresDataType { PostgresDataType(self.key.type) }
    var psqlFormat: PostgresFormat { PostgresFormat(rawValue: self.key.format) ?? .binary }
    func encode<JSONEncoder: PostgresJSONEncoder>(into byteBuffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>) {
        if let bytes = self.key.bytes { byteBuffer.writeBytes(bytes) }
    }
}
