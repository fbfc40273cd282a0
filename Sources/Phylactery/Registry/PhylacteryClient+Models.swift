public import Foundation
public import PostgresNIO

// Each operation runs the `Transaction` version in a transaction of its own (or in a savepoint
// when the calling task is already inside a transaction of this client), so it commits on return,
// rolls back on error and is retried on serialization failures like any `transaction { }` body.

extension PhylacteryClient {
    /// Inserts one row in a transaction of its own and returns it with the database's `created_at`
    /// and `updated_at`. See ``Transaction/insert(_:file:line:)``.
    @discardableResult
    public func insert<M: PersistentModel>(_ model: M, file: String = #fileID, line: Int = #line) async throws -> M {
        try await self.transaction(file: file, line: line) { tx in
            try await tx.insert(model, file: file, line: line)
        }
    }

    /// Inserts many rows in one transaction with chunked multi-row statements and returns how many
    /// were inserted: all of them, or none when any chunk fails. See
    /// ``Transaction/insert(contentsOf:file:line:)``.
    @discardableResult
    public func insert<M: PersistentModel>(contentsOf models: [M], file: String = #fileID, line: Int = #line) async throws -> Int {
        guard !models.isEmpty else { return 0 }
        return try await self.transaction(file: file, line: line) { tx in
            try await tx.insert(contentsOf: models, file: file, line: line)
        }
    }

    /// Inserts the row or updates the one it conflicts with, in a transaction of its own. See
    /// ``Transaction/upsert(_:onConflict:file:line:)``.
    @discardableResult
    public func upsert<M: PersistentModel>(
        _ model: M,
        onConflict columns: [String] = ["id"],
        file: String = #fileID,
        line: Int = #line
    ) async throws -> M {
        try await self.transaction(file: file, line: line) { tx in
            try await tx.upsert(model, onConflict: columns, file: file, line: line)
        }
    }

    /// Updates the model's row in a transaction of its own and returns it. See
    /// ``Transaction/update(_:file:line:)``.
    ///
    /// - Throws: ``PhylacteryError`` with ``PhylacteryError/Code/notFound`` when no row has the model's id.
    @discardableResult
    public func update<M: PersistentModel>(_ model: M, file: String = #fileID, line: Int = #line) async throws -> M {
        try await self.transaction(file: file, line: line) { tx in
            try await tx.update(model, file: file, line: line)
        }
    }

    /// Deletes the row with this id. Returns whether a row was deleted.
    @discardableResult
    public func delete<M: PersistentModel>(_ type: M.Type, id: UUID, file: String = #fileID, line: Int = #line) async throws -> Bool {
        try await self.transaction(file: file, line: line) { tx in
            try await tx.delete(type, id: id, file: file, line: line)
        }
    }

    /// Deletes the model's row (by its `id`). Returns whether a row was deleted.
    @discardableResult
    public func delete<M: PersistentModel>(_ model: M, file: String = #fileID, line: Int = #line) async throws -> Bool {
        try await self.transaction(file: file, line: line) { tx in
            try await tx.delete(model, file: file, line: line)
        }
    }

    /// The row with this id, or `nil`.
    public func find<M: PersistentModel>(_ type: M.Type, id: UUID, file: String = #fileID, line: Int = #line) async throws -> M? {
        try await self.transaction(file: file, line: line) { tx in
            try await tx.find(type, id: id, file: file, line: line)
        }
    }

    /// The rows that match `filter`, in `orderBy` order, at most `limit` of them.
    ///
    /// `filter` is a boolean SQL expression whose interpolated values are bind parameters.
    /// `orderBy` is columns of the model with optional `ASC`/`DESC` and `NULLS FIRST`/`LAST`
    /// (`"due DESC, id"`), each checked against the model's columns; anything else is refused with
    /// ``PhylacteryError/Code/invalidArgument``. A row lock (``RowLock``) only makes sense inside a
    /// transaction: use ``Transaction/fetch(_:where:orderBy:limit:lock:file:line:)`` for one.
    public func fetch<M: PersistentModel>(
        _ type: M.Type,
        where filter: PostgresQuery? = nil,
        orderBy: String? = nil,
        limit: Int? = nil,
        file: String = #fileID,
        line: Int = #line
    ) async throws -> [M] {
        try await self.transaction(file: file, line: line) { tx in
            try await tx.fetch(type, where: filter, orderBy: orderBy, limit: limit, file: file, line: line)
        }
    }

    /// How many rows match `filter` (all rows when `nil`). See
    /// ``Transaction/count(_:where:file:line:)``.
    public func count<M: PersistentModel>(_ type: M.Type, where filter: PostgresQuery? = nil, file: String = #fileID, line: Int = #line) async throws -> Int {
        try await self.transaction(file: file, line: line) { tx in
            try await tx.count(type, where: filter, file: file, line: line)
        }
    }

    /// The rows that match `filter`, ordered by typed ``Ordering`` terms. See
    /// ``Transaction/fetch(_:where:orderBy:limit:lock:file:line:)``.
    public func fetch<M: PersistentModel>(
        _ type: M.Type,
        where filter: PostgresQuery? = nil,
        orderBy: [Ordering],
        limit: Int? = nil,
        file: String = #fileID,
        line: Int = #line
    ) async throws -> [M] {
        try await self.transaction(file: file, line: line) { tx in
            try await tx.fetch(type, where: filter, orderBy: orderBy, limit: limit, file: file, line: line)
        }
    }

    /// Compare-and-set in a transaction of its own: writes the model's row only when `condition`
    /// holds, and returns the stored row or `nil`. See ``Transaction/update(_:where:file:line:)``.
    @discardableResult
    public func update<M: PersistentModel>(_ model: M, where condition: PostgresQuery, file: String = #fileID, line: Int = #line) async throws -> M? {
        try await self.transaction(file: file, line: line) { tx in
            try await tx.update(model, where: condition, file: file, line: line)
        }
    }

    /// A partial update in a transaction of its own: writes only the assigned columns of the rows
    /// that match `filter` and returns how many changed. See ``Transaction/update(_:set:where:file:line:)``.
    @discardableResult
    public func update<M: PersistentModel>(
        _ type: M.Type,
        set assign: (inout ColumnAssignments<M>) throws -> Void,
        where filter: PostgresQuery,
        file: String = #fileID,
        line: Int = #line
    ) async throws -> Int {
        try await self.transaction(file: file, line: line) { tx in
            try await tx.update(type, set: assign, where: filter, file: file, line: line)
        }
    }

    /// Models decoded from any statement returning their columns, in a transaction of its own. See
    /// ``Transaction/models(_:from:file:line:)``.
    public func models<M: PersistentModel>(_ type: M.Type, from query: PostgresQuery, file: String = #fileID, line: Int = #line) async throws -> [M] {
        try await self.transaction(file: file, line: line) { tx in
            try await tx.models(type, from: query, file: file, line: line)
        }
    }

    /// Streams the rows that match `filter` to `body`, inside a transaction opened for the stream's
    /// lifetime (a `REPEATABLE READ`, read-only one, so the scan sees one snapshot).
    ///
    /// ```swift
    /// let total = try await client.stream(Run.self, where: "status = 'done'") { runs in
    ///     try await runs.reduce(0) { $0 + $1.cost }
    /// }
    /// ```
    ///
    /// The transaction ends, and its connection goes back to the pool, when `body` returns or
    /// throws, whether or not it read every row; the sequence must not escape `body`. Like any
    /// transaction body, `body` runs again from the first row when the transaction is retried (a
    /// serialization failure), so effects it has outside the database should tolerate that. See
    /// ``Transaction/stream(_:where:orderBy:file:line:)``.
    public func stream<M: PersistentModel, Result: Sendable>(
        _ type: M.Type,
        where filter: PostgresQuery? = nil,
        orderBy: String? = nil,
        file: String = #fileID,
        line: Int = #line,
        _ body: (ModelStream<M>) async throws -> Result
    ) async throws -> Result {
        try await self.transaction(options: TransactionOptions(isolationLevel: .repeatableRead, readOnly: true), file: file, line: line) { tx in
            try await body(try await tx.stream(type, where: filter, orderBy: orderBy, file: file, line: line))
        }
    }

    /// One keyset page in a transaction of its own. See
    /// ``Transaction/page(_:where:orderBy:after:limit:file:line:)``.
    public func page<M: PersistentModel>(
        _ type: M.Type,
        where filter: PostgresQuery? = nil,
        orderBy: [Ordering] = [],
        after cursor: PageCursor? = nil,
        limit: Int,
        file: String = #fileID,
        line: Int = #line
    ) async throws -> Page<M> {
        try await self.transaction(file: file, line: line) { tx in
            try await tx.page(type, where: filter, orderBy: orderBy, after: cursor, limit: limit, file: file, line: line)
        }
    }
}
