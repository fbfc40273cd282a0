import Foundation
import NIOCore
public import PostgresNIO

// Typed access beyond plain CRUD: models decoded from any statement, compare-and-set and partial
// updates, streaming and keyset pages. Values are bind parameters; names go through SQLIdentifier.

extension PersistentModel {
    /// The model's columns as a `SELECT` list, in the order ``PersistentModel/init(row:)`` reads
    /// them, each quoted and, with an alias, qualified: `"r"."id", "r"."created_at", …`. For custom
    /// statements decoded with ``Transaction/models(_:from:file:line:)``:
    ///
    /// ```swift
    /// let runs = try await tx.models(Run.self, from: """
    ///     SELECT \(unescaped: Run.selectList(alias: "r")) FROM \(unescaped: Run.qualifiedTableName) r
    ///     JOIN public.workers w ON w.id = r.worker_id WHERE w.name = \(name)
    ///     """)
    /// ```
    ///
    /// - Parameter alias: a table alias (quoted here), or `nil` for bare column names.
    public static func selectList(alias: String? = nil) -> String {
        ModelSQL.selectList(Self.schema, alias: alias)
    }

    /// The model's table as SQL names it, schema-qualified and quoted: `"public"."runs"`.
    public static var qualifiedTableName: String { ModelSQL.table(Self.schema) }
}

extension Transaction {
    /// Runs any statement that returns the model's columns (a join, a CTE, `UPDATE … RETURNING`)
    /// and decodes every row as a model.
    ///
    /// The statement's result columns are checked against the model's (``ModelSchema/allColumns``:
    /// `id`, `created_at`, `updated_at`, then the model's own, in that order) once, before any row
    /// is read; select them with ``PersistentModel/selectList(alias:)``. Result columns are matched
    /// by name, so aliases must not rename them.
    ///
    /// - Throws: ``PhylacteryError/Code/decodingFailed`` naming the missing, extra or out-of-order
    ///   column when the statement's columns differ (the transaction stays usable); the server's
    ///   errors as from ``query(_:file:line:)``.
    public func models<M: PersistentModel>(_ type: M.Type, from query: PostgresQuery, file: String = #fileID, line: Int = #line) async throws -> [M] {
        try await self.models(query, as: M.self, file: file, line: line)
    }

    /// Compare-and-set: writes every own column of the model's row (as ``update(_:file:line:)``)
    /// only when `condition` holds for the row as stored, and returns the stored row, or `nil`
    /// when the row does not match (or no row has the model's id). Nothing is written then.
    ///
    /// ```swift
    /// run.status = .done
    /// guard let done = try await tx.update(run, where: "status = \(Status.running.rawValue)") else {
    ///     return // someone else moved the run on first
    /// }
    /// ```
    ///
    /// Under READ COMMITTED a concurrent writer's row is waited for and the condition re-checked
    /// against its new version, so exactly one of two racing compare-and-sets wins. For a model
    /// with a version column the version must match too (and is counted up).
    ///
    /// - Parameter condition: a boolean SQL expression over the row's columns, values interpolated
    ///   as bind parameters (`status = \(expected)`). Prefer a status or a version column
    ///   (`@Version`) to a timestamp: PostgresNIO truncates a `Date` to microseconds when it binds
    ///   it, and for dates after 2031 a timestamp read back and bound again can lose one, so
    ///   `updated_at = \(old)` would miss a row nobody changed.
    @discardableResult
    public func update<M: PersistentModel>(_ model: M, where condition: PostgresQuery, file: String = #fileID, line: Int = #line) async throws -> M? {
        let (query, _) = try ModelSQL.updateStatement(model, where: condition, file: file, line: line)
        return try await self.models(query, as: M.self, file: file, line: line).first
    }

    /// A partial update: writes only the columns the `set` closure assigns, on every row that
    /// matches `filter`, and returns how many rows it changed.
    ///
    /// ```swift
    /// let finished = try await tx.update(Run.self, set: { $0.set(\.status, to: .done) },
    ///                                    where: "status = 'running' AND batch_id = \(batch)")
    /// ```
    ///
    /// `updated_at` is set to `now()`, and a version column counted up, on every changed row.
    ///
    /// - Parameters:
    ///   - assign: records the assignments (``ColumnAssignments``); values are bind parameters.
    ///   - filter: which rows; required (pass `"true"` to change every row).
    /// - Throws: ``PhylacteryError/Code/invalidArgument`` when no column is assigned, a key path is
    ///   not a column (see ``PersistentModel/columnKeyPaths``), or the version column is assigned.
    @discardableResult
    public func update<M: PersistentModel>(
        _ type: M.Type,
        set assign: (inout ColumnAssignments<M>) throws -> Void,
        where filter: PostgresQuery,
        file: String = #fileID,
        line: Int = #line
    ) async throws -> Int {
        let schema = M.schema
        var assignments = ColumnAssignments<M>()
        try assign(&assignments)
        var bindings = filter.binds
        var sql = "UPDATE " + ModelSQL.table(schema) + " SET "
        sql += try assignments.sql(into: &bindings, operation: "update of \(M.self)", file: file, line: line)
        if let version = try ModelSQL.versionColumnIndex(schema, file: file, line: line) {
            let name = SQLIdentifier.quote(schema.columns[version].name)
            sql += name + " = " + name + " + 1, "
        }
        sql += "\"updated_at\" = now() WHERE ("
        sql += filter.sql
        sql += ") RETURNING \"id\""
        let rows = try await self.query(PostgresQuery(unsafeSQL: sql, binds: bindings), file: file, line: line)
        var count = 0
        var iterator = rows.makeAsyncIterator()
        while try await self.next(&iterator, file: file, line: line) != nil { count += 1 }
        return count
    }
}

extension Transaction {
    /// The rows that match `filter`, in `orderBy` order, as an `AsyncSequence` of models read as
    /// they arrive, with backpressure (see ``ModelStream``): a scan of millions of rows keeps memory
    /// flat. `filter` and `orderBy` are as in ``fetch(_:where:orderBy:limit:lock:file:line:)``.
    ///
    /// ```swift
    /// for try await run in try await tx.stream(Run.self, where: "status = 'done'", orderBy: "created_at, id") {
    ///     try archive(run)
    /// }
    /// ```
    ///
    /// Iterate it inside this transaction's body; no other statement can run on the transaction
    /// until the sequence is finished or dropped. From a client,
    /// ``PhylacteryClient/stream(_:where:orderBy:file:line:_:)`` opens the transaction for you.
    public func stream<M: PersistentModel>(
        _ type: M.Type,
        where filter: PostgresQuery? = nil,
        orderBy: String? = nil,
        file: String = #fileID,
        line: Int = #line
    ) async throws -> ModelStream<M> {
        let operation = "stream of \(M.self)"
        let terms = try orderBy.map { try Ordering.terms($0, for: M.schema, operation: operation, file: file, line: line) }
        let query = try ModelSQL.selectStatement(M.self, where: filter, ordering: terms, limit: nil, lock: nil, operation: operation, file: file, line: line)
        return try await self.stream(M.self, from: query, file: file, line: line)
    }

    /// Any statement returning the model's columns (checked as by ``models(_:from:file:line:)``),
    /// as a ``ModelStream`` of models read as they arrive.
    public func stream<M: PersistentModel>(_ type: M.Type, from query: PostgresQuery, file: String = #fileID, line: Int = #line) async throws -> ModelStream<M> {
        let rows = try await self.query(query, file: file, line: line)
        try ModelSQL.checkColumns(rows.columns, of: M.self, sql: query.sql, file: file, line: line)
        return ModelStream(rows: rows, transaction: self, file: file, line: line)
    }

    /// One page of the rows that match `filter`, in a stable order, starting after `cursor`
    /// (keyset pagination).
    ///
    /// ```swift
    /// var cursor: PageCursor? = nil
    /// repeat {
    ///     let page = try await tx.page(Run.self, orderBy: [.descending("priority")], after: cursor, limit: 100)
    ///     show(page.items)
    ///     cursor = page.next
    /// } while cursor != nil
    /// ```
    ///
    /// The order always ends with `id` (added when `orderBy` does not end with it), so it is total;
    /// a page starts at the first row after the cursor's key in that order, which an index on the
    /// ordering columns finds directly (no `OFFSET`). Rows inserted or deleted between pages do not
    /// shift the pages: no row is repeated and none of the rows that stay is skipped.
    ///
    /// - Parameters:
    ///   - orderBy: the ordering (ascending `id` alone when empty); its columns must be NOT NULL.
    ///   - after: the previous page's ``Page/next``, or `nil` for the first page.
    ///   - limit: rows per page, at least 1.
    public func page<M: PersistentModel>(
        _ type: M.Type,
        where filter: PostgresQuery? = nil,
        orderBy: [Ordering] = [],
        after cursor: PageCursor? = nil,
        limit: Int,
        file: String = #fileID,
        line: Int = #line
    ) async throws -> Page<M> {
        let schema = M.schema
        let operation = "page of \(M.self)"
        guard limit >= 1 else {
            throw PhylacteryError(.invalidArgument, "\(operation): limit must be at least 1; nothing was sent", file: file, line: line)
        }
        var terms = orderBy
        if terms.last?.column != "id" { terms.append(.ascending("id")) }
        let orderSQL = try Ordering.sql(terms, for: schema, operation: operation, file: file, line: line)
        let columns = schema.allColumns
        let positions = terms.map { term in columns.firstIndex { $0.name == term.column }! }
        for position in positions where columns[position].isNullable {
            throw PhylacteryError(.invalidArgument, "\(operation): \(columns[position].name) is nullable; keyset pages order by NOT NULL columns only; nothing was sent", file: file, line: line)
        }
        var bindings = filter?.binds ?? PostgresBindings()
        var conditions: [String] = []
        if let filter { conditions.append("(" + filter.sql + ")") }
        if let cursor {
            guard cursor.ordering == terms.map(\.clause), cursor.keys.count == terms.count else {
                throw PhylacteryError(.invalidArgument, "\(operation): the cursor was made for another ordering (\(cursor.ordering.joined(separator: ", "))); start again without one; nothing was sent", file: file, line: line)
            }
            var placeholders: [String] = []
            for key in cursor.keys {
                if key.bytes == nil { bindings.appendNull() } else { bindings.append(CursorKeyValue(key: key)) }
                placeholders.append("$" + String(bindings.count))
            }
            conditions.append(ModelSQL.keysetCondition(terms, placeholders: placeholders))
        }
        var sql = "SELECT " + ModelSQL.selectList(schema) + " FROM " + ModelSQL.table(schema)
        if !conditions.isEmpty { sql += " WHERE " + conditions.joined(separator: " AND ") }
        sql += " ORDER BY " + orderSQL + " LIMIT " + String(limit + 1)
        let query = PostgresQuery(unsafeSQL: sql, binds: bindings)
        let rows = try await self.query(query, file: file, line: line)
        try ModelSQL.checkColumns(rows.columns, of: M.self, sql: sql, file: file, line: line)
        var items: [M] = []
        var last: PostgresRow?
        var more = false
        var iterator = rows.makeAsyncIterator()
        while let row = try await self.next(&iterator, file: file, line: line) {
            if items.count == limit {
                more = true
                continue
            }
            items.append(try ModelSQL.decode(row, as: M.self, file: file, line: line))
            last = row
        }
        guard more, let last else { return Page(items: items, next: nil) }
        let cells = last.makeRandomAccess()
        let keys = positions.map { position in
            let cell = cells[position]
            return PageCursor.Key(type: cell.dataType.rawValue, format: cell.format.rawValue, bytes: cell.bytes.map { Data($0.readableBytesView) })
        }
        return Page(items: items, next: PageCursor(ordering: terms.map(\.clause), keys: keys))
    }
}

extension ModelSQL {
    /// `SELECT <columns> FROM <table> [WHERE (filter)] [ORDER BY …] [LIMIT n] [FOR …]`, the ordering
    /// checked against the model's columns.
    static func selectStatement<M: PersistentModel>(
        _ type: M.Type,
        where filter: PostgresQuery?,
        ordering: [Ordering]?,
        limit: Int?,
        lock: RowLock?,
        operation: String,
        file: String,
        line: Int
    ) throws -> PostgresQuery {
        let schema = M.schema
        var sql = "SELECT " + selectList(schema) + " FROM " + table(schema)
        if let filter {
            sql += " WHERE ("
            sql += filter.sql
            sql += ")"
        }
        if let ordering {
            sql += " ORDER BY "
            sql += try Ordering.sql(ordering, for: schema, operation: operation, file: file, line: line)
        }
        if let limit {
            guard limit >= 0 else {
                throw PhylacteryError(.invalidArgument, "\(operation): limit must not be negative; nothing was sent", file: file, line: line)
            }
            // An integer is safe in the text, and keeps the filter's binds the statement's only ones.
            sql += " LIMIT "
            sql += String(limit)
        }
        if let lock {
            sql += " "
            sql += lock.description
        }
        return PostgresQuery(unsafeSQL: sql, binds: filter?.binds ?? PostgresBindings())
    }

    /// The rows after the key in the ordering `terms`:
    /// `a > $1 OR (a = $1 AND (b < $2 OR (b = $2 AND id > $3)))`, each comparison in its term's direction.
    static func keysetCondition(_ terms: [Ordering], placeholders: [String]) -> String {
        var condition = ""
        for (term, placeholder) in zip(terms, placeholders).reversed() {
            let column = SQLIdentifier.quote(term.column)
            let after = column + (term.direction == .ascending ? " > " : " < ") + placeholder
            condition = condition.isEmpty ? after : "(" + after + " OR (" + column + " = " + placeholder + " AND " + condition + "))"
        }
        return condition
    }
    /// The quoted ``ModelSchema/allColumns``, each qualified by `alias` when given.
    static func selectList(_ schema: ModelSchema, alias: String?) -> String {
        guard let alias else { return selectList(schema) }
        let prefix = SQLIdentifier.quote(alias) + "."
        return schema.allColumns.map { prefix + SQLIdentifier.quote($0.name) }.joined(separator: ", ")
    }

    /// Checks a statement's result columns against the model's, naming what differs.
    static func checkColumns<M: PersistentModel>(_ columns: PostgresColumns, of type: M.Type, sql: String, file: String, line: Int) throws {
        let expected = M.schema.allColumns.map(\.name)
        let actual = columns.map(\.name)
        guard actual != expected else { return }
        var problems: [String] = []
        let missing = expected.filter { !actual.contains($0) }
        let extra = actual.filter { !expected.contains($0) }
        if !missing.isEmpty { problems.append("missing " + missing.map { "\"\($0)\"" }.joined(separator: ", ")) }
        if !extra.isEmpty { problems.append("extra " + extra.map { "\"\($0)\"" }.joined(separator: ", ")) }
        if problems.isEmpty {
            if let position = zip(actual, expected).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
                problems.append("out of order: result column \(position + 1) is \"\(actual[position])\" where \(M.self) reads \"\(expected[position])\"")
            } else {
                problems.append("\(actual.count) result columns for the model's \(expected.count) (a column appears twice)")
            }
        }
        throw PhylacteryError(
            .decodingFailed,
            "The statement's result columns do not match \(M.self): \(problems.joined(separator: "; ")). Select \(M.self).selectList(alias:), which lists \(expected.joined(separator: ", ")) in that order; no row was read",
            sql: sql, file: file, line: line)
    }

    /// Decodes one row (whose columns were checked) through `M(row:)`.
    static func decode<M: PersistentModel>(_ row: PostgresRow, as type: M.Type, file: String, line: Int) throws -> M {
        var reader = ModelRowReader(row)
        let model: M
        do {
            model = try M(row: &reader)
        } catch let error as PhylacteryError {
            throw error
        } catch {
            throw PhylacteryError(.decodingFailed, "A row of \(table(M.schema)) cannot be read as \(M.self): \(error)", underlying: error, file: file, line: line)
        }
        // A model that reads fewer columns than it selects has bindColumns/init(row:) out of step with its schema.
        guard reader.index == row.count else {
            throw PhylacteryError(.decodingFailed, "\(M.self).init(row:) read \(reader.index) of the \(row.count) selected columns; it must read ModelSchema.allColumns in order", file: file, line: line)
        }
        return model
    }

    /// The index in ``ModelSchema/columns`` of the version column, checking there is at most one
    /// and that it is an integer.
    static func versionColumnIndex(_ schema: ModelSchema, file: String, line: Int) throws -> Int? {
        let indices = schema.columns.indices.filter { schema.columns[$0].isVersion }
        guard let index = indices.first else { return nil }
        guard indices.count == 1 else {
            throw PhylacteryError(.invalidModel, "\(schema.modelName) has \(indices.count) version columns; keep one @Version", file: file, line: line)
        }
        guard [SQLType.bigint, .integer, .smallint].contains(schema.columns[index].type) else {
            throw PhylacteryError(.invalidModel, "\(schema.modelName)'s version column \(schema.columns[index].name) is \(schema.columns[index].type); make it an integer (Int64)", file: file, line: line)
        }
        return index
    }

    /// `UPDATE … SET <own columns> WHERE id = … [AND version = …] [AND (condition)] RETURNING …`,
    /// and whether the model is versioned. The condition's binds come first, so its `$n` stay right.
    static func updateStatement<M: PersistentModel>(_ model: M, where condition: PostgresQuery?, file: String, line: Int) throws -> (PostgresQuery, versioned: Bool) {
        let schema = M.schema
        let leading = condition?.binds ?? PostgresBindings(capacity: schema.columns.count + 1)
        let offset = leading.count
        var writer = ModelRowWriter(bindings: leading)
        try bindOwnColumns(model, columnCount: schema.columns.count, into: &writer)
        try writer.write(model.id)
        let version = try versionColumnIndex(schema, file: file, line: line)
        var sql = "UPDATE " + table(schema) + " SET "
        for (index, column) in schema.columns.enumerated() {
            let name = SQLIdentifier.quote(column.name)
            sql += name
            if index == version {
                // The model's version is bound at this position and compared below instead.
                sql += " = " + name + " + 1, "
            } else {
                sql += " = $" + String(offset + index + 1) + ", "
            }
        }
        sql += "\"updated_at\" = now() WHERE \"id\" = $"
        sql += String(offset + schema.columns.count + 1)
        if let version {
            sql += " AND " + SQLIdentifier.quote(schema.columns[version].name) + " = $" + String(offset + version + 1)
        }
        if let condition {
            sql += " AND ("
            sql += condition.sql
            sql += ")"
        }
        sql += " RETURNING "
        sql += selectList(schema)
        return (PostgresQuery(unsafeSQL: sql, binds: writer.bindings), version != nil)
    }
}
