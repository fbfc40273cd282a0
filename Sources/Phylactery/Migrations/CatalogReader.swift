package import Logging
package import PostgresNIO

/// Reads the live schema from `pg_catalog` into a ``SchemaShape``, spelled the way PostgreSQL spells it.
///
/// A read issues the same fixed number of queries (``queryCount``) whatever the number of tables:
/// schemas and extensions; tables with their columns; then the constraints and the indexes of all
/// those tables at once, grouped by table in Swift. It never runs a query per table, so planning a federation of
/// hundreds of tables costs a handful of round trips.
///
/// What is read:
/// - tables of kind `r` and `p` (partitioned parents; partitions themselves are skipped), with their
///   `reloptions` as ``TableShape/storage`` and `reltuples` as ``TableShape/estimatedRows``;
/// - a partitioned parent's key (`pg_get_partkeydef`) as ``TableShape/partitioning``;
/// - columns (`format_type`, `attnotnull`, the `pg_get_expr` default; generated columns report their
///   generation expression there too, identity columns no default);
/// - PRIMARY KEY, UNIQUE, CHECK and FOREIGN KEY constraints (NOT NULL constraints are nullability,
///   already on ``ColumnShape/notNull``);
/// - indexes that do not back a primary key, unique or exclusion constraint;
/// - user triggers, with their function's name and source and `tgenabled` (whether they fire in
///   every session, only without `session_replication_role = replica`, only with it, or never), in a
///   fifth query.
///
/// Not read: key ordering (`DESC`, `NULLS FIRST`), collations and `INCLUDE` columns of indexes, FK
/// `ON UPDATE` and match type, exclusion constraints, policies and privileges.
///
/// The queries are separate statements, each with its own snapshot under READ COMMITTED, so a
/// concurrent DDL can fall between them: constraints and indexes are only read for the tables the
/// second query found, but a table altered in between may be seen half before, half after. Read in
/// a REPEATABLE READ transaction when that matters.
package struct CatalogReader {
    /// How many queries every read issues.
    package static let queryCount = 5

    /// The name that stands for the session's own temporary schema (`pg_my_temp_schema()`).
    package static let temporarySchema = "pg_temp"

    /// Reads `schemas` on `connection`, which may be inside an open transaction (temp tables created in
    /// it are visible). `pg_temp` in `schemas` is the session's temp schema; its tables are reported
    /// under the schema name `pg_temp`, and it counts as existing once the session has created a
    /// temporary object.
    ///
    /// - Returns: the shape and the number of queries issued (always ``queryCount``).
    package static func read(
        schemas: [String], on connection: PostgresConnection, logger: Logger
    ) async throws -> (shape: SchemaShape, queries: Int) {
        try await self.read(schemas: schemas, logger: logger) { query in
            do {
                return try await connection.query(query, logger: logger).collect()
            } catch {
                throw PhylacteryError.wrapping(error, doing: "Reading the catalog")
            }
        }
    }

    /// Reads `schemas` inside `transaction`; see ``read(schemas:on:logger:)``. A failing query marks
    /// the transaction aborted, as ``Transaction/query(_:file:line:)`` does.
    package static func read(schemas: [String], in transaction: Transaction) async throws -> (shape: SchemaShape, queries: Int) {
        try await self.read(schemas: schemas, logger: transaction.logger) { query in
            try await transaction.rows(query, doing: "Reading the catalog")
        }
    }

    private static func read(
        schemas: [String],
        logger: Logger,
        run: (PostgresQuery) async throws -> [PostgresRow]
    ) async throws -> (shape: SchemaShape, queries: Int) {
        var queries = 0
        // Each query binds one array as $1, which the first two use twice: hence SQL with explicit binds.
        func fetch(_ sql: String, binding values: some PostgresNonThrowingEncodable) async throws -> [PostgresRow] {
            queries += 1
            var binds = PostgresBindings(capacity: 1)
            binds.append(values)
            return try await run(PostgresQuery(unsafeSQL: sql, binds: binds))
        }

        var shape = SchemaShape()

        // 1. Schemas and extensions, as three arrays in one row.
        let head = try await fetch(Self.schemasAndExtensionsSQL, binding: schemas)
        if let row = head.first {
            let (existing, names, versions) = try row.decode(([String], [String], [String]).self)
            shape.schemas = Set(existing)
            shape.extensions = Dictionary(zip(names, versions), uniquingKeysWith: { first, _ in first })
        }

        // 2. Tables with their columns, one row each. Later queries are keyed by these oids, so all of
        // them describe the same tables.
        var builders: [Int64: TableBuilder] = [:]
        var order: [Int64] = []
        for row in try await fetch(Self.tablesSQL, binding: schemas) {
            let (oid, schema, name, options, tuples, names, types, notNulls, defaults, partitionKey) =
                try row.decode((Int64, String, String, [String]?, Double, [String], [String], [Bool], [String], String?).self)
            var builder = TableBuilder(name: QualifiedName(schema, name), storage: Self.options(options), estimatedRows: tuples)
            builder.partitioning = partitionKey
            for index in names.indices {
                builder.columns.append(ColumnShape(
                    name: names[index], type: types[index], notNull: notNulls[index],
                    defaultExpression: defaults[index].isEmpty ? nil : defaults[index]))
            }
            builders[oid] = builder
            order.append(oid)
        }

        // 3. Constraints: p, u, c, f.
        for row in try await fetch(Self.constraintsSQL, binding: order) {
            let (oid, name, kind, validated, columns, definition, targetSchema, targetName, targetColumns, deleteAction) =
                try row.decode((Int64, String, String, Bool, [String], String?, String?, String?, [String], String).self)
            guard builders[oid] != nil else { continue }
            switch kind {
            case "p":
                builders[oid]!.primaryKey = KeyShape(name: name, columns: columns)
            case "u":
                builders[oid]!.uniques.append(KeyShape(name: name, columns: columns))
            case "c":
                builders[oid]!.checks.append(CheckShape(name: name, definition: Self.withoutNotValid(definition ?? ""), validated: validated))
            case "f":
                builders[oid]!.foreignKeys.append(ForeignKeyShape(
                    name: name, columns: columns,
                    target: QualifiedName(targetSchema ?? "", targetName ?? ""), targetColumns: targetColumns,
                    onDelete: Self.action(deleteAction), validated: validated))
            default:
                break
            }
        }

        // 4. Indexes that back no constraint.
        for row in try await fetch(Self.indexesSQL, binding: order) {
            let (oid, name, method, isUnique, isValid, keys, operatorClasses, predicate, options) =
                try row.decode((Int64, String, String, Bool, Bool, [String], [String], String?, [String]?).self)
            builders[oid]?.indexes.append(IndexShape(
                name: name, method: method, isUnique: isUnique, keys: keys,
                // The query sends "" for a default operator class: arrays with NULLs do not decode.
                operatorClasses: operatorClasses.map { $0.isEmpty ? nil : $0 },
                predicate: predicate, parameters: Self.options(options), isValid: isValid))
        }

        // 5. Triggers and their functions.
        for row in try await fetch(Self.triggersSQL, binding: order) {
            let (oid, name, bits, functionSchema, functionName, body, enabled) = try row.decode((Int64, String, Int16, String, String, String, String).self)
            builders[oid]?.triggers.append(TriggerShape(
                name: name, typeBits: bits, function: QualifiedName(functionSchema, functionName), body: body,
                enabled: TriggerShape.Enabled(catalog: enabled)))
        }

        shape.tables = order.compactMap { builders[$0]?.shape }.sorted { $0.name < $1.name }
        logger.debug("read catalog", metadata: [
            "schemas": "\(schemas)", "tables": "\(shape.tables.count)", "queries": "\(queries)",
        ])
        return (shape, queries)
    }

    /// A table's parts, collected from several queries before the ``TableShape`` sorts them.
    private struct TableBuilder {
        var name: QualifiedName
        var storage: [String: String]
        var estimatedRows: Double
        var columns: [ColumnShape] = []
        var primaryKey: KeyShape?
        var uniques: [KeyShape] = []
        var checks: [CheckShape] = []
        var foreignKeys: [ForeignKeyShape] = []
        var indexes: [IndexShape] = []
        var partitioning: String?
        var triggers: [TriggerShape] = []

        var shape: TableShape {
            var shape = TableShape(
                name: self.name, columns: self.columns, primaryKey: self.primaryKey, uniques: self.uniques,
                checks: self.checks, foreignKeys: self.foreignKeys, indexes: self.indexes,
                storage: self.storage, estimatedRows: self.estimatedRows, triggers: self.triggers)
            shape.partitioning = self.partitioning
            return shape
        }
    }

    /// `reloptions` (`["fillfactor=70"]`) as a dictionary. Values may contain `=`; names cannot.
    static func options(_ options: [String]?) -> [String: String] {
        var result: [String: String] = [:]
        for option in options ?? [] {
            guard let equals = option.firstIndex(of: "=") else { continue }
            result[String(option[..<equals])] = String(option[option.index(after: equals)...])
        }
        return result
    }

    /// `pg_get_constraintdef` appends ` NOT VALID` to unvalidated constraints; validity is reported apart.
    static func withoutNotValid(_ definition: String) -> String {
        definition.hasSuffix(" NOT VALID") ? String(definition.dropLast(" NOT VALID".count)) : definition
    }

    /// `confdeltype` as SQL spells the action.
    static func action(_ code: String) -> String {
        switch code {
        case "r": return "RESTRICT"
        case "c": return "CASCADE"
        case "n": return "SET NULL"
        case "d": return "SET DEFAULT"
        default: return "NO ACTION"
        }
    }

    // MARK: - SQL

    // Names are cast to text, oids travel as int8 (PostgresNIO has no oid type), and arrays are kept
    // free of NULL elements: PostgresNIO refuses to decode an array that has any.

    /// $1: the asked schema names. Existing ones (the temp schema as `pg_temp`), extension names and versions.
    static let schemasAndExtensionsSQL = """
        SELECT
            ARRAY(SELECT n.nspname::text FROM pg_namespace n WHERE n.nspname = ANY($1::text[]))
                || ARRAY(SELECT 'pg_temp'::text WHERE pg_my_temp_schema() <> 0 AND 'pg_temp' = ANY($1::text[])),
            ARRAY(SELECT e.extname::text FROM pg_extension e ORDER BY e.extname),
            ARRAY(SELECT e.extversion FROM pg_extension e ORDER BY e.extname)
        """

    /// $1: the asked schema names. Ordinary and partitioned tables (not partitions), with their columns
    /// aggregated in `attnum` order: one row per table is far cheaper to decode than one per column.
    /// A missing default is sent as "" (no default expression prints empty).
    static let tablesSQL = """
        WITH wanted AS (
            SELECT n.oid, n.nspname::text AS name FROM pg_namespace n WHERE n.nspname = ANY($1::text[])
            UNION ALL
            SELECT pg_my_temp_schema(), 'pg_temp' WHERE pg_my_temp_schema() <> 0 AND 'pg_temp' = ANY($1::text[])
        )
        SELECT c.oid::int8, w.name, c.relname::text, c.reloptions::text[], c.reltuples::float8,
               COALESCE(col.names, '{}'), COALESCE(col.types, '{}'), COALESCE(col.not_nulls, '{}'), COALESCE(col.defaults, '{}'),
               CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END
        FROM pg_class c
        JOIN wanted w ON w.oid = c.relnamespace
        CROSS JOIN LATERAL (
            SELECT array_agg(a.attname::text ORDER BY a.attnum) AS names,
                   array_agg(format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum) AS types,
                   array_agg(a.attnotnull ORDER BY a.attnum) AS not_nulls,
                   array_agg(COALESCE(pg_get_expr(d.adbin, d.adrelid), '') ORDER BY a.attnum) AS defaults
            FROM pg_attribute a
            LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
            WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        ) col
        WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
        ORDER BY w.name, c.relname
        """

    /// $1: table oids. `conparentid = 0` drops the copies PostgreSQL makes of a foreign key for each
    /// partition of a partitioned referenced table; the parent constraint stands for them.
    static let constraintsSQL = """
        SELECT con.conrelid::int8, con.conname::text, con.contype::text, con.convalidated,
               ARRAY(SELECT a.attname::text
                     FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, position)
                     JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
                     ORDER BY k.position),
               CASE WHEN con.contype = 'c' THEN pg_get_constraintdef(con.oid) END,
               CASE WHEN tn.oid = pg_my_temp_schema() THEN 'pg_temp' ELSE tn.nspname::text END,
               tc.relname::text,
               ARRAY(SELECT a.attname::text
                     FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, position)
                     JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
                     ORDER BY k.position),
               con.confdeltype::text
        FROM pg_constraint con
        LEFT JOIN pg_class tc ON tc.oid = con.confrelid
        LEFT JOIN pg_namespace tn ON tn.oid = tc.relnamespace
        WHERE con.conrelid = ANY($1::int8[]::oid[]) AND con.contype IN ('p', 'u', 'c', 'f') AND con.conparentid = 0
        ORDER BY con.conrelid, con.conname
        """

    /// $1: table oids. `indkey` and `indclass` are 0-based vectors, `pg_get_indexdef` columns 1-based.
    /// A foreign key's `conindid` names the referenced table's index, hence the `contype` filter.
    static let indexesSQL = """
        SELECT i.indrelid::int8, ic.relname::text, am.amname::text, i.indisunique, i.indisvalid,
               ARRAY(SELECT CASE WHEN i.indkey[k] <> 0 THEN a.attname::text
                                 ELSE pg_get_indexdef(i.indexrelid, k + 1, true) END
                     FROM generate_series(0, i.indnkeyatts - 1) AS k
                     LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[k]
                     ORDER BY k),
               ARRAY(SELECT CASE WHEN o.opcdefault THEN '' ELSE o.opcname::text END
                     FROM generate_series(0, i.indnkeyatts - 1) AS k
                     JOIN pg_opclass o ON o.oid = i.indclass[k]
                     ORDER BY k),
               pg_get_expr(i.indpred, i.indrelid),
               ic.reloptions::text[]
        FROM pg_index i
        JOIN pg_class ic ON ic.oid = i.indexrelid
        JOIN pg_am am ON am.oid = ic.relam
        WHERE i.indrelid = ANY($1::int8[]::oid[])
          AND NOT EXISTS (
              SELECT 1 FROM pg_constraint con
              WHERE con.conrelid = i.indrelid AND con.conindid = i.indexrelid AND con.contype IN ('p', 'u', 'x'))
        ORDER BY i.indrelid, ic.relname
        """
}
