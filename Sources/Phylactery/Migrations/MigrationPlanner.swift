package import PostgresNIO

/// Compares the federation's tables with the live catalog and orders the differences into steps.
///
/// Rules: only objects a registered owner declares (now, or in its last recorded revision) are
/// changed; anything else found in a chamber is reported in ``MigrationPlan/notices`` and left
/// alone. Changes to existing tables are online-safe: indexes are built `CONCURRENTLY` outside
/// the transaction, new CHECKs and foreign keys are added `NOT VALID` and validated afterwards,
/// unique constraints are attached to a concurrently built index. A changed index or unique
/// constraint is built under a temporary name and swapped in (MigrationPlanner+Replace), and ones
/// the model no longer declares are dropped after the new ones exist, so a table is never without
/// its index or its uniqueness. A type change whose cast fails on stored values is refused with the
/// reason and the count (MigrationPlanner+Probes).
package struct MigrationPlanner {
    /// Runs a question about the stored data (is the table empty, are there NULLs, which values fail
    /// a cast) inside the planning transaction, which is rolled back afterwards. These are not
    /// catalog queries: they run only for the steps that need them.
    package typealias DataQuery = @Sendable (PostgresQuery) async throws -> [PostgresRow]

    let wanted: WantedSchema
    let actual: SchemaShape
    let registry: [OwnershipRecord]
    let query: DataQuery
    /// `actual.tables` by name: the plan looks every wanted table up once.
    private var live: [QualifiedName: TableShape]

    private var steps: [MigrationStep] = []
    var notices: [String] = []
    private var refusals: [String] = []

    // Step phases, in apply order.
    enum Phase {
        static let createSchema = 0, renameTable = 1, renameColumn = 2, dropForeignKey = 3, dropIndexOrConstraint = 4
        static let createTable = 5, alterColumn = 6, dropColumn = 7, addConstraint = 8, createIndex = 9
        /// Indexes and unique constraints the model no longer declares go once the new ones are
        /// built: a model that swaps one for another (new columns, so a new name) is never without both.
        static let dropSuperseded = 10
        static let dropTable = 11, record = 12
    }

    package init(wanted: WantedSchema, actual: SchemaShape, registry: [OwnershipRecord], query: @escaping DataQuery) {
        self.wanted = wanted
        self.actual = actual
        self.registry = registry
        self.query = query
        self.live = Dictionary(actual.tables.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// Builds the plan.
    package mutating func plan(catalogQueries: Int) async throws -> MigrationPlan {
        let wantedSchemas = Set(self.wanted.tables.map(\.shape.name.schema))
        for schema in wantedSchemas.sorted() where !self.actual.schemas.contains(schema) {
            self.add("create schema \(schema)", owner: Federation.coreSlug, Phase.createSchema,
                     up: ["CREATE SCHEMA IF NOT EXISTS \(DDL.q(schema))"], down: ["DROP SCHEMA IF EXISTS \(DDL.q(schema))"])
        }

        // Renames first, so that every table (and every foreign key pointing at a renamed table)
        // is compared under its new name.
        var consumed: Set<QualifiedName> = []
        var liveNames: [QualifiedName: QualifiedName] = [:]   // wanted name → name in the catalog now
        let wantedNames = Set(self.wanted.tables.map(\.shape.name))
        for table in self.wanted.tables where self.live[table.shape.name] == nil {
            for old in table.renamedFrom {
                let oldName = QualifiedName(table.shape.name.schema, old)
                guard let found = self.live[oldName], !wantedNames.contains(oldName), !consumed.contains(oldName) else { continue }
                consumed.insert(oldName)
                liveNames[table.shape.name] = oldName
                self.live[table.shape.name] = self.renameTable(found, to: table)
                self.live[oldName] = nil
                for (name, var other) in self.live {
                    other.foreignKeys = other.foreignKeys.map { var key = $0; if key.target == oldName { key.target = table.shape.name }; return key }
                    self.live[name] = other
                }
                break
            }
        }
        for table in self.wanted.tables {
            consumed.insert(table.shape.name)
            let catalogName = liveNames[table.shape.name] ?? table.shape.name
            if let record = self.registry.first(where: { $0.tableName == catalogName }), record.owner != table.owner {
                self.refusals.append("table \(catalogName) is recorded as owned by '\(record.owner)' (model \(record.model)); '\(table.owner)' (model \(table.model)) declares it too")
                continue
            }
            if let live = self.live[table.shape.name] {
                try await self.diff(table, live: live, catalogName: catalogName)
            } else {
                self.create(table)
            }
            self.recordOwnership(of: table)
        }

        // Tables found in a chamber that no current model declares.
        let present = Set(self.wanted.tables.map { "\($0.owner)/\($0.model)" })
        for live in self.actual.tables where !consumed.contains(live.name) {
            if live.name.schema == "public" && live.name.name.hasPrefix(MigrationBookkeeping.reservedPrefix) { continue }
            if let record = self.registry.first(where: { $0.tableName == live.name }) {
                if self.wanted.owners.contains(record.owner) {
                    // As it will be after any renames (its foreign keys may point at a renamed table).
                    self.drop(self.live[live.name] ?? live, owner: record.owner)
                } else if self.wanted.dormantOwners.contains(record.owner) {
                    self.notices.append("dormant table \(live.name): extension '\(record.owner)' (model \(record.model)) is disabled by the configuration; kept as it is")
                } else {
                    self.notices.append("orphaned table \(live.name): owner '\(record.owner)' (model \(record.model)) is no longer registered; left in place")
                }
            } else {
                self.notices.append("unknown table \(live.name): no registered owner declares it; left in place")
            }
        }
        for record in self.registry where self.wanted.owners.contains(record.owner) && !present.contains("\(record.owner)/\(record.model)") {
            self.add("forget model \(record.model) of \(record.owner)", owner: record.owner, Phase.record,
                     up: [MigrationBookkeeping.forgetStatement(owner: record.owner, model: record.model)],
                     down: [MigrationBookkeeping.recordStatement(record)])
        }

        let ordered = self.steps.enumerated().sorted { ($0.element.phase, $0.offset) < ($1.element.phase, $1.offset) }.map(\.element)
        return MigrationPlan(steps: ordered, notices: self.notices, refusals: self.refusals, catalogQueries: catalogQueries)
    }

    // MARK: - Steps

    mutating func add(
        _ summary: String, owner: String, _ phase: Int, up: [MigrationStatement], down: [MigrationStatement], hazards: Set<Hazard> = [], downHazards: Set<Hazard> = []
    ) {
        self.steps.append(MigrationStep(summary, owner: owner, phase: phase, up: up, down: down, hazards: hazards, downHazards: downHazards))
    }

    mutating func add(_ summary: String, owner: String, _ phase: Int, up: [String], down: [String], hazards: Set<Hazard> = [], downHazards: Set<Hazard> = []) {
        self.add(summary, owner: owner, phase, up: up.map { MigrationStatement($0) }, down: down.map { MigrationStatement($0) }, hazards: hazards, downHazards: downHazards)
    }

    private mutating func create(_ table: WantedSchema.Table) {
        let shape = table.source
        self.add("create table \(shape.name)", owner: table.owner, Phase.createTable,
                 up: [DDL.createTable(shape)], down: ["DROP TABLE IF EXISTS \(shape.name.sql)"], downHazards: [.dataLoss])
        for index in shape.indexes {
            self.add("create index \(index.name) on \(shape.name)", owner: table.owner, Phase.createIndex,
                     up: [DDL.createIndex(index, on: shape, concurrently: false)],
                     down: [DDL.dropIndex(index.name, schema: shape.name.schema, concurrently: false)])
        }
        for key in shape.foreignKeys {
            // The table is new and empty: the key is valid at once.
            self.add("add foreign key \(key.name) on \(shape.name) → \(key.target)", owner: table.owner, Phase.addConstraint,
                     up: [DDL.addForeignKey(key, on: shape.name, notValid: false)], down: [DDL.dropConstraint(key.name, on: shape.name)])
        }
        self.createTriggers(of: shape, owner: table.owner)
    }

    private mutating func drop(_ live: TableShape, owner: String) {
        for key in live.foreignKeys {
            self.add("drop foreign key \(key.name) on \(live.name)", owner: owner, Phase.dropForeignKey,
                     up: [DDL.dropConstraint(key.name, on: live.name)], down: [DDL.addForeignKey(key, on: live.name, notValid: false)])
        }
        var restore = [DDL.createTable(live)]
        restore += live.indexes.map { DDL.createIndex($0, on: live, concurrently: false) }
        restore += live.triggers.flatMap { [DDL.createTriggerFunction($0)] + DDL.createTrigger($0, on: live.name) }
        self.add("drop table \(live.name)", owner: owner, Phase.dropTable,
                 up: ["DROP TABLE \(live.name.sql)"] + live.triggers.map(DDL.dropTriggerFunction), down: restore, hazards: [.dataLoss])
    }

    /// Renames the table and the constraints and indexes named after it; returns the live shape as it will be.
    private mutating func renameTable(_ live: TableShape, to table: WantedSchema.Table) -> TableShape {
        let old = live.name, new = table.shape.name
        var up = ["ALTER TABLE \(old.sql) RENAME TO \(DDL.q(new.name))"]
        var down = ["ALTER TABLE \(new.sql) RENAME TO \(DDL.q(old.name))"]
        var renamed = live
        renamed.name = new
        func newName(_ name: String) -> String? { Self.carriedName(name, from: old.name, to: new.name) }
        let constraints = ([live.primaryKey].compactMap { $0 }.map(\.name) + live.uniques.map(\.name) + live.checks.map(\.name) + live.foreignKeys.map(\.name))
        for name in constraints {
            guard let target = newName(name) else { continue }
            up.append("ALTER TABLE \(new.sql) RENAME CONSTRAINT \(DDL.q(name)) TO \(DDL.q(target))")
            down.insert("ALTER TABLE \(new.sql) RENAME CONSTRAINT \(DDL.q(target)) TO \(DDL.q(name))", at: 0)
        }
        for index in live.indexes {
            guard let target = newName(index.name) else { continue }
            up.append("ALTER INDEX \(QualifiedName(new.schema, index.name).sql) RENAME TO \(DDL.q(target))")
            down.insert("ALTER INDEX \(QualifiedName(new.schema, target).sql) RENAME TO \(DDL.q(index.name))", at: 0)
        }
        renamed.primaryKey = live.primaryKey.map { KeyShape(name: newName($0.name) ?? $0.name, columns: $0.columns) }
        renamed.uniques = live.uniques.map { KeyShape(name: newName($0.name) ?? $0.name, columns: $0.columns) }
        renamed.checks = live.checks.map { var c = $0; c.name = newName(c.name) ?? c.name; return c }
        renamed.foreignKeys = live.foreignKeys.map { var k = $0; k.name = newName(k.name) ?? k.name; return k }
        renamed.indexes = live.indexes.map { var i = $0; i.name = newName(i.name) ?? i.name; return i }
        self.add("rename table \(old) to \(new.name)", owner: table.owner, Phase.renameTable, up: up, down: down)
        return renamed
    }

    private func previousDeclaration(of table: WantedSchema.Table, liveName: QualifiedName) -> OwnershipRecord.Declared? {
        (self.registry.first { $0.owner == table.owner && $0.model == table.model }
            ?? self.registry.first { $0.tableName == liveName })?.declared
    }

    private mutating func recordOwnership(of table: WantedSchema.Table) {
        let record = OwnershipRecord(table)
        let previous = self.registry.first { $0.owner == table.owner && $0.model == table.model }
        guard previous != record else { return }
        self.add("record ownership of \(table.shape.name) (\(table.owner)/\(table.model))", owner: table.owner, Phase.record,
                 up: [MigrationBookkeeping.recordStatement(record)],
                 down: [previous.map(MigrationBookkeeping.recordStatement) ?? MigrationBookkeeping.forgetStatement(owner: table.owner, model: table.model)])
    }

    // MARK: - Existing tables

    /// Compares one table; `catalogName` is its name in the catalog now (before a planned rename),
    /// which is where the data questions are asked.
    private mutating func diff(_ table: WantedSchema.Table, live: TableShape, catalogName: QualifiedName) async throws {
        var live = live
        let want = table.shape
        let source = table.source
        let name = want.name
        let owner = table.owner
        var declared = self.previousDeclaration(of: table, liveName: catalogName)
        if catalogName != name, var renamed = declared {
            // Names the rename step carried over (`old_…` → `new_…`) are still the owner's.
            func carry(_ names: [String]) -> [String] {
                names.map { Self.carriedName($0, from: catalogName.name, to: name.name) ?? $0 }
            }
            renamed.indexes = carry(renamed.indexes)
            renamed.constraints = carry(renamed.constraints)
            declared = renamed
        }
        if live.partitioning != want.partitioning {
            self.refusals.append(Self.partitioningRefusal(name, from: live.partitioning, to: want.partitioning))
            return
        }
        // A partitioned table's indexes cannot be built CONCURRENTLY: they are built in the transaction.
        let online = live.partitioning == nil
        let alter = "ALTER TABLE \(name.sql)"
        var hasRows: Bool?
        func tableHasRows() async throws -> Bool {
            if let hasRows { return hasRows }
            let answer = try await self.exists("SELECT 1 FROM \(catalogName.sql)")
            hasRows = answer
            return answer
        }

        // Columns.
        var unmatched = Set(live.columns.map(\.name))
        var catalogColumn: [String: String] = [:]   // renamed column → its name in the catalog now
        for column in want.columns {
            var current = live.column(column.name)
            if current == nil, let old = table.columnRenames[column.name]?.first(where: { live.column($0) != nil && want.column($0) == nil && unmatched.contains($0) }) {
                self.add("rename column \(name).\(old) to \(column.name)", owner: owner, Phase.renameColumn,
                         up: ["\(alter) RENAME COLUMN \(DDL.q(old)) TO \(DDL.q(column.name))"],
                         down: ["\(alter) RENAME COLUMN \(DDL.q(column.name)) TO \(DDL.q(old))"])
                current = live.column(old)
                current?.name = column.name
                unmatched.remove(old)
                catalogColumn[column.name] = old
                live = Self.renamingColumn(old, to: column.name, in: live)
                live = self.renameObjectsNamedAfterColumn(old, to: column.name, in: live, wanted: want, owner: owner)
            }
            unmatched.remove(column.name)
            guard let current else {
                if column.notNull && column.defaultExpression == nil, try await tableHasRows() {
                    self.refusals.append("cannot add NOT NULL column \(name).\(column.name) without a default: the table has rows; declare a default or make the property optional")
                    continue
                }
                self.add("add column \(name).\(column.name)", owner: owner, Phase.alterColumn,
                         up: ["\(alter) ADD COLUMN \(DDL.columnDefinition(source.column(column.name) ?? column))"],
                         down: ["\(alter) DROP COLUMN IF EXISTS \(DDL.q(column.name))"],
                         hazards: Self.isVolatile(column.defaultExpression) ? [.tableRewrite] : [], downHazards: [.dataLoss])
                continue
            }
            let col = "\(alter) ALTER COLUMN \(DDL.q(column.name))"
            let written = source.column(column.name) ?? column
            if current.type != column.type {
                // A cast that fails on a stored row would fail the whole migration at apply: refused now, with the reason.
                if let failure = try await self.castFailures(of: catalogName, column: catalogColumn[column.name] ?? column.name, to: column.type) {
                    self.refusals.append("cannot change the type of \(name).\(column.name) from \(current.type) to \(column.type): \(failure.description); change or remove those values first, or keep the old type")
                } else {
                    self.add("change type of \(name).\(column.name) from \(current.type) to \(column.type)", owner: owner, Phase.alterColumn,
                             up: ["\(col) TYPE \(column.type) USING \(DDL.q(column.name))::\(column.type)"],
                             down: ["\(col) TYPE \(current.type) USING \(DDL.q(column.name))::\(current.type)"],
                             hazards: Self.typeChangeHazards(from: current.type, to: column.type),
                             downHazards: Self.typeChangeHazards(from: column.type, to: current.type))
                }
            }
            if current.defaultExpression != column.defaultExpression {
                let up = written.defaultExpression.map { "\(col) SET DEFAULT \($0)" } ?? "\(col) DROP DEFAULT"
                let down = current.defaultExpression.map { "\(col) SET DEFAULT \($0)" } ?? "\(col) DROP DEFAULT"
                self.add("\(column.defaultExpression == nil ? "drop" : "set") default of \(name).\(column.name)", owner: owner, Phase.alterColumn, up: [up], down: [down])
            }
            if current.notNull && !column.notNull {
                self.add("drop NOT NULL on \(name).\(column.name)", owner: owner, Phase.alterColumn,
                         up: ["\(col) DROP NOT NULL"], down: ["\(col) SET NOT NULL"])
            } else if !current.notNull && column.notNull {
                let hasNulls = try await self.exists("SELECT 1 FROM \(catalogName.sql) WHERE \(DDL.q(catalogColumn[column.name] ?? column.name)) IS NULL")
                if hasNulls, let fill = written.defaultExpression {
                    self.add("set NOT NULL on \(name).\(column.name), filling NULLs with its default", owner: owner, Phase.alterColumn,
                             up: ["UPDATE \(name.sql) SET \(DDL.q(column.name)) = \(fill) WHERE \(DDL.q(column.name)) IS NULL", "\(col) SET NOT NULL"],
                             down: ["\(col) DROP NOT NULL"], hazards: [.longLock])
                } else if hasNulls {
                    self.refusals.append("cannot set NOT NULL on \(name).\(column.name): rows hold NULL there and the column has no default to fill them with")
                } else {
                    self.add("set NOT NULL on \(name).\(column.name)", owner: owner, Phase.alterColumn,
                             up: ["\(col) SET NOT NULL"], down: ["\(col) DROP NOT NULL"],
                             hazards: try await tableHasRows() ? [.longLock] : [])
                }
            }
        }
        for column in live.columns where unmatched.contains(column.name) {
            if declared?.columns.contains(column.name) == true {
                self.add("drop column \(name).\(column.name)", owner: owner, Phase.dropColumn,
                         up: ["\(alter) DROP COLUMN \(DDL.q(column.name))"],
                         down: ["\(alter) ADD COLUMN \(DDL.columnDefinition(column))"], hazards: [.dataLoss])
            } else {
                self.notices.append("unknown column \(name).\(column.name): not declared by \(owner)/\(table.model); left in place")
            }
        }

        // Replacements (an index or unique constraint whose definition changed) are built under a
        // temporary name before the old one goes, then swapped in (see MigrationPlanner+Replace).
        // One built by a run that stopped before its swap is ours, not an unknown index: it is used
        // when it is what the model wants, else dropped.
        let replacementOf = Dictionary((want.uniques.map(\.name) + want.indexes.map(\.name)).map { (DDL.replacementName($0), $0) }, uniquingKeysWith: { first, _ in first })
        let built = Dictionary(live.indexes.compactMap { index in replacementOf[index.name].map { ($0, index) } }, uniquingKeysWith: { first, _ in first })
        live.indexes.removeAll { replacementOf[$0.name] != nil }
        var replaced: Set<String> = []
        for key in want.uniques where live.uniques.contains(where: { $0.name == key.name && !$0.sameDefinition(as: key) }) { replaced.insert(key.name) }
        for index in want.indexes where live.indexes.contains(where: { $0.name == index.name && !$0.validated.sameDefinition(as: index) }) { replaced.insert(index.name) }

        // Unique constraints: attached to an index built concurrently. An index of that name left by
        // an earlier attempt that failed half-way is attached when it is what we want, else rebuilt.
        // A partitioned table takes neither CONCURRENTLY nor USING INDEX: the constraint is added
        // directly there, inside the transaction.
        let uniqueNames = Set(want.uniques.map(\.name))
        let leftovers = Dictionary(live.indexes.filter { uniqueNames.contains($0.name) }.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.diffNamed(want.uniques, live.uniques, declared: declared?.constraints, what: "unique constraint", table: name, owner: owner,
            add: { key in
                guard online else {
                    return [MigrationStatement("\(alter) ADD CONSTRAINT \(DDL.q(key.name)) UNIQUE (\(key.columns.map(DDL.q).joined(separator: ", ")))")]
                }
                let index = Self.uniqueIndex(key.name, columns: key.columns)
                let attach = MigrationStatement("\(alter) ADD CONSTRAINT \(DDL.q(key.name)) UNIQUE USING INDEX \(DDL.q(key.name))", transactional: false)
                if let leftover = leftovers[key.name] {
                    if leftover.isValid && leftover.validated.sameDefinition(as: index) { return [attach] }
                    return [MigrationStatement(DDL.dropIndex(key.name, schema: name.schema, concurrently: true), transactional: false),
                            DDL.buildIndexConcurrently(index, on: source), attach]
                }
                return [DDL.buildIndexConcurrently(index, on: source), attach]
            },
            restore: { key in [MigrationStatement("\(alter) ADD CONSTRAINT \(DDL.q(key.name)) UNIQUE (\(key.columns.map(DDL.q).joined(separator: ", ")))")] },
            drop: { key in [MigrationStatement(DDL.dropConstraint(key.name, on: name), transactional: !online)] },
            dropPhase: Phase.dropSuperseded,
            replace: { old, new, undo in
                let found = undo ? Replacement.none : Replacement(found: built[new.name], wanted: Self.uniqueIndex(DDL.replacementName(new.name), columns: new.columns))
                return Self.replaceUnique(old, with: new, on: undo ? live : source, online: online, found: found)
            })

        // CHECK constraints: NOT VALID, then validated outside the transaction.
        self.diffNamed(want.checks, live.checks.map { var c = $0; c.validated = true; return c }, declared: declared?.constraints, what: "check", table: name, owner: owner,
            add: { check in [MigrationStatement(DDL.addCheck(source.checks.first { $0.name == check.name } ?? check, on: name, notValid: true)),
                             MigrationStatement(DDL.validate(check.name, on: name), transactional: false)] },
            restore: { check in [MigrationStatement(DDL.addCheck(check, on: name, notValid: false))] },
            drop: { check in [MigrationStatement(DDL.dropConstraint(check.name, on: name))] })
        for check in live.checks where !check.validated && want.checks.contains(where: { $0.name == check.name && $0.definition == check.definition }) {
            self.add("validate check \(check.name) on \(name)", owner: owner, Phase.addConstraint,
                     up: [MigrationStatement(DDL.validate(check.name, on: name), transactional: false)], down: [])
        }

        // Foreign keys: same, and dropped before anything else changes.
        self.diffNamed(want.foreignKeys, live.foreignKeys.map { var k = $0; k.validated = true; return k }, declared: declared?.constraints, what: "foreign key", table: name, owner: owner,
            add: { key in [MigrationStatement(DDL.addForeignKey(key, on: name, notValid: true)),
                           MigrationStatement(DDL.validate(key.name, on: name), transactional: false)] },
            restore: { key in [MigrationStatement(DDL.addForeignKey(key, on: name, notValid: false))] },
            drop: { key in [MigrationStatement(DDL.dropConstraint(key.name, on: name))] },
            dropPhase: Phase.dropForeignKey)
        for key in live.foreignKeys where !key.validated && want.foreignKeys.contains(where: { $0.name == key.name && Self.sameForeignKey($0, key) }) {
            self.add("validate foreign key \(key.name) on \(name)", owner: owner, Phase.addConstraint,
                     up: [MigrationStatement(DDL.validate(key.name, on: name), transactional: false)], down: [])
        }

        // Indexes: built concurrently (a failed build's invalid index is dropped by the migrator);
        // an invalid leftover of a build that was interrupted is rebuilt; a changed one is replaced.
        func build(_ index: IndexShape) -> MigrationStatement {
            let written = source.indexes.first { $0.name == index.name } ?? index
            return online ? DDL.buildIndexConcurrently(written, on: source) : MigrationStatement(DDL.createIndex(written, on: source, concurrently: false))
        }
        self.diffNamed(want.indexes, live.indexes.filter { !uniqueNames.contains($0.name) }.map(\.validated), declared: declared?.indexes, what: "index", table: name, owner: owner,
            add: { index in [build(index)] },
            restore: { index in [MigrationStatement(DDL.createIndex(index, on: live, concurrently: false))] },
            drop: { index in [MigrationStatement(DDL.dropIndex(index.name, schema: name.schema, concurrently: online), transactional: !online)] },
            dropPhase: Phase.dropSuperseded,
            replace: { old, new, undo in
                if undo { return Self.replaceIndex(old, with: new, on: live, online: online, found: .none) }
                let found = Replacement(found: built[new.name].map { var index = $0; index.name = new.name; return index }, wanted: new)
                return Self.replaceIndex(old, with: source.indexes.first { $0.name == new.name } ?? new, on: source, online: online, found: found)
            })
        for index in live.indexes where !index.isValid && !uniqueNames.contains(index.name) {
            if let wanted = want.indexes.first(where: { $0.name == index.name }), Self.sameIndex(wanted, index) {
                self.add("rebuild invalid index \(index.name) on \(name)", owner: owner, Phase.createIndex,
                         up: [MigrationStatement(DDL.dropIndex(index.name, schema: name.schema, concurrently: online), transactional: !online), build(wanted)],
                         down: [])
            }
        }
        // Replacements built earlier that no replacement uses any more.
        for (wantedName, leftover) in built.sorted(by: { $0.key < $1.key }) where !replaced.contains(wantedName) {
            self.add("drop leftover index \(leftover.name) on \(name) (built to replace \(wantedName))", owner: owner, Phase.dropIndexOrConstraint,
                     up: [MigrationStatement(DDL.dropIndex(leftover.name, schema: name.schema, concurrently: online), transactional: !online)], down: [])
        }

        self.diffTriggers(want: want, live: live, declared: declared?.triggers, owner: owner)

        // Storage parameters the owner declares (or declared last time).
        var set: [String: String] = [:], setBack: [String: String] = [:], reset: [String] = []
        for (key, value) in want.storage where live.storage[key] != value {
            set[key] = value
            if let old = live.storage[key] { setBack[key] = old } else { reset.append(key) }
        }
        var unset: [String] = []
        for key in live.storage.keys where want.storage[key] == nil && declared?.storage.contains(key) == true {
            unset.append(key)
            setBack[key] = live.storage[key]
        }
        if !set.isEmpty || !unset.isEmpty {
            var up: [String] = [], down: [String] = []
            if !set.isEmpty { up.append("\(alter) SET (\(DDL.storageList(set)))") }
            if !unset.isEmpty { up.append("\(alter) RESET (\(unset.sorted().joined(separator: ", ")))") }
            if !setBack.isEmpty { down.append("\(alter) SET (\(DDL.storageList(setBack)))") }
            if !reset.isEmpty { down.append("\(alter) RESET (\(reset.sorted().joined(separator: ", ")))") }
            self.add("set storage parameters of \(name)", owner: owner, Phase.alterColumn, up: up, down: down)
        }
    }

    /// Adds, replaces and drops named objects of one kind.
    private mutating func diffNamed<Object: Hashable>(
        _ wanted: [Object], _ live: [Object], declared: [String]?, what: String, table: QualifiedName, owner: String,
        add: (Object) -> [MigrationStatement], restore: (Object) -> [MigrationStatement], drop: (Object) -> [MigrationStatement],
        dropPhase: Int = Phase.dropIndexOrConstraint,
        replace: ((_ old: Object, _ new: Object, _ undo: Bool) -> [MigrationStatement])? = nil
    ) where Object: NamedObject {
        let addPhase = Object.self == IndexShape.self ? Phase.createIndex : Phase.addConstraint
        let liveByName = Dictionary(live.map { ($0.objectName, $0) }, uniquingKeysWith: { a, _ in a })
        let wantedNames = Set(wanted.map(\.objectName))
        for object in wanted {
            if let current = liveByName[object.objectName] {
                guard !current.sameDefinition(as: object) else { continue }
                if let replace {
                    // The new one is in place before the old one goes: no moment without either.
                    self.add("replace \(what) \(object.objectName) on \(table)", owner: owner, addPhase,
                             up: replace(current, object, false), down: replace(object, current, true))
                    continue
                }
                self.add("drop changed \(what) \(current.objectName) on \(table)", owner: owner, dropPhase, up: drop(current), down: restore(current))
            }
            self.add("add \(what) \(object.objectName) on \(table)", owner: owner, addPhase, up: add(object), down: drop(object))
        }
        for object in live where !wantedNames.contains(object.objectName) {
            if declared?.contains(object.objectName) == true {
                self.add("drop \(what) \(object.objectName) on \(table)", owner: owner, dropPhase, up: drop(object), down: restore(object))
            } else {
                self.notices.append("unknown \(what) \(object.objectName) on \(table): not declared by \(owner); left in place")
            }
        }
    }

    /// `old_pkey` → `new_pkey`: the name an index or constraint named after table `old` takes when the
    /// table becomes `new`, or `nil` when it is not named after the table.
    static func carriedName(_ name: String, from old: String, to new: String) -> String? {
        name.hasPrefix(old + "_") ? new + name.dropFirst(old.count) : nil
    }

    /// Indexes and constraints whose generated name follows a renamed column (`t_old_idx`) are
    /// renamed too when the model wants the new name (`t_new_idx`): a rename, not a rebuild.
    private mutating func renameObjectsNamedAfterColumn(_ old: String, to new: String, in table: TableShape, wanted: TableShape, owner: String) -> TableShape {
        var table = table
        let wantedNames = Set(wanted.indexes.map(\.name) + wanted.uniques.map(\.name) + wanted.checks.map(\.name) + wanted.foreignKeys.map(\.name))
        for suffix in ["idx", "key", "fkey", "check"] {
            let from = SQLNaming.constraintName(table: table.name.name, columns: [old], suffix: suffix)
            let to = SQLNaming.constraintName(table: table.name.name, columns: [new], suffix: suffix)
            guard wantedNames.contains(to) else { continue }
            if let i = table.indexes.firstIndex(where: { $0.name == from }) {
                table.indexes[i].name = to
                self.add("rename index \(from) to \(to)", owner: owner, Phase.renameColumn,
                         up: ["ALTER INDEX \(QualifiedName(table.name.schema, from).sql) RENAME TO \(DDL.q(to))"],
                         down: ["ALTER INDEX \(QualifiedName(table.name.schema, to).sql) RENAME TO \(DDL.q(from))"])
            } else if table.uniques.contains(where: { $0.name == from }) || table.checks.contains(where: { $0.name == from }) || table.foreignKeys.contains(where: { $0.name == from }) {
                table.uniques = table.uniques.map { $0.name == from ? KeyShape(name: to, columns: $0.columns) : $0 }
                table.checks = table.checks.map { var c = $0; if c.name == from { c.name = to }; return c }
                table.foreignKeys = table.foreignKeys.map { var k = $0; if k.name == from { k.name = to }; return k }
                self.add("rename constraint \(from) to \(to)", owner: owner, Phase.renameColumn,
                         up: ["ALTER TABLE \(table.name.sql) RENAME CONSTRAINT \(DDL.q(from)) TO \(DDL.q(to))"],
                         down: ["ALTER TABLE \(table.name.sql) RENAME CONSTRAINT \(DDL.q(to)) TO \(DDL.q(from))"])
            }
        }
        return table
    }

    /// The live table as it will be once column `old` is renamed: key lists follow the column, so
    /// indexes and constraints on it are not seen as changed (and their undo names the right column).
    static func renamingColumn(_ old: String, to new: String, in table: TableShape) -> TableShape {
        func rename(_ columns: [String]) -> [String] { columns.map { $0 == old ? new : $0 } }
        var table = table
        table.columns = table.columns.map { var column = $0; if column.name == old { column.name = new }; return column }
        table.primaryKey = table.primaryKey.map { KeyShape(name: $0.name, columns: rename($0.columns)) }
        table.uniques = table.uniques.map { KeyShape(name: $0.name, columns: rename($0.columns)) }
        table.foreignKeys = table.foreignKeys.map { var key = $0; key.columns = rename(key.columns); return key }
        table.indexes = table.indexes.map { var index = $0; index.keys = rename(index.keys); return index }
        return table
    }

    // MARK: - Judgements

    /// Why a table's partitioning is not migrated: PostgreSQL cannot partition, unpartition or
    /// re-key an existing table in place; it takes a new table and a copy of the rows.
    static func partitioningRefusal(_ name: QualifiedName, from live: String?, to wanted: String?) -> String {
        "cannot change the partitioning of \(name) from \(live.map { "PARTITION BY \($0)" } ?? "none") to \(wanted.map { "PARTITION BY \($0)" } ?? "none"): PostgreSQL cannot re-partition an existing table; create a new table (rename the model's table) and copy the rows"
    }

    static func isVolatile(_ expression: String?) -> Bool {
        guard let expression else { return false }
        return ["random(", "clock_timestamp(", "gen_random_uuid(", "uuidv7(", "uuidv4(", "nextval("].contains { expression.contains($0) }
    }

    /// Widening that PostgreSQL does without touching rows is safe; other widening rewrites the
    /// table; anything else may lose or reject values.
    static func typeChangeHazards(from old: String, to new: String) -> Set<Hazard> {
        func varcharLength(_ type: String) -> Int? {
            guard type.hasPrefix("character varying("), type.hasSuffix(")") else { return nil }
            return Int(type.dropFirst("character varying(".count).dropLast())
        }
        if let oldLength = varcharLength(old) {
            if new == "text" || new == "character varying" { return [] }
            if let newLength = varcharLength(new), newLength >= oldLength { return [] }
        }
        if old.hasPrefix("numeric(") && new == "numeric" { return [] }
        let widening: [String: Set<String>] = [
            "smallint": ["integer", "bigint", "numeric"], "integer": ["bigint", "numeric"], "bigint": ["numeric"],
            "real": ["double precision"],
        ]
        if widening[old]?.contains(new) == true { return [.tableRewrite] }
        return [.dataLoss, .tableRewrite]
    }

    static func sameForeignKey(_ a: ForeignKeyShape, _ b: ForeignKeyShape) -> Bool {
        a.columns == b.columns && a.target == b.target && a.targetColumns == b.targetColumns && a.onDelete == b.onDelete
    }

    static func sameIndex(_ a: IndexShape, _ b: IndexShape) -> Bool {
        a.method == b.method && a.isUnique == b.isUnique && a.keys == b.keys && a.operatorClasses == b.operatorClasses
            && a.predicate == b.predicate && a.parameters == b.parameters
    }
}

/// Constraints and indexes are matched by name, then compared by definition.
protocol NamedObject {
    var objectName: String { get }
    func sameDefinition(as other: Self) -> Bool
}

extension KeyShape: NamedObject {
    var objectName: String { self.name }
    func sameDefinition(as other: KeyShape) -> Bool { self.columns == other.columns }
}

extension CheckShape: NamedObject {
    var objectName: String { self.name }
    func sameDefinition(as other: CheckShape) -> Bool { self.definition == other.definition }
}

extension ForeignKeyShape: NamedObject {
    var objectName: String { self.name }
    func sameDefinition(as other: ForeignKeyShape) -> Bool { MigrationPlanner.sameForeignKey(self, other) }
}

extension IndexShape: NamedObject {
    var objectName: String { self.name }
    func sameDefinition(as other: IndexShape) -> Bool { MigrationPlanner.sameIndex(self, other) }

    /// The same index marked valid: for comparing definitions, validity aside.
    var validated: IndexShape {
        var index = self
        index.isValid = true
        return index
    }
}
