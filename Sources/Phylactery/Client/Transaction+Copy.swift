public import NIOCore
public import PostgresNIO

/// Writes the rows of a `COPY … FROM STDIN` (text format) field by field, with the escaping the
/// format needs. Documents go through ``JSONBEncoder`` straight into the outgoing data; the data is
/// sent in chunks while rows are still being written, so encoding overlaps the server's work.
public struct CopyRowWriter: ~Copyable {
    let writer: PostgresCopyFromWriter
    let encoder: JSONBEncoder
    /// The COPY's columns, to name the one a refused value was meant for.
    let columns: [String]
    var buffer: ByteBuffer
    var fieldsInRow = 0
    /// Rows written so far.
    public private(set) var rowCount = 0

    /// Data is handed to the server in chunks of about this size.
    static let chunkSize = 1 << 20

    init(writer: PostgresCopyFromWriter, encoder: JSONBEncoder, columns: [String]) {
        self.writer = writer
        self.encoder = encoder
        self.columns = columns
        self.buffer = ByteBuffer()
        self.buffer.reserveCapacity(Self.chunkSize + (64 << 10))
    }

    mutating func separate() {
        if fieldsInRow > 0 { buffer.writeInteger(UInt8(ascii: "\t")) }
        fieldsInRow += 1
    }

    /// A text field; `nil` is SQL NULL. Text holding U+0000 is refused before anything more is sent
    /// (PostgreSQL cannot store it; see ``StorableText``), naming the column, and the COPY is aborted.
    public mutating func field(_ text: String?) throws {
        guard let text else {
            separate()
            buffer.writeStaticString("\\N")
            return
        }
        if StorableText.containsNul(text) {
            let column = fieldsInRow < columns.count ? columns[fieldsInRow] : "#\(fieldsInRow + 1)"
            throw PhylacteryError.unstorableNul(in: "The text for column \(column) of COPY row \(rowCount + 1)")
        }
        separate()
        CopyText.escape(text.utf8, into: &buffer)
    }

    /// An integer field.
    public mutating func field<I: FixedWidthInteger>(_ value: I) {
        separate()
        buffer.writeString(String(value))
    }

    /// A `json`/`jsonb` field, encoded by the writer's ``JSONBEncoder``.
    public mutating func field<Document: Encodable>(json document: Document) throws {
        separate()
        try encoder.encodeCopyField(document, into: &buffer)
    }

    /// Ends the row; sends the buffered data once a chunk is full.
    public mutating func endRow() async throws {
        buffer.writeInteger(UInt8(ascii: "\n"))
        fieldsInRow = 0
        rowCount += 1
        if buffer.readableBytes >= Self.chunkSize {
            try await self.flush()
        }
    }

    mutating func flush() async throws {
        guard buffer.readableBytes > 0 else { return }
        try await writer.write(buffer)
        buffer.clear()
    }
}

/// COPY's text format: inside a field, backslash, tab, newline and carriage return are escaped.
package enum CopyText {
    /// Appends `bytes` to `buffer` as the content of one text-format field. A NUL byte, which no
    /// text field can hold, becomes U+FFFD (``StorableText``: callers refuse a user's NUL first).
    package static func escape(_ bytes: some Sequence<UInt8>, into buffer: inout ByteBuffer) {
        for byte in bytes {
            switch byte {
            case 0x00: buffer.writeStaticString("\u{FFFD}")
            case UInt8(ascii: "\\"): buffer.writeStaticString("\\\\")
            case 0x09: buffer.writeStaticString("\\t")
            case 0x0A: buffer.writeStaticString("\\n")
            case 0x0D: buffer.writeStaticString("\\r")
            default: buffer.writeInteger(byte)
            }
        }
    }
}

extension Transaction {
    /// Inserts many rows with one `COPY … FROM STDIN`: the fastest way to load documents.
    ///
    /// ```swift
    /// try await tx.copy(into: "snapshots", columns: ["id", "doc"]) { rows in
    ///     for snapshot in snapshots {
    ///         try rows.field(snapshot.id)
    ///         try rows.field(json: snapshot)
    ///         try await rows.endRow()
    ///     }
    /// }
    /// ```
    ///
    /// - Parameters:
    ///   - table: the table's name, resolved in `schema` (table and column names are quoted).
    ///   - schema: the chamber or schema holding the table. Default `public`.
    ///   - columns: the columns each row fills, in order.
    ///   - encoder: encodes the `json` fields.
    ///   - rows: writes the rows; throwing aborts the COPY and nothing is inserted.
    /// - Returns: the number of rows written.
    @discardableResult
    public func copy(
        into table: String,
        schema: String = Chamber.public.schema,
        columns: [String],
        encoder: JSONBEncoder = JSONBEncoder(),
        file: String = #fileID,
        line: Int = #line,
        _ rows: (inout CopyRowWriter) async throws -> Void
    ) async throws -> Int {
        var written = 0
        try await self.copyFrom(table: table, schema: schema, columns: columns, file: file, line: line) { writer in
            var rowWriter = CopyRowWriter(writer: writer, encoder: encoder, columns: columns)
            try await rows(&rowWriter)
            try await rowWriter.flush()
            written = rowWriter.rowCount
        }
        return written
    }

    /// Runs `COPY schema.table (columns) FROM STDIN` (text format) with `write` sending the data as it
    /// is: for data that is already in COPY's text format (an extension export).
    ///
    /// Table and column names must be plain identifiers (PostgresNIO quotes them without escaping).
    /// Throwing from `write` aborts the COPY and the transaction; that error comes back unchanged.
    package func copyFrom(
        table: String,
        schema: String,
        columns: [String],
        file: String = #fileID,
        line: Int = #line,
        _ write: (PostgresCopyFromWriter) async throws -> Void
    ) async throws {
        // PostgresNIO's COPY takes an unqualified table name: resolve it in `schema` for the
        // duration of the COPY, then put the transaction's search_path back.
        let previous = try await self.query("SELECT current_setting('search_path')", file: file, line: line)
            .collect().first?.decode(String.self) ?? "public"
        try await self.execute("SELECT set_config('search_path', \(SQLIdentifier.quote(schema)), true)", file: file, line: line)
        var bodyError: (any Error)?
        do {
            try await self.connection.copyFrom(
                table: table, columns: columns, logger: self.logger, file: file, line: line
            ) { writer in
                do {
                    try await write(writer)
                } catch {
                    bodyError = error
                    throw error
                }
            }
        } catch {
            // The COPY was aborted, and with it the transaction. The body's own error comes back
            // unchanged; failures of the COPY itself (a refused write is a PSQLError) become a PhylacteryError.
            self.state.markAborted()
            if let bodyError, !(bodyError is PSQLError) { throw bodyError }
            throw PhylacteryError.wrapping(error, doing: "Copying rows into \(schema).\(table)", phase: .body, file: file, line: line)
        }
        try await self.execute("SELECT set_config('search_path', \(previous), true)", file: file, line: line)
    }
}
