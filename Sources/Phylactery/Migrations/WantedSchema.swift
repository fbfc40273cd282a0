import Foundation

/// What the federation asks of the database, as ``TableShape``s in PostgreSQL's own spelling.
///
/// Built in two steps: ``init(federation:)`` turns model descriptions into shapes, then
/// ``adoptSpelling(from:)`` takes the server's spelling of whatever a model wrote as free SQL
/// (explicit types, defaults, CHECK expressions, index expressions, predicates, operator classes,
/// storage parameters): ``canonicalizationSQL()`` creates look-alike temporary tables inside the
/// planning transaction, and the catalog read of them is handed back here.
/// The live catalog is read the same way, so a plan made twice never shows spelling differences.
package struct WantedSchema: Sendable {
    /// One model's table with what the planner needs besides its shape.
    package struct Table: Sendable {
        /// The shape in the server's spelling: what the live catalog is compared with.
        package var shape: TableShape
        /// The same shape as the model wrote it: what DDL is made from. The server's spelling is not
        /// always a fixed point (a CHECK over a varchar column prints differently once re-parsed), so
        /// creating from the model's own text is what makes the live catalog match `shape`.
        package var source: TableShape
        package var owner: String
        package var ownerVersion: String
        package var model: String
        /// Former table names (same schema).
        package var renamedFrom: [String]
        /// Former names per column.
        package var columnRenames: [String: [String]]
        /// Whether something in the table was written as free SQL and needs the server's spelling.
        var needsCanonicalSpelling: Bool
    }

    /// Tables in owner dependency order.
    package var tables: [Table]
    /// Owners present in the federation.
    package var owners: Set<String>
    /// Extensions compiled in but disabled: their tables are dormant, kept as they are.
    package var dormantOwners: Set<String> = []

    package init(federation: Federation) {
        var tables: [Table] = []
        for (owner, registration) in federation.models {
            tables.append(Self.table(for: registration.schema, owner: owner.slug, version: owner.version))
        }
        self.tables = tables
        self.owners = Set(federation.owners.map(\.slug))
        self.dormantOwners = Set(federation.dormant.map(\.slug))
    }

    package subscript(_ name: QualifiedName) -> Table? { self.tables.first { $0.shape.name == name } }

    static func table(for schema: ModelSchema, owner: String, version: String) -> Table {
        let name = QualifiedName(schema.chamber.schema, schema.table)
        var needsCanon = false
        let columns = schema.allColumns.map { column -> ColumnShape in
            if !Self.isCanonicalType(column.type.spelling) { needsCanon = true }
            if let expression = column.defaultSQL, expression != "now()" { needsCanon = true }
            return ColumnShape(name: column.name, type: column.type.spelling, notNull: !column.isNullable, defaultExpression: column.defaultSQL)
        }
        let checks = schema.allChecks.map { CheckShape(name: $0.name!, definition: "CHECK (\($0.expression))") }
        if !checks.isEmpty || !schema.storage.isEmpty { needsCanon = true }
        let indexes = schema.allIndexes.map { index -> IndexShape in
            if index.operatorClass != nil || index.predicate != nil || !index.parameters.isEmpty || index.columns.contains(where: IndexDescription.isExpression) {
                needsCanon = true
            }
            return IndexShape(
                name: index.name!, method: index.method.rawValue, isUnique: index.isUnique, keys: index.columns,
                operatorClasses: Array(repeating: index.operatorClass, count: index.columns.count),
                predicate: index.predicate, parameters: index.parameters
            )
        }
        let foreignKeys = schema.columns.compactMap { column -> ForeignKeyShape? in
            guard let reference = column.references else { return nil }
            return ForeignKeyShape(
                name: schema.foreignKeyName(for: column),
                columns: [column.name], target: QualifiedName(reference.chamber.schema, reference.table),
                targetColumns: [reference.column], onDelete: reference.onDelete.rawValue
            )
        }
        var shape = TableShape(
            name: name, columns: columns,
            primaryKey: KeyShape(name: "\(schema.table)_pkey", columns: TablePartitioning.primaryKeyColumns(for: schema)),
            uniques: schema.allUniqueConstraints.map { KeyShape(name: $0.name!, columns: $0.columns) },
            checks: checks, foreignKeys: foreignKeys, indexes: indexes, storage: schema.storage,
            triggers: schema.triggers.map { TriggerShape($0, table: name) }
        )
        shape.partitioning = schema.partitioning?.definition
        var renames: [String: [String]] = [:]
        for column in schema.columns where !column.renamedFrom.isEmpty { renames[column.name] = column.renamedFrom }
        return Table(shape: shape, source: shape, owner: owner, ownerVersion: version, model: schema.modelName, renamedFrom: schema.renamedFrom, columnRenames: renames, needsCanonicalSpelling: needsCanon)
    }

    static func isCanonicalType(_ spelling: String) -> Bool {
        if SQLType.canonicalSpellings.contains(spelling) { return true }
        for prefix in ["character varying(", "vector("] where spelling.hasPrefix(prefix) && spelling.hasSuffix(")") {
            return spelling.dropFirst(prefix.count).dropLast().allSatisfy(\.isNumber)
        }
        return false
    }

    // MARK: - The server's spelling

    /// The temporary look-alike of table `i`.
    static func scratchName(_ i: Int) -> String { "phylactery_canon_\(i)" }

    /// One `DO` block creating a temporary look-alike of every table that needs the server's spelling,
    /// or `nil` when none does. Run it inside the planning transaction (it is rolled back with it).
    package func canonicalizationSQL() -> String? {
        var statements: [String] = []
        for (i, table) in self.tables.enumerated() where table.needsCanonicalSpelling {
            let scratch = Self.scratchName(i)
            var shape = table.shape
            shape.name = QualifiedName("pg_temp", scratch)
            shape.primaryKey = nil
            shape.partitioning = nil  // spelling does not depend on it, and a plain scratch table is simpler
            shape.uniques = []
            shape.checks = shape.checks.enumerated().map { j, check in CheckShape(name: "\(scratch)_c\(j)", definition: check.definition) }
            statements.append(DDL.createTable(shape).replacingOccurrences(of: "CREATE TABLE", with: "CREATE TEMP TABLE") + " ON COMMIT DROP")
            for (j, index) in shape.indexes.enumerated() {
                var index = index
                index.name = "\(scratch)_i\(j)"
                statements.append(DDL.createIndex(index, on: shape, concurrently: false))
            }
        }
        guard !statements.isEmpty else { return nil }
        // A dollar-quote tag that cannot occur in model-provided SQL by accident.
        let tag = "$phylactery_\(UInt32.random(in: 0...UInt32.max))$"
        return "DO \(tag) BEGIN\n\(statements.map { $0 + ";" }.joined(separator: "\n"))\nEND \(tag)"
    }

    /// Replaces free-SQL spellings with what the server reported for the temporary look-alikes.
    package mutating func adoptSpelling(from scratch: SchemaShape) throws {
        for i in self.tables.indices where self.tables[i].needsCanonicalSpelling {
            let name = Self.scratchName(i)
            guard let spelled = scratch[QualifiedName("pg_temp", name)] else {
                throw PhylacteryError(.invalidModel, "model \(self.tables[i].model): the server did not report its scratch table \(name)")
            }
            var shape = self.tables[i].shape
            for c in shape.columns.indices {
                guard let column = spelled.column(shape.columns[c].name) else { continue }
                shape.columns[c].type = column.type
                shape.columns[c].defaultExpression = column.defaultExpression
            }
            let spelledChecks = Dictionary(uniqueKeysWithValues: spelled.checks.map { ($0.name, $0.definition) })
            let originalChecks = self.tables[i].shape.checks
            shape.checks = originalChecks.enumerated().map { j, check in
                CheckShape(name: check.name, definition: spelledChecks["\(name)_c\(j)"] ?? check.definition)
            }
            shape.storage = spelled.storage
            let spelledIndexes = Dictionary(uniqueKeysWithValues: spelled.indexes.map { ($0.name, $0) })
            shape.indexes = self.tables[i].shape.indexes.enumerated().map { j, index in
                guard let read = spelledIndexes["\(name)_i\(j)"] else { return index }
                var index = index
                index.keys = read.keys
                index.operatorClasses = read.operatorClasses
                index.predicate = read.predicate
                index.parameters = read.parameters
                return index
            }
            self.tables[i].shape = TableShape(
                name: shape.name, columns: shape.columns, primaryKey: shape.primaryKey, uniques: shape.uniques,
                checks: shape.checks, foreignKeys: shape.foreignKeys, indexes: shape.indexes, storage: shape.storage,
                triggers: shape.triggers
            )
            self.tables[i].shape.partitioning = shape.partitioning
        }
    }
}
