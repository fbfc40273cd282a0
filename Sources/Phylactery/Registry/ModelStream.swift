import PostgresNIO

/// Models read one by one from a statement's row stream: what ``Transaction/stream(_:where:orderBy:file:line:)``
/// returns.
///
/// Rows come from PostgresNIO's row sequence, which has backpressure: it stops reading from the
/// socket while its buffer is full, so the server waits for the consumer and memory stays flat
/// however many rows the statement returns. The sequence belongs to its transaction: iterate it
/// once, inside the transaction's body. Stopping early is fine; the rest of the rows are read and
/// discarded by the connection before its next statement runs.
///
/// A failure while rows stream is the server's and aborts the transaction like a failed statement;
/// a row that cannot be decoded throws ``PhylacteryError/Code/decodingFailed`` and leaves it usable.
public struct ModelStream<Model: PersistentModel>: AsyncSequence, Sendable {
    public typealias Element = Model

    let rows: PostgresRowSequence
    let transaction: Transaction
    let file: String
    let line: Int

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(rows: self.rows.makeAsyncIterator(), transaction: self.transaction, file: self.file, line: self.line)
    }

    /// Decodes the next row as it arrives.
    public struct AsyncIterator: AsyncIteratorProtocol {
        var rows: PostgresRowSequence.AsyncIterator
        let transaction: Transaction
        let file: String
        let line: Int

        /// The next model, or `nil` after the last row.
        public mutating func next() async throws -> Model? {
            guard let row = try await self.transaction.next(&self.rows, file: self.file, line: self.line) else { return nil }
            return try ModelSQL.decode(row, as: Model.self, file: self.file, line: self.line)
        }
    }
}
