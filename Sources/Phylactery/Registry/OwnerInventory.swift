import PostgresNIO

/// What one owner (an extension's slug) has in the database: its rows in the ownership registry
/// and the tables they name, as the catalog shows them now. Export, import and purge start here;
/// it needs no federation, so the owner may be one that is no longer registered.
package struct OwnerInventory: Sendable {
    /// One live column.
    package struct Column: Sendable, Hashable, Codable {
        package var name: String
        /// The type as the server spells it (`format_type`), e.g. `timestamp with time zone`, `vector(384)`.
        package var type: String
        package var notNull: Bool

        package init(name: String, type: String, notNull: Bool) {
            self.name = name
            self.type = type
            self.notNull = notNull
        }
    }

    /// One table the owner's registry rows name.
    package struct Table: Sendable {
        /// The registry row.
        package var record: OwnershipRecord
        /// Whether the table exists now.
        package var exists: Bool
        /// Its columns in table order; generated columns left out (their values are computed).
        package var columns: [Column]
        /// Tables its foreign keys point at (other than itself).
        package var references: [QualifiedName]
        /// Foreign keys of other tables that point at it: `constraint on schema.table`.
        package var referencedBy: [(constraint: String, table: QualifiedName)]

        package var name: QualifiedName { self.record.tableName }
    }

    package var owner: String
    /// The owner's tables, each after the tables of the owner it references (parents first).
    package var tables: [Table]

    /// The owner's version as its registry rows record it (the newest when they differ).
    package var ownerVersion: String? { self.tables.map(\.record.ownerVersion).max() }

    /// True when the registry has no row for the owner.
    package var isEmpty: Bool { self.tables.isEmpty }

    /// Reads the owner's registry rows and its tables' shapes inside `tx`.
    ///
    /// Returns an empty inventory when the registry table does not exist yet (nothing was ever migrated).
    package static func read(owner: String, in tx: Transaction) async throws -> OwnerInventory {
        let registryExists = try await tx.rows("SELECT to_regclass('public.phylactery_registry') IS NOT NULL", doing: "Looking for the ownership registry")
            .first?.decode(Bool.self) ?? false
        guard registryExists else { return OwnerInventory(owner: owner, tables: []) }
        let records = try await MigrationBookkeeping.readRegistry(on: tx.connection, logger: tx.logger).filter { $0.owner == owner }
        var tables: [Table] = []
        for record in records {
            let qualified = record.tableName.sql
            let columns = try await tx.rows("""
                SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull
                FROM pg_attribute a
                WHERE a.attrelid = to_regclass(\(qualified)) AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
                ORDER BY a.attnum
                """, doing: "Reading the columns of \(record.tableName)").map {
                let (name, type, notNull) = try $0.decode((String, String, Bool).self)
                return Column(name: name, type: type, notNull: notNull)
            }
            let exists = try await tx.rows("SELECT to_regclass(\(qualified)) IS NOT NULL", doing: "Looking for \(record.tableName)")
                .first?.decode(Bool.self) ?? false
            var references: [QualifiedName] = []
            var referencedBy: [(constraint: String, table: QualifiedName)] = []
            if exists {
                references = try await tx.rows("""
                    SELECT DISTINCT n.nspname, c.relname FROM pg_constraint k
                    JOIN pg_class c ON c.oid = k.confrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE k.contype = 'f' AND k.conrelid = to_regclass(\(qualified)) AND k.confrelid <> k.conrelid
                    """, doing: "Reading the foreign keys of \(record.tableName)").map {
                    let (schema, name) = try $0.decode((String, String).self)
                    return QualifiedName(schema, name)
                }
                referencedBy = try await tx.rows("""
                    SELECT k.conname, n.nspname, c.relname FROM pg_constraint k
                    JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE k.contype = 'f' AND k.confrelid = to_regclass(\(qualified)) AND k.confrelid <> k.conrelid
                    ORDER BY 2, 3, 1
                    """, doing: "Reading what references \(record.tableName)").map {
                    let (constraint, schema, name) = try $0.decode((String, String, String).self)
                    return (constraint, QualifiedName(schema, name))
                }
            }
            tables.append(Table(record: record, exists: exists, columns: columns, references: references, referencedBy: referencedBy))
        }
        return OwnerInventory(owner: owner, tables: Self.parentsFirst(tables))
    }

    /// Orders tables so that each comes after the owner's tables it references; a cycle keeps the
    /// registry order for the tables in it.
    static func parentsFirst(_ tables: [Table]) -> [Table] {
        let names = Set(tables.map(\.name))
        var placed: Set<QualifiedName> = []
        var ordered: [Table] = []
        var remaining = tables
        while !remaining.isEmpty {
            let index = remaining.firstIndex { table in
                table.references.allSatisfy { !names.contains($0) || placed.contains($0) }
            } ?? remaining.startIndex
            let table = remaining.remove(at: index)
            placed.insert(table.name)
            ordered.append(table)
        }
        return ordered
    }
}
