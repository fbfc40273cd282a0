public import PostgresNIO

extension PostgresRowSequence {
    /// Decodes one `json`/`jsonb` column of every row into `Value` through Phylactery's codec, as
    /// the rows arrive:
    ///
    /// ```swift
    /// for try await history in try await tx.query("SELECT doc FROM public.histories").decodeJSON(History.self) {
    ///     …
    /// }
    /// ```
    ///
    /// This is the fastest way to read many JSON documents. Each value is decoded straight from the
    /// bytes PostgresNIO received (no `Data`, `String` or array copy of the document), and one tape —
    /// the decoder's index of the document, about twice its size — serves every row of the loop
    /// instead of being allocated per row. While a row decodes, PostgresNIO already reads the next
    /// one from the socket.
    ///
    /// A row that cannot be decoded throws ``PhylacteryError/Code/decodingFailed`` naming the row
    /// (counted from 0) and the column, with the codec's `DecodingError` or ``JSONBError`` as
    /// `underlying`; the loop may go on with the next row. A SQL `NULL` decodes as `nil` when `Value`
    /// is optional and fails otherwise. A failure of the statement itself is PostgresNIO's, as for
    /// the row sequence.
    ///
    /// - Parameters:
    ///   - type: the type each row's column decodes into.
    ///   - column: the column's index in the row (default: the first).
    ///   - decoder: the codec's settings (date and data strategies, maximum depth).
    public func decodeJSON<Value: Decodable>(
        _ type: Value.Type, column: Int = 0, decoder: JSONBDecoder = JSONBDecoder(), file: String = #fileID, line: Int = #line
    ) -> JSONBRowSequence<Value> {
        JSONBRowSequence(rows: self, column: column, decoder: decoder, file: file, line: line)
    }
}

/// Rows whose `json`/`jsonb` column decodes into `Value`: what ``PostgresNIO/PostgresRowSequence/decodeJSON(_:column:decoder:file:line:)`` returns.
///
/// Iterate it once, like the row sequence it reads.
public struct JSONBRowSequence<Value: Decodable>: AsyncSequence {
    public typealias Element = Value

    let rows: PostgresRowSequence
    let column: Int
    let decoder: JSONBDecoder
    let file: String
    let line: Int

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(rows: self.rows.makeAsyncIterator(), column: self.column, decoder: self.decoder, file: self.file, line: self.line)
    }

    /// Decodes each row as it arrives, reusing one tape for all of them.
    public struct AsyncIterator: AsyncIteratorProtocol {
        var rows: PostgresRowSequence.AsyncIterator
        let column: Int
        let decoder: JSONBDecoder
        let file: String
        let line: Int
        /// The index of the next row.
        var index = 0
        /// The tape's storage, kept from row to row.
        let tapeStorage = JSONTape.Storage()

        init(rows: PostgresRowSequence.AsyncIterator, column: Int, decoder: JSONBDecoder, file: String, line: Int) {
            self.rows = rows
            self.column = column
            self.decoder = decoder
            self.file = file
            self.line = line
        }

        /// The next row's value, or `nil` after the last row.
        public mutating func next() async throws -> Value? {
            guard let row = try await self.rows.next(isolation: #isolation) else { return nil }
            defer { self.index += 1 }
            return try self.decode(row)
        }

        mutating func decode(_ row: PostgresRow) throws -> Value {
            let random = row.makeRandomAccess()
            guard self.column >= 0, self.column < random.count else {
                throw PhylacteryError(.decodingFailed, "row \(self.index) has \(random.count) columns; there is no column \(self.column) to decode as \(Value.self)", file: self.file, line: self.line)
            }
            let cell = random[self.column]
            guard var bytes = cell.bytes else {
                if let nullable = Value.self as? any SQLNullRepresentable.Type {
                    return nullable.sqlNull as! Value
                }
                throw PhylacteryError(.decodingFailed, "column \(cell.columnName) of row \(self.index) is NULL but \(Value.self) is not optional; decode \(Value.self)? or leave the NULLs out in SQL", file: self.file, line: self.line)
            }
            do {
                let body = try JSONBWire.body(of: &bytes, type: cell.dataType, format: cell.format)
                return try self.decoder.decode(Value.self, from: body, tapeStorage: self.tapeStorage)
            } catch {
                throw PhylacteryError(.decodingFailed, "column \(cell.columnName) of row \(self.index) cannot be read as \(Value.self): \(error)", underlying: error, file: self.file, line: self.line)
            }
        }
    }
}

/// `Optional`, whatever it wraps: what a SQL `NULL` decodes to.
protocol SQLNullRepresentable {
    static var sqlNull: Self { get }
}

extension Optional: SQLNullRepresentable {
    static var sqlNull: Self { nil }
}

// The rows it reads are Sendable and `Value` is only produced, never stored.
extension JSONBRowSequence: Sendable {}
