/// Replacing an index or a unique constraint whose definition changed (columns, operator class,
/// parameters, predicate) without a moment when the table has neither the old nor the new one.
///
/// On an ordinary table the new index is built `CONCURRENTLY` under a temporary name
/// (``DDL/replacementName(_:)``) while the old one keeps serving and enforcing; then one short
/// transaction (a `DO` block, so it is a single statement) drops the old one and gives the new one
/// its name — for a unique constraint, drops the old constraint and attaches the new index as the
/// constraint. A build that fails leaves the old index in place, and the migrator drops the invalid
/// half-built one. On a partitioned table PostgreSQL has no `CONCURRENTLY`: the same three steps
/// (build under the temporary name, drop, rename) run inside the migration's transaction.
extension MigrationPlanner {
    /// An index of the temporary name found in the catalog: left by a run that stopped between the
    /// build and the swap (or died during the build).
    enum Replacement {
        /// None is there: build one.
        case none
        /// A valid index that is what the model wants: only the swap is left.
        case built
        /// Something else (invalid, or built for another definition): dropped, then built again.
        case stale

        /// Judges `found` against the `wanted` definition (both in the server's spelling).
        init(found: IndexShape?, wanted: IndexShape) {
            guard let found else { self = .none; return }
            self = found.isValid && found.sameDefinition(as: wanted) ? .built : .stale
        }
    }

    /// Statements that replace index `old` by `new` (same name) on `table`; `found` says whether a
    /// replacement is already there.
    static func replaceIndex(_ old: IndexShape, with new: IndexShape, on table: TableShape, online: Bool, found: Replacement) -> [MigrationStatement] {
        let schema = table.name.schema
        var replacement = new
        replacement.name = DDL.replacementName(new.name)
        var statements: [MigrationStatement] = []
        guard online else {
            if found != .none { statements.append(MigrationStatement(DDL.dropIndex(replacement.name, schema: schema, concurrently: false))) }
            statements.append(MigrationStatement(DDL.createIndex(replacement, on: table, concurrently: false)))
            statements.append(MigrationStatement(DDL.dropIndex(old.name, schema: schema, concurrently: false)))
            statements.append(MigrationStatement(DDL.renameIndex(replacement.name, to: new.name, schema: schema)))
            return statements
        }
        if found != .built {
            if found == .stale { statements.append(MigrationStatement(DDL.dropIndex(replacement.name, schema: schema, concurrently: true), transactional: false)) }
            statements.append(DDL.buildIndexConcurrently(replacement, on: table))
        }
        statements.append(MigrationStatement(DDL.doBlock([
            DDL.dropIndex(old.name, schema: schema, concurrently: false),
            DDL.renameIndex(replacement.name, to: new.name, schema: schema),
        ]), transactional: false))
        return statements
    }

    /// The unique index a unique constraint on `columns` stands on, under `name`.
    static func uniqueIndex(_ name: String, columns: [String]) -> IndexShape {
        IndexShape(name: name, method: "btree", isUnique: true, keys: columns, operatorClasses: columns.map { _ in nil })
    }

    /// Statements that replace unique constraint `old` by `new` (same name) on `table`; `found` as in
    /// ``replaceIndex(_:with:on:online:found:)``.
    static func replaceUnique(_ old: KeyShape, with new: KeyShape, on table: TableShape, online: Bool, found: Replacement) -> [MigrationStatement] {
        let alter = "ALTER TABLE \(table.name.sql)"
        let temporary = DDL.replacementName(new.name)
        let columns = new.columns.map(DDL.q).joined(separator: ", ")
        guard online else {
            return [
                MigrationStatement("\(alter) ADD CONSTRAINT \(DDL.q(temporary)) UNIQUE (\(columns))"),
                MigrationStatement(DDL.dropConstraint(old.name, on: table.name)),
                MigrationStatement("\(alter) RENAME CONSTRAINT \(DDL.q(temporary)) TO \(DDL.q(new.name))"),
            ]
        }
        let index = Self.uniqueIndex(temporary, columns: new.columns)
        var statements: [MigrationStatement] = []
        if found != .built {
            if found == .stale { statements.append(MigrationStatement(DDL.dropIndex(temporary, schema: table.name.schema, concurrently: true), transactional: false)) }
            statements.append(DDL.buildIndexConcurrently(index, on: table))
        }
        // USING INDEX renames the index to the constraint's name.
        statements.append(MigrationStatement(DDL.doBlock([
            DDL.dropConstraint(old.name, on: table.name),
            "\(alter) ADD CONSTRAINT \(DDL.q(new.name)) UNIQUE USING INDEX \(DDL.q(temporary))",
        ]), transactional: false))
        return statements
    }
}

extension DDL {
    /// The temporary name a replacement for index or constraint `name` is built under:
    /// `<name>_phyl_new`, shortened with a stable hash to fit 63 bytes.
    static func replacementName(_ name: String) -> String {
        SQLNaming.constraintName(table: name, columns: ["phyl"], suffix: "new")
    }

    /// `CREATE INDEX CONCURRENTLY`, to run outside the transaction, naming the index it builds so a
    /// failed build's invalid index is dropped.
    static func buildIndexConcurrently(_ index: IndexShape, on table: TableShape) -> MigrationStatement {
        MigrationStatement(createIndex(index, on: table, concurrently: true), transactional: false,
                           buildsIndex: QualifiedName(table.name.schema, index.name).sql)
    }

    static func renameIndex(_ name: String, to newName: String, schema: String) -> String {
        "ALTER INDEX \(QualifiedName(schema, name).sql) RENAME TO \(q(newName))"
    }

    /// Several statements as one: a `DO` block runs them in one transaction even where each
    /// migration statement runs on its own (outside the migration's transaction).
    static func doBlock(_ statements: [String]) -> String {
        let body = statements.map { "    \($0);" }.joined(separator: "\n")
        var tag = "$phylactery$"
        while body.contains(tag) { tag = "$phylactery_\(UInt32.random(in: 0...UInt32.max))$" }
        return "DO \(tag)\nBEGIN\n\(body)\nEND\n\(tag)"
    }
}
