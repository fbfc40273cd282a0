public import Foundation
public import PostgresNIO

// Typed reads and writes of ``PersistentModel``s inside a transaction.
//
// The SQL text is built from the model's schema on every call (a few string appends); nothing is
// cached globally. Values always travel as binary bind parameters, never in the SQL text.

extension Transaction {
    /// Inserts one row and returns it as the database stored it.
    ///
    /// Binds the model's `id` and its own columns; `created_at` and `updated_at` take the table's
    /// default (`now()`), so the model's `createdAt`/`updatedAt` are ignored and the returned model
    /// carries the database's times.
    ///
    /// - Throws: ``PhylacteryError`` with ``PhylacteryError/Code/queryFailed`` when the server rejects
    ///   the row (duplicate id, constraint violation), ``PhylacteryError/Code/invalidModel`` when the
    ///   model binds a different number of values than its schema has columns.
    @discardableResult
    public func insert<M: PersistentModel>(_ model: M, file: String = #fileID, line: Int = #line) async throws -> M {
        let schema = M.schema
        var writer = ModelRowWriter(bindings: PostgresBindings(capacity: schema.columns.count + 1))
        try ModelSQL.bindRow(model, columnCount: schema.columns.count, into: &writer)
        var sql = ModelSQL.insertPrefix(schema)
        ModelSQL.appendPlaceholders(&sql, from: 1, count: schema.columns.count + 1)
        sql += " RETURNING "
        sql += ModelSQL.selectList(schema)
        return try await self.single(PostgresQuery(unsafeSQL: sql, binds: writer.bindings), as: M.self, file: file, line: line)
    }

    /// Inserts many rows with multi-row `INSERT … VALUES (…), (…)` statements and returns how many
    /// were inserted.
    ///
    /// For large sets: rows are sent in chunks of at most 4096 rows, and never more than 65535 bind
    /// parameters (PostgreSQL's limit) per statement. Nothing
    /// is returned from the server, so the models' times are not read back. An empty array sends
    /// nothing and returns 0.
    ///
    /// The chunks run one after the other in this transaction: when one fails, the transaction is
    /// aborted and none of the rows is kept once it rolls back.
    @discardableResult
    public func insert<M: PersistentModel>(contentsOf models: [M], file: String = #fileID, line: Int = #line) async throws -> Int {
        guard !models.isEmpty else { return 0 }
        let schema = M.schema
        let parametersPerRow = schema.columns.count + 1
        let rowsPerChunk = ModelBatch.rowsPerStatement(parametersPerRow: parametersPerRow)
        let prefix = ModelSQL.insertPrefix(schema)
        // Every full chunk has the same text; only the last one can be shorter.
        var fullChunkSQL: String?
        let encoder = JSONBEncoder()
        var inserted = 0
        var start = models.startIndex
        while start < models.endIndex {
            let end = min(start + rowsPerChunk, models.endIndex)
            let rowCount = end - start
            var writer = ModelRowWriter(bindings: PostgresBindings(capacity: rowCount * parametersPerRow), encoder: encoder)
            for model in models[start..<end] {
                try ModelSQL.bindRow(model, columnCount: schema.columns.count, into: &writer)
            }
            let sql: String
            if rowCount == rowsPerChunk, let fullChunkSQL {
                sql = fullChunkSQL
            } else {
                sql = ModelSQL.multiRowInsert(prefix: prefix, rows: rowCount, parametersPerRow: parametersPerRow)
                if rowCount == rowsPerChunk { fullChunkSQL = sql }
            }
            try await self.execute(PostgresQuery(unsafeSQL: sql, binds: writer.bindings), file: file, line: line)
            inserted += rowCount
            start = end
        }
        return inserted
    }

    /// Inserts the row, or updates the row it conflicts with, and returns the stored row.
    ///
    /// Runs `INSERT … ON CONFLICT (columns) DO UPDATE SET` every own column to the new value and
    /// `updated_at = now()`. An existing row keeps its `id` and `created_at`, so when the conflict is
    /// on another unique column the returned model's `id` can differ from `model.id`.
    ///
    /// - Parameter columns: the conflict target: column names (quoted here) of the primary key or of
    ///   a unique constraint or index.
    @discardableResult
    public func upsert<M: PersistentModel>(
        _ model: M,
        onConflict columns: [String] = ["id"],
        file: String = #fileID,
        line: Int = #line
    ) async throws -> M {
        guard !columns.isEmpty else {
            throw PhylacteryError(.invalidArgument, "upsert of \(M.self) needs at least one conflict column; nothing was sent", file: file, line: line)
        }
        let schema = M.schema
        var writer = ModelRowWriter(bindings: PostgresBindings(capacity: schema.columns.count + 1))
        try ModelSQL.bindRow(model, columnCount: schema.columns.count, into: &writer)
        var sql = ModelSQL.insertPrefix(schema)
        ModelSQL.appendPlaceholders(&sql, from: 1, count: schema.columns.count + 1)
        sql += " ON CONFLICT ("
        sql += columns.map(SQLIdentifier.quote).joined(separator: ", ")
        sql += ") DO UPDATE SET "
        for column in schema.columns {
            let name = SQLIdentifier.quote(column.name)
            sql += name
            // A version column counts up from the stored row's version, whatever the model carried.
            sql += column.isVersion ? " = " + ModelSQL.table(schema) + "." + name + " + 1" : " = EXCLUDED." + name
            sql += ", "
        }
        sql += "\"updated_at\" = now() RETURNING "
        sql += ModelSQL.selectList(schema)
        return try await self.single(PostgresQuery(unsafeSQL: sql, binds: writer.bindings), as: M.self, file: file, line: line)
    }

    /// Writes every own column of the row with the model's `id`, sets `updated_at = now()`, and
    /// returns the stored row. `created_at` is left alone.
    ///
    /// For a model with a version column (`@Version`, ``ModelSchema/versionColumn(_:_:name:)``) this
    /// is an optimistic-concurrency write: it runs `… SET version = version + 1 WHERE id = … AND
    /// version = <model.version>`, so it succeeds only when nobody updated the row since the model
    /// was read, and the returned model carries the new version.
    ///
    /// - Throws: ``PhylacteryError`` with ``PhylacteryError/Code/notFound`` when no row has that id,
    ///   ``PhylacteryError/Code/staleRow`` when a versioned row is at another version than the model
    ///   (someone else updated it first). Nothing is written in either case and the transaction stays usable.
    @discardableResult
    public func update<M: PersistentModel>(_ model: M, file: String = #fileID, line: Int = #line) async throws -> M {
        let (query, versioned) = try ModelSQL.updateStatement(model, where: nil, file: file, line: line)
        let rows = try await self.models(query, as: M.self, file: file, line: line)
        if let row = rows.first { return row }
        let table = ModelSQL.table(M.schema)
        if versioned, try await self.count(M.self, where: "id = \(model.id)", file: file, line: line) > 0 {
            throw PhylacteryError(
                .staleRow,
                "The \(M.self) row was updated by someone else since this model was read (its version moved on); nothing was written. Read the row again, reapply the change and update that",
                file: file, line: line)
        }
        // The id is a bound value, so it stays out of the message.
        throw PhylacteryError(.notFound, "No \(M.self) row with the given id exists in \(table); nothing was updated", file: file, line: line)
    }

    /// Deletes the row with this id. Returns whether a row was deleted.
    @discardableResult
    public func delete<M: PersistentModel>(_ type: M.Type, id: UUID, file: String = #fileID, line: Int = #line) async throws -> Bool {
        let sql = "DELETE FROM " + ModelSQL.table(M.schema) + " WHERE \"id\" = $1 RETURNING \"id\""
        var binds = PostgresBindings(capacity: 1)
        binds.append(id)
        let rows = try await self.query(PostgresQuery(unsafeSQL: sql, binds: binds), file: file, line: line)
        return try await self.drain(rows, file: file, line: line) > 0
    }

    /// Deletes the model's row (by its `id`). Returns whether a row was deleted.
    @discardableResult
    public func delete<M: PersistentModel>(_ model: M, file: String = #fileID, line: Int = #line) async throws -> Bool {
        try await self.delete(M.self, id: model.id, file: file, line: line)
    }

    /// The row with this id, or `nil`.
    ///
    /// - Parameter lock: a row lock to take on the row (`SELECT … FOR UPDATE`), held until the
    ///   transaction ends; see ``RowLock``. With ``RowLock/WaitPolicy/skipLocked`` a row locked by
    ///   another transaction reads as `nil`; with ``RowLock/WaitPolicy/noWait`` it throws
    ///   ``PhylacteryError/Code/lockNotAvailable``, which aborts the transaction like any failed
    ///   statement (read in a savepoint, `tx.transaction { … }`, to go on after it).
    public func find<M: PersistentModel>(_ type: M.Type, id: UUID, lock: RowLock? = nil, file: String = #fileID, line: Int = #line) async throws -> M? {
        let schema = M.schema
        var sql = "SELECT " + ModelSQL.selectList(schema) + " FROM " + ModelSQL.table(schema) + " WHERE \"id\" = $1"
        if let lock {
            sql += " "
            sql += lock.description
        }
        var binds = PostgresBindings(capacity: 1)
        binds.append(id)
        return try await self.models(PostgresQuery(unsafeSQL: sql, binds: binds), as: M.self, file: file, line: line).first
    }

    /// The rows that match `filter`, in `orderBy` order, at most `limit` of them.
    ///
    /// ```swift
    /// let open = try await tx.fetch(Task.self, where: "status = \(Status.open.rawValue) AND due < \(now)",
    ///                               orderBy: "due, id", limit: 50)
    /// ```
    ///
    /// - Parameters:
    ///   - filter: a boolean SQL expression over the table's columns. Values interpolated into it are
    ///     bind parameters (`$1`, `$2`, …); they are the statement's only ones, so their numbering
    ///     stays right. Column names in it are written as SQL (snake_case).
    ///   - orderBy: columns of the model, each with an optional `ASC`/`DESC` and `NULLS FIRST`/`NULLS
    ///     LAST`, separated by commas (`"due DESC, id"`). It is parsed into ``Ordering`` terms, each
    ///     column checked against the model's columns and emitted quoted: anything else (expressions,
    ///     functions, `;`, an unknown column) throws ``PhylacteryError/Code/invalidArgument`` naming
    ///     the allowed columns, and nothing is sent.
    ///   - limit: at most this many rows; must not be negative.
    ///   - lock: a row lock on every row returned (`FOR UPDATE SKIP LOCKED` …), held until the
    ///     transaction ends; see ``RowLock``. ``RowLock/WaitPolicy/noWait`` on a locked row throws
    ///     ``PhylacteryError/Code/lockNotAvailable``, which aborts the transaction like any failed
    ///     statement: read in a savepoint (`tx.transaction { … }`) to go on after it.
    public func fetch<M: PersistentModel>(
        _ type: M.Type,
        where filter: PostgresQuery? = nil,
        orderBy: String? = nil,
        limit: Int? = nil,
        lock: RowLock? = nil,
        file: String = #fileID,
        line: Int = #line
    ) async throws -> [M] {
        let terms = try orderBy.map { try Ordering.terms($0, for: M.schema, operation: "fetch of \(M.self)", file: file, line: line) }
        return try await self.fetch(type, where: filter, ordering: terms, limit: limit, lock: lock, file: file, line: line)
    }

    /// The rows that match `filter`, in the typed `orderBy` order, at most `limit` of them; as
    /// ``fetch(_:where:orderBy:limit:lock:file:line:)`` with the ordering written as ``Ordering`` terms.
    public func fetch<M: PersistentModel>(
        _ type: M.Type,
        where filter: PostgresQuery? = nil,
        orderBy: [Ordering],
        limit: Int? = nil,
        lock: RowLock? = nil,
        file: String = #fileID,
        line: Int = #line
    ) async throws -> [M] {
        try await self.fetch(type, where: filter, ordering: orderBy, limit: limit, lock: lock, file: file, line: line)
    }

    private func fetch<M: PersistentModel>(
        _ type: M.Type,
        where filter: PostgresQuery?,
        ordering: [Ordering]?,
        limit: Int?,
        lock: RowLock?,
        file: String,
        line: Int
    ) async throws -> [M] {
        let query = try ModelSQL.selectStatement(M.self, where: filter, ordering: ordering, limit: limit, lock: lock, operation: "fetch of \(M.self)", file: file, line: line)
        return try await self.models(query, as: M.self, file: file, line: line)
    }

    /// How many rows match `filter` (all rows when `nil`); the filter is used as in
    /// ``fetch(_:where:orderBy:limit:lock:file:line:)``.
    public func count<M: PersistentModel>(_ type: M.Type, where filter: PostgresQuery? = nil, file: String = #fileID, line: Int = #line) async throws -> Int {
        var sql = "SELECT count(*) FROM " + ModelSQL.table(M.schema)
        if let filter {
            sql += " WHERE ("
            sql += filter.sql
            sql += ")"
        }
        let rows = try await self.query(PostgresQuery(unsafeSQL: sql, binds: filter?.binds ?? PostgresBindings()), file: file, line: line)
        var count = 0
        var iterator = rows.makeAsyncIterator()
        while let row = try await self.next(&iterator, file: file, line: line) {
            count = try row.decode(Int.self)
        }
        return count
    }

    // MARK: - Reading rows

    /// Runs a statement expected to return exactly one model row.
    private func single<M: PersistentModel>(_ query: PostgresQuery, as type: M.Type, file: String, line: Int) async throws -> M {
        let rows = try await self.models(query, as: M.self, file: file, line: line)
        guard let row = rows.first else {
            throw PhylacteryError(.queryFailed, "A write to \(ModelSQL.table(M.schema)) returned no row", sql: query.sql, file: file, line: line)
        }
        return row
    }

    /// Runs a statement selecting ``ModelSchema/allColumns`` and decodes every row through `M(row:)`.
    ///
    /// The statement's result columns are checked against the model's once, before any row is read
    /// (`ModelSQL.checkColumns`).
    func models<M: PersistentModel>(_ query: PostgresQuery, as type: M.Type, file: String, line: Int) async throws -> [M] {
        let rows = try await self.query(query, file: file, line: line)
        try ModelSQL.checkColumns(rows.columns, of: M.self, sql: query.sql, file: file, line: line)
        var result: [M] = []
        var iterator = rows.makeAsyncIterator()
        while let row = try await self.next(&iterator, file: file, line: line) {
            result.append(try ModelSQL.decode(row, as: M.self, file: file, line: line))
        }
        return result
    }

    /// The next row; a failure while rows stream is the server's, so it aborts the transaction like
    /// a failed statement. (Decoding failures, by contrast, leave the transaction usable.)
    func next(_ iterator: inout PostgresRowSequence.AsyncIterator, file: String, line: Int) async throws -> PostgresRow? {
        do {
            return try await iterator.next(isolation: #isolation)
        } catch {
            throw self.aborting(error, doing: "Running a query in a transaction", file: file, line: line)
        }
    }

    /// Reads and counts the rows of a statement.
    private func drain(_ rows: PostgresRowSequence, file: String, line: Int) async throws -> Int {
        var count = 0
        var iterator = rows.makeAsyncIterator()
        while try await self.next(&iterator, file: file, line: line) != nil { count += 1 }
        return count
    }
}

/// Limits of ``Transaction/insert(contentsOf:file:line:)``.
enum ModelBatch {
    /// PostgreSQL's wire protocol counts bind parameters in 16 bits.
    static let maximumParametersPerStatement = 65535
    /// Rows per statement at most, however few columns a model has: bigger statements cost the
    /// server more to parse and plan than the round trips they save.
    static let maximumRowsPerStatement = 4096

    /// How many rows of a model binding `parametersPerRow` values fit in one statement.
    static func rowsPerStatement(parametersPerRow: Int) -> Int {
        max(1, min(maximumRowsPerStatement, maximumParametersPerStatement / max(1, parametersPerRow)))
    }
}

/// The SQL text of the model operations, built from a schema.
enum ModelSQL {
    /// `"chamber"."table"`.
    static func table(_ schema: ModelSchema) -> String {
        SQLIdentifier.quote(schema: schema.chamber.schema, name: schema.table)
    }

    /// The quoted ``ModelSchema/allColumns``, comma-separated, in the order `init(row:)` reads them.
    static func selectList(_ schema: ModelSchema) -> String {
        var list = "\"id\", \"created_at\", \"updated_at\""
        for column in schema.columns {
            list += ", "
            list += SQLIdentifier.quote(column.name)
        }
        return list
    }

    /// `INSERT INTO "chamber"."table" ("id", <own columns>) VALUES `.
    static func insertPrefix(_ schema: ModelSchema) -> String {
        var sql = "INSERT INTO " + table(schema) + " (\"id\""
        for column in schema.columns {
            sql += ", "
            sql += SQLIdentifier.quote(column.name)
        }
        sql += ") VALUES "
        return sql
    }

    /// Appends `($from, …, $(from + count − 1))`.
    static func appendPlaceholders(_ sql: inout String, from first: Int, count: Int) {
        sql += "("
        for number in first..<(first + count) {
            if number > first { sql += ", " }
            sql += "$"
            sql += String(number)
        }
        sql += ")"
    }

    /// The prefix followed by `rows` placeholder groups of `parametersPerRow` each.
    static func multiRowInsert(prefix: String, rows: Int, parametersPerRow: Int) -> String {
        var sql = prefix
        // About 7 bytes per placeholder ("$12345,"), so the text grows once.
        sql.reserveCapacity(prefix.utf8.count + rows * (parametersPerRow * 8 + 4))
        for row in 0..<rows {
            if row > 0 { sql += ", " }
            appendPlaceholders(&sql, from: row * parametersPerRow + 1, count: parametersPerRow)
        }
        return sql
    }

    /// Binds `id`, then the model's own columns, checking the model bound one value per column.
    static func bindRow<M: PersistentModel>(_ model: M, columnCount: Int, into writer: inout ModelRowWriter) throws {
        try writer.write(model.id)
        try bindOwnColumns(model, columnCount: columnCount, into: &writer)
    }

    /// Binds the model's own columns, checking it bound one value per column of its schema.
    static func bindOwnColumns<M: PersistentModel>(_ model: M, columnCount: Int, into writer: inout ModelRowWriter) throws {
        let before = writer.bindings.count
        if writer.columns.isEmpty { writer.columns = M.schema.columns }
        writer.columnsStart = before
        try model.bindColumns(to: &writer)
        let bound = writer.bindings.count - before
        guard bound == columnCount else {
            throw PhylacteryError(.invalidModel, "\(M.self).bindColumns bound \(bound) values but its schema has \(columnCount) columns")
        }
    }
}
