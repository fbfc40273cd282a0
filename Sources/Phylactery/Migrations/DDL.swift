/// DDL text for the shapes: the planner's only source of SQL, so up and down read alike.
package enum DDL {
    static func q(_ name: String) -> String { SQLIdentifier.quote(name) }

    static func columnDefinition(_ column: ColumnShape) -> String {
        var sql = "\(q(column.name)) \(column.type)"
        if column.notNull { sql += " NOT NULL" }
        if let expression = column.defaultExpression { sql += " DEFAULT \(expression)" }
        return sql
    }

    /// `CREATE TABLE` with columns, primary key, unique and check constraints (foreign keys and
    /// indexes are separate statements so they can be ordered after every table exists).
    static func createTable(_ table: TableShape) -> String {
        var parts = table.columns.map { "    " + columnDefinition($0) }
        if let key = table.primaryKey {
            parts.append("    CONSTRAINT \(q(key.name)) PRIMARY KEY (\(key.columns.map(q).joined(separator: ", ")))")
        }
        for unique in table.uniques {
            parts.append("    CONSTRAINT \(q(unique.name)) UNIQUE (\(unique.columns.map(q).joined(separator: ", ")))")
        }
        for check in table.checks {
            parts.append("    CONSTRAINT \(q(check.name)) \(check.definition)")
        }
        var sql = "CREATE TABLE \(table.name.sql) (\n\(parts.joined(separator: ",\n"))\n)"
        if let partitioning = table.partitioning { sql += " PARTITION BY \(partitioning)" }
        if !table.storage.isEmpty { sql += " WITH (\(storageList(table.storage)))" }
        return sql
    }

    static func storageList(_ storage: [String: String]) -> String {
        storage.keys.sorted().map { "\($0) = \(storage[$0]!)" }.joined(separator: ", ")
    }

    static func createIndex(_ index: IndexShape, on table: TableShape, concurrently: Bool, schemaOverride: QualifiedName? = nil) -> String {
        let columnNames = Set(table.columns.map(\.name))
        let keys = zip(index.keys, index.operatorClasses).map { key, opclass -> String in
            var part = columnNames.contains(key) ? q(key) : (key.hasPrefix("(") ? key : "(\(key))")
            if let opclass { part += " \(opclass)" }
            return part
        }
        var sql = "CREATE \(index.isUnique ? "UNIQUE " : "")INDEX \(concurrently ? "CONCURRENTLY " : "")\(q(index.name)) ON \((schemaOverride ?? table.name).sql) USING \(index.method) (\(keys.joined(separator: ", ")))"
        if !index.parameters.isEmpty { sql += " WITH (\(storageList(index.parameters)))" }
        if let predicate = index.predicate { sql += " WHERE \(predicate)" }
        return sql
    }

    static func dropIndex(_ name: String, schema: String, concurrently: Bool) -> String {
        "DROP INDEX \(concurrently ? "CONCURRENTLY " : "")IF EXISTS \(QualifiedName(schema, name).sql)"
    }

    static func addForeignKey(_ key: ForeignKeyShape, on table: QualifiedName, notValid: Bool) -> String {
        "ALTER TABLE \(table.sql) ADD CONSTRAINT \(q(key.name)) FOREIGN KEY (\(key.columns.map(q).joined(separator: ", "))) REFERENCES \(key.target.sql) (\(key.targetColumns.map(q).joined(separator: ", "))) ON DELETE \(key.onDelete)\(notValid ? " NOT VALID" : "")"
    }

    static func addCheck(_ check: CheckShape, on table: QualifiedName, notValid: Bool) -> String {
        "ALTER TABLE \(table.sql) ADD CONSTRAINT \(q(check.name)) \(check.definition)\(notValid ? " NOT VALID" : "")"
    }

    static func dropConstraint(_ name: String, on table: QualifiedName) -> String {
        "ALTER TABLE \(table.sql) DROP CONSTRAINT IF EXISTS \(q(name))"
    }

    static func validate(_ name: String, on table: QualifiedName) -> String {
        "ALTER TABLE \(table.sql) VALIDATE CONSTRAINT \(q(name))"
    }
}
