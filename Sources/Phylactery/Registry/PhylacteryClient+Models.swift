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
    /// `orderBy` is SQL text used **without escaping** (never build it from untrusted input; text
    /// containing `;` is refused). See ``Transaction/fetch(_:where:orderBy:limit:file:line:)``.
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
}
