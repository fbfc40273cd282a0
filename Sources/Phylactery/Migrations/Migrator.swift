public import Foundation
import Logging
import PostgresNIO
import Tracing

/// Plans, generates, applies and undoes migrations for a federation.
///
/// ```swift
/// let migrator = Migrator(client: client, federation: try Federation.standard(extensions: [Notebook()]))
/// let plan = try await migrator.plan()          // what the database needs now
/// try await migrator.auto()                     // apply it when every step is additive
/// ```
///
/// Applying holds a PostgreSQL advisory lock, so two processes migrating at once never apply
/// twice: the second waits, then finds nothing left to do. The transactional statements of a
/// migration and its ledger row commit together; statements PostgreSQL will not run in a
/// transaction (`CREATE INDEX CONCURRENTLY`, `VALIDATE CONSTRAINT`) run after, one by one. Every
/// statement runs with its own `lock_timeout` and `statement_timeout`.
public struct Migrator: Sendable {
    /// Timeouts and where migration files live.
    public struct Options: Sendable {
        /// The longest any statement waits for a lock before the migration gives up.
        public var lockTimeout: Duration
        /// The longest a transactional statement may run.
        public var statementTimeout: Duration
        /// The longest a statement outside the transaction (an index build) may run; `nil` means no limit.
        public var buildTimeout: Duration?
        /// The directory of migration files for `generate` and `up`.
        public var directory: String?

        public init(lockTimeout: Duration = .seconds(5), statementTimeout: Duration = .seconds(120), buildTimeout: Duration? = nil, directory: String? = nil) {
            self.lockTimeout = lockTimeout
            self.statementTimeout = statementTimeout
            self.buildTimeout = buildTimeout
            self.directory = directory
        }
    }

    /// A migration recorded as applied.
    public struct LedgerEntry: Sendable, Hashable, Codable {
        public var revision: String
        public var parent: String?
        public var message: String
        /// `file` for migrations applied from a file, `auto` for ones generated and applied at once.
        public var source: String
        public var checksum: String
        public var appliedAt: Date
        /// The migration's full text (up and down SQL).
        public var text: String
    }

    /// Where the database stands.
    public struct Status: Sendable {
        /// The last applied revision.
        public var head: String?
        /// Applied migrations, oldest first.
        public var applied: [LedgerEntry]
        /// Files not yet applied, in the order they would apply.
        public var pending: [MigrationFile]
        /// What the database still needs beyond the files (empty when it matches the models).
        public var plan: MigrationPlan
        /// Who owns which table, as recorded by the last applied migration.
        public var owners: [Ownership]
    }

    /// One row of the ownership registry.
    public struct Ownership: Sendable, Hashable, Codable {
        /// `core` or an extension slug.
        public var owner: String
        /// The owner's version when the model was last migrated.
        public var ownerVersion: String
        /// The model's Swift name.
        public var model: String
        /// `schema.table`.
        public var table: String
        /// Fingerprint of the table shape the model asked for.
        public var revision: String
        /// Whether the owner is part of this federation (false: its tables are orphaned, or dormant).
        public var isRegistered: Bool
        /// Whether the owner is an extension compiled in but disabled: its tables are dormant, kept as
        /// they are until it is enabled again.
        public var isDormant: Bool = false
    }

    public let client: PhylacteryClient
    public let federation: Federation
    public var options: Options

    public init(client: PhylacteryClient, federation: Federation, options: Options = Options()) {
        self.client = client
        self.federation = federation
        self.options = options
    }

    var logger: Logger { self.client.logger }

    // MARK: - Planning

    /// What the database needs now so that it matches the federation. Changes nothing in the
    /// chambers; creates the core's registry and ledger tables in `public` if they are missing.
    public func plan() async throws -> MigrationPlan {
        try await self.client.withConnection { connection in
            try await self.bootstrap(connection)
            return try await self.plan(on: connection)
        }
    }

    /// Plans on `connection` inside a transaction that is rolled back (the scratch tables that
    /// give free SQL the server's spelling go with it).
    func plan(on connection: PostgresConnection) async throws -> MigrationPlan {
        try await Self.traced("phylactery.migrate.plan") { span in
            let plan = try await self.planUntraced(on: connection)
            span.attributes["phylactery.migrate.steps"] = plan.steps.count
            span.attributes["phylactery.migrate.refusals"] = plan.refusals.count
            return plan
        }
    }

    private func planUntraced(on connection: PostgresConnection) async throws -> MigrationPlan {
        var wanted = WantedSchema(federation: self.federation)
        // One snapshot for every catalog query, so a concurrent change is seen whole or not at all.
        try await self.run("BEGIN ISOLATION LEVEL REPEATABLE READ", on: connection)
        do {
            if let scratch = wanted.canonicalizationSQL() {
                do {
                    try await self.run(scratch, on: connection)
                } catch {
                    throw PhylacteryError(.invalidModel, "the server refused a type, default, check or index written in a model: \(Self.serverMessage(error))", underlying: error)
                }
            }
            let schemas = Chamber.allCases.map(\.schema) + [CatalogReader.temporarySchema]
            let (catalog, catalogQueries) = try await CatalogReader.read(schemas: schemas, on: connection, logger: self.logger)
            try wanted.adoptSpelling(from: catalog)
            var live = catalog
            live.tables.removeAll { $0.name.schema == CatalogReader.temporarySchema }
            let registry = try await MigrationBookkeeping.readRegistry(on: connection, logger: self.logger)
            let logger = self.logger
            var planner = MigrationPlanner(wanted: wanted, actual: live, registry: registry) { query in
                try await connection.query(query, logger: logger).collect()
            }
            let plan = try await planner.plan(catalogQueries: catalogQueries + 1)
            try await self.run("ROLLBACK", on: connection)
            return plan
        } catch {
            await self.rollback(connection)
            throw error
        }
    }

    // MARK: - Files

    /// Writes the current plan as a migration file on top of the newest revision; `nil` when there is nothing to do.
    @discardableResult
    public func generate(message: String) async throws -> (file: MigrationFile, path: String)? {
        let directory = try self.requireDirectory()
        return try await self.client.withConnection { connection in
            try await self.bootstrap(connection)
            let applied = try await self.ledger(on: connection)
            let files = try self.loadFiles(directory)
            let pending = try self.pending(files: files, applied: applied)
            guard pending.isEmpty else {
                throw PhylacteryError(.migrationRefused, "\(pending.count) migration file(s) are not applied yet (\(pending.map(\.revision).joined(separator: ", "))); run `migrate up` before generating another")
            }
            let plan = try await self.plan(on: connection)
            guard plan.refusals.isEmpty else { throw Self.refused(plan) }
            guard !plan.steps.isEmpty else { return nil }
            let file = MigrationFile(plan: plan, parent: applied.last?.revision, message: message)
            let path = (directory as NSString).appendingPathComponent(file.fileName)
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try Data(file.text.utf8).write(to: URL(fileURLWithPath: path), options: .withoutOverwriting)
            return (file, path)
        }
    }

    /// Applies every pending migration file in order. Steps with hazards not in `consent` are refused before anything runs.
    @discardableResult
    public func up(allowing consent: Set<Hazard> = []) async throws -> [MigrationFile] {
        let directory = try self.requireDirectory()
        return try await self.withMigrationLock { connection in
            let applied = try await self.ledger(on: connection)
            let files = try self.loadFiles(directory)
            let pending = try self.pending(files: files, applied: applied)
            // The text as it is on disk (a reviewer may have added comments): what the ledger keeps and checksums.
            let texts = Dictionary(files.map { ($0.file.revision, $0.text) }, uniquingKeysWith: { first, _ in first })
            for file in pending {
                let missing = file.hazards.subtracting(consent)
                guard missing.isEmpty else {
                    throw Self.needsConsent(missing, steps: file.up.filter { !$0.hazards.isDisjoint(with: missing) }.map(\.summary), revision: file.revision)
                }
            }
            for file in pending {
                try await self.apply(file, text: texts[file.revision] ?? file.text, source: "file", on: connection)
            }
            return pending
        }
    }

    /// Plans and applies in one go when every step is additive: what a daemon does at start-up.
    /// Returns `nil` when the database already matched. A plan with hazards or refusals is refused
    /// whole, naming the steps (use `generate` and `up` with consent for those).
    @discardableResult
    public func auto(message: String = "automatic migration") async throws -> MigrationFile? {
        try await self.withMigrationLock { connection in
            let plan = try await self.plan(on: connection)
            guard plan.refusals.isEmpty else { throw Self.refused(plan) }
            guard !plan.steps.isEmpty else { return nil }
            guard plan.isAdditive else {
                throw Self.needsConsent(plan.hazards, steps: plan.steps.filter { !$0.hazards.isEmpty }.map(\.summary), revision: nil)
            }
            let applied = try await self.ledger(on: connection)
            let file = MigrationFile(plan: plan, parent: applied.last?.revision, message: message)
            try await self.apply(file, text: file.text, source: "auto", on: connection)
            return file
        }
    }

    /// Plans and applies at once with the given consent (the `--allow-…` flags of `migrate apply`).
    @discardableResult
    public func apply(message: String = "migration", allowing consent: Set<Hazard>) async throws -> MigrationFile? {
        try await self.withMigrationLock { connection in
            let plan = try await self.plan(on: connection)
            guard plan.refusals.isEmpty else { throw Self.refused(plan) }
            guard !plan.steps.isEmpty else { return nil }
            let missing = plan.hazards.subtracting(consent)
            guard missing.isEmpty else {
                throw Self.needsConsent(missing, steps: plan.steps.filter { !$0.hazards.isDisjoint(with: missing) }.map(\.summary), revision: nil)
            }
            let applied = try await self.ledger(on: connection)
            let file = MigrationFile(plan: plan, parent: applied.last?.revision, message: message)
            try await self.apply(file, text: file.text, source: "auto", on: connection)
            return file
        }
    }

    /// Undoes the last `count` applied migrations, newest first, with the down SQL recorded when they were applied.
    @discardableResult
    public func down(_ count: Int = 1, allowing consent: Set<Hazard> = []) async throws -> [MigrationFile] {
        try await self.withMigrationLock { connection in
            let applied = try await self.ledger(on: connection)
            let undo = Array(applied.suffix(max(0, count)).reversed())
            let files = try undo.map { try MigrationFile(parsing: $0.text, source: "ledger entry \($0.revision)") }
            for file in files {
                let missing = file.down.reduce(into: Set<Hazard>()) { $0.formUnion($1.hazards) }.subtracting(consent)
                guard missing.isEmpty else {
                    throw Self.needsConsent(missing, steps: file.down.filter { !$0.hazards.isDisjoint(with: missing) }.map(\.summary), revision: file.revision)
                }
            }
            for file in files {
                // Index drops outside the transaction come first: they undo the last things `up` did.
                for block in file.down where !block.statement.transactional {
                    do {
                        try await self.runOutside(block.statement, on: connection)
                    } catch {
                        throw Self.outsideFailure(error, block: block, "undoing migration \(file.revision): '\(block.summary)' failed")
                    }
                }
                try await self.inTransaction(on: connection) {
                    for block in file.down where block.statement.transactional {
                        try await self.runStatement(block.statement, on: connection)
                    }
                    try await self.run(query: "DELETE FROM public.phylactery_migrations WHERE revision = \(file.revision)", on: connection)
                }
            }
            return files
        }
    }

    /// Applied migrations, oldest first.
    public func history() async throws -> [LedgerEntry] {
        try await self.client.withConnection { connection in
            try await self.bootstrap(connection)
            return try await self.ledger(on: connection)
        }
    }

    /// Head, applied and pending migrations, and what the models still need.
    public func status() async throws -> Status {
        try await self.client.withConnection { connection in
            try await self.bootstrap(connection)
            let applied = try await self.ledger(on: connection)
            let pending = try self.options.directory.map { try self.pending(files: try self.loadFiles($0), applied: applied) } ?? []
            let plan = try await self.plan(on: connection)
            let registered = Set(self.federation.owners.map(\.slug))
            let dormant = Set(self.federation.dormant.map(\.slug))
            let owners = try await MigrationBookkeeping.readRegistry(on: connection, logger: self.logger).map {
                Ownership(owner: $0.owner, ownerVersion: $0.ownerVersion, model: $0.model, table: $0.tableName.description, revision: $0.revision,
                          isRegistered: registered.contains($0.owner), isDormant: dormant.contains($0.owner))
            }
            return Status(head: applied.last?.revision, applied: applied, pending: pending, plan: plan, owners: owners)
        }
    }

    // MARK: - Applying

    /// Applies `file` (parsed from `text`) and records `text` with its checksum in the ledger.
    private func apply(_ file: MigrationFile, text: String, source: String, on connection: PostgresConnection) async throws {
        try await Self.traced("phylactery.migrate.apply_revision") { span in
            span.attributes["phylactery.migrate.revision"] = file.revision
            span.attributes["phylactery.migrate.statements"] = file.up.count
            try await self.applyUntraced(file, text: text, source: source, on: connection)
        }
    }

    private func applyUntraced(_ file: MigrationFile, text: String, source: String, on connection: PostgresConnection) async throws {
        try await self.inTransaction(on: connection) {
            for block in file.up where block.statement.transactional {
                try await self.runStatement(block.statement, on: connection)
            }
            try await self.run(query: MigrationBookkeeping.ledgerInsert(file, text: text, source: source), on: connection)
        }
        for block in file.up where !block.statement.transactional {
            do {
                try await self.runOutside(block.statement, on: connection)
            } catch {
                throw Self.outsideFailure(error, block: block,
                    "migration \(file.revision): the transactional part committed, but '\(block.summary)' failed outside the transaction")
            }
        }
    }

    private func inTransaction(on connection: PostgresConnection, _ body: () async throws -> Void) async throws {
        try await self.run("BEGIN", on: connection)
        do {
            try await body()
            try await self.run("COMMIT", on: connection)
        } catch {
            await self.rollback(connection)
            throw error
        }
    }

    /// One statement inside the migration transaction, with its own timeouts.
    private func runStatement(_ statement: MigrationStatement, on connection: PostgresConnection) async throws {
        try await self.run("SET LOCAL lock_timeout = '\(Self.milliseconds(self.options.lockTimeout))ms'", on: connection)
        try await self.run("SET LOCAL statement_timeout = '\(Self.milliseconds(self.options.statementTimeout))ms'", on: connection)
        do {
            try await self.run(query: Self.query(statement), on: connection)
        } catch {
            throw PhylacteryError(.migrationFailed, "migration statement failed, nothing was applied: \(Self.serverMessage(error))", underlying: error, sql: statement.sql)
        }
    }

    /// One statement outside any transaction (index builds, validation), with its own timeouts.
    /// A concurrent index build that fails leaves its index invalid: it is dropped before the error
    /// is passed on, so no invalid index stays behind.
    private func runOutside(_ statement: MigrationStatement, on connection: PostgresConnection) async throws {
        do {
            try await self.withOutsideTimeouts(on: connection) {
                try await self.run(query: Self.query(statement), on: connection)
            }
        } catch {
            if let index = statement.buildsIndex {
                do {
                    try await self.dropIfInvalid(index: index, on: connection)
                } catch let cleanup {
                    throw BuildCleanupFailed(build: error, cleanup: cleanup, index: index)
                }
            }
            throw error
        }
    }

    /// The error for a statement outside the transaction that failed, saying what became of the index it was building.
    static func outsideFailure(_ error: any Error, block: MigrationFile.Block, _ what: String) -> PhylacteryError {
        var detail = Self.serverMessage(error)
        var underlying = error
        if let failed = error as? BuildCleanupFailed {
            detail = "\(Self.serverMessage(failed.build)); dropping the invalid index \(failed.index) it left failed too (\(Self.serverMessage(failed.cleanup)))"
            underlying = failed.build
        } else if let index = block.statement.buildsIndex {
            detail += " (no half-built \(index) is left behind; an index it replaces is untouched)"
        }
        return PhylacteryError(
            .migrationFailed,
            "\(what): \(detail). Run `migrate plan` to see what is left; `migrate auto` (or a new generated migration) finishes it",
            underlying: underlying, sql: block.statement.sql)
    }

    /// A concurrent build failed, and dropping the invalid index it left failed too (the next plan rebuilds or removes it).
    private struct BuildCleanupFailed: Error {
        var build: any Error
        var cleanup: any Error
        var index: String
    }

    /// Drops `index` (a quoted, schema-qualified name) when it exists and is invalid: what a failed
    /// `CREATE INDEX CONCURRENTLY` leaves. A valid index of that name is somebody's and stays.
    private func dropIfInvalid(index: String, on connection: PostgresConnection) async throws {
        let rows = try await connection.query(
            "SELECT NOT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass(\(index))", logger: self.logger
        ).collect()
        guard try rows.first?.decode(Bool.self) == true else { return }
        self.logger.warning("dropping the invalid index a failed concurrent build left", metadata: ["index": "\(index)"])
        try await self.withOutsideTimeouts(on: connection) {
            try await self.run("DROP INDEX CONCURRENTLY IF EXISTS \(index)", on: connection)
        }
    }

    /// Runs `body` with the migration's lock timeout and the build timeout set for the session, then resets them.
    ///
    /// Without a session (a transaction pooler, no session URL) each of these statements may run on
    /// another server session, and a session `SET` would stay behind for the pooler's other clients:
    /// `body` then runs under the server's own timeouts (`SET LOCAL` cannot help: these statements
    /// refuse to run in a transaction).
    private func withOutsideTimeouts(on connection: PostgresConnection, _ body: () async throws -> Void) async throws {
        if self.client.sessionFeatures?.sessionAvailable == false {
            try await body()
            return
        }
        try await self.run("SET lock_timeout = '\(Self.milliseconds(self.options.lockTimeout))ms'", on: connection)
        try await self.run("SET statement_timeout = '\(self.options.buildTimeout.map(Self.milliseconds) ?? 0)ms'", on: connection)
        do {
            try await body()
            try await self.run("RESET lock_timeout", on: connection)
            try await self.run("RESET statement_timeout", on: connection)
        } catch {
            try? await self.run("RESET lock_timeout", on: connection)
            try? await self.run("RESET statement_timeout", on: connection)
            throw error
        }
    }

    /// A statement's SQL with its parameters as text binds.
    static func query(_ statement: MigrationStatement) -> PostgresQuery {
        var binds = PostgresBindings(capacity: statement.parameters.count)
        for value in statement.parameters { binds.append(value) }
        return PostgresQuery(unsafeSQL: statement.sql, binds: binds)
    }

    /// Runs SQL text as it is (statements of the migrator's own, and migration statements without parameters).
    private func run(_ sql: String, on connection: PostgresConnection) async throws {
        try await self.run(query: PostgresQuery(unsafeSQL: sql), on: connection)
    }

    /// Runs a query whose interpolated values are binds.
    private func run(query: PostgresQuery, on connection: PostgresConnection) async throws {
        _ = try await connection.query(query, logger: self.logger).collect()
    }

    /// Runs `body` holding the migration advisory lock on one connection.
    ///
    /// The lock is taken with `pg_try_advisory_lock` in a polling loop rather than a blocking
    /// `pg_advisory_lock`: a session blocked in that call is a running statement with a snapshot,
    /// and `CREATE INDEX CONCURRENTLY` in the holder waits for every such snapshot — the two would
    /// deadlock. Polling leaves no statement in flight while waiting.
    ///
    /// The lock lives in the client's session connection (a pooled one, or one to the session URL
    /// behind a transaction pooler). Through a transaction pooler without a session URL a session lock
    /// would stay behind on whichever server session ran it, so the lock is then transaction-scoped
    /// instead (``withTransactionScopedLock(_:)``).
    private func withMigrationLock<R: Sendable>(function: String = #function, _ body: (PostgresConnection) async throws -> R) async throws -> R {
        try await Self.traced(Self.operationName(function)) { _ in
            try await self.client.prepare()
            if self.client.sessionFeatures?.sessionAvailable == false {
                return try await self.withTransactionScopedLock(body)
            }
            return try await self.client.withSessionConnection { connection in
                var pause = Duration.milliseconds(50)
                while true {
                    let rows = try await connection.query("SELECT pg_try_advisory_lock(\(MigrationBookkeeping.advisoryLockKey))", logger: self.logger).collect()
                    if try rows.first?.decode(Bool.self) == true { break }
                    try await Task.sleep(for: pause)
                    pause = min(pause * 2, .milliseconds(500))
                }
                do {
                    let result = try await self.whileLocked(on: connection, body)
                    try await self.unlock(connection)
                    return result
                } catch {
                    try? await self.unlock(connection)
                    throw error
                }
            }
        }
    }

    /// The migration lock without a session (a transaction pooler, no session URL): a transaction on a
    /// connection of its own (outside the pool, so a pool of one cannot deadlock) takes the lock as a
    /// transaction-scoped advisory lock (the same key, so it excludes session holders too) and stays
    /// open while `body` runs on a pooled connection; a transaction pooler keeps an open transaction on
    /// one server session, so the lock holds until the transaction ends — at the end of `body`, or when
    /// the connection dies. The open transaction holds no snapshot between statements (read
    /// committed), so concurrent index builds do not wait for it.
    private func withTransactionScopedLock<R: Sendable>(_ body: (PostgresConnection) async throws -> R) async throws -> R {
        try await self.client.withDirectConnection(to: self.client.configuration.url) { holder in
            var pause = Duration.milliseconds(50)
            while true {
                try await self.run("BEGIN", on: holder)
                let rows = try await holder.query("SELECT pg_try_advisory_xact_lock(\(MigrationBookkeeping.advisoryLockKey))", logger: self.logger).collect()
                if try rows.first?.decode(Bool.self) == true { break }
                await self.rollback(holder)
                try await Task.sleep(for: pause)
                pause = min(pause * 2, .milliseconds(500))
            }
            do {
                let result = try await self.client.withConnection { connection in
                    try await self.whileLocked(on: connection, body)
                }
                await self.rollback(holder)   // nothing was written in it: ending it releases the lock
                return result
            } catch {
                await self.rollback(holder)
                throw error
            }
        }
    }

    /// What runs under the migration lock: the bookkeeping tables, the memory layout upgrade, `body`.
    private func whileLocked<R: Sendable>(on connection: PostgresConnection, _ body: (PostgresConnection) async throws -> R) async throws -> R {
        try await self.bootstrap(connection)
        let upgradesMemories = self.upgradesMemoryLayout
        if upgradesMemories {
            try await MemoryLayoutUpgrade.finish(on: connection, logger: self.logger)   // one left half-done
            try await MemoryLayoutUpgrade.prepare(on: connection, logger: self.logger)
        }
        let result = try await body(connection)
        if upgradesMemories { try await MemoryLayoutUpgrade.finish(on: connection, logger: self.logger) }
        return result
    }

    /// Whether this federation holds the core's memories, whose tables ``MemoryLayoutUpgrade`` brings
    /// from the layout with one embedding per memory row to vectors per embedding space.
    var upgradesMemoryLayout: Bool {
        self.federation.owners.contains { owner in
            owner.slug == Federation.coreSlug && owner.models.contains { $0.schema.modelName == Memory.schema.modelName }
                && owner.models.contains { $0.schema.modelName == MemoryEmbedding.schema.modelName }
        }
    }

    /// Releases the migration lock; a connection that cannot release it is closed, which releases it too,
    /// rather than going back to the pool holding it.
    private func unlock(_ connection: PostgresConnection) async throws {
        do {
            try await self.run("SELECT pg_advisory_unlock(\(MigrationBookkeeping.advisoryLockKey))", on: connection)
        } catch {
            try? await connection.close()
            throw error
        }
    }

    /// Rolls back; a connection that cannot roll back is closed rather than returned to the pool mid-transaction.
    private func rollback(_ connection: PostgresConnection) async {
        do {
            try await self.run("ROLLBACK", on: connection)
        } catch {
            try? await connection.close()
        }
    }

    /// Creates the registry and ledger if missing; under a transaction-scoped advisory lock so concurrent first runs don't race.
    private func bootstrap(_ connection: PostgresConnection) async throws {
        try await self.inTransaction(on: connection) {
            try await self.run("SELECT pg_advisory_xact_lock(\(MigrationBookkeeping.advisoryLockKey + 1))", on: connection)
            try await MigrationBookkeeping.bootstrap(on: connection, logger: self.logger)
        }
    }

    // MARK: - Ledger and files

    func ledger(on connection: PostgresConnection) async throws -> [LedgerEntry] {
        let rows = try await connection.query(
            "SELECT revision, parent, message, source, checksum, applied_at, text FROM public.phylactery_migrations ORDER BY position",
            logger: self.logger
        ).collect()
        return try rows.map { row in
            let (revision, parent, message, source, checksum, appliedAt, text) = try row.decode((String, String?, String, String, String, Date, String).self)
            return LedgerEntry(revision: revision, parent: parent, message: message, source: source, checksum: checksum, appliedAt: appliedAt, text: text)
        }
    }

    private func requireDirectory() throws -> String {
        guard let directory = self.options.directory else {
            throw PhylacteryError(.invalidConfiguration, "no migrations directory is set (Migrator.Options.directory, or --directory)")
        }
        return directory
    }

    /// Every `*.sql` file in the directory, parsed.
    func loadFiles(_ directory: String) throws -> [(file: MigrationFile, checksum: String, path: String, text: String)] {
        guard FileManager.default.fileExists(atPath: directory) else { return [] }
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".sql") }.sorted()
        return try names.map { name in
            let path = (directory as NSString).appendingPathComponent(name)
            let text = try String(contentsOfFile: path, encoding: .utf8)
            return (try MigrationFile(parsing: text, source: name), MigrationFile.checksum(of: text), path, text)
        }
    }

    /// Checks the files against the ledger and returns the unapplied ones in chain order.
    func pending(files: [(file: MigrationFile, checksum: String, path: String, text: String)], applied: [LedgerEntry]) throws -> [MigrationFile] {
        let appliedByRevision = Dictionary(uniqueKeysWithValues: applied.map { ($0.revision, $0) })
        var byParent: [String: [(file: MigrationFile, path: String)]] = [:]
        for entry in files {
            if let ledger = appliedByRevision[entry.file.revision] {
                guard ledger.checksum == entry.checksum else {
                    throw PhylacteryError(.migrationRefused, "migration \(entry.file.revision) (\(entry.path)) was edited after it was applied: checksum \(entry.checksum.prefix(12)) differs from the applied \(ledger.checksum.prefix(12)). Restore the file or generate a new migration")
                }
            }
            byParent[entry.file.parent ?? "", default: []].append((entry.file, entry.path))
        }
        for (parent, children) in byParent where children.count > 1 {
            throw PhylacteryError(.migrationRefused, "two heads: \(children.map { "\($0.file.revision) (\($0.path))" }.joined(separator: " and ")) both follow \(parent.isEmpty ? "the start" : parent); regenerate one on top of the other")
        }
        var pending: [MigrationFile] = []
        var head = applied.last?.revision ?? ""
        while let next = byParent[head]?.first, appliedByRevision[next.file.revision] == nil || next.file.revision == head {
            pending.append(next.file)
            head = next.file.revision
        }
        // Walk the applied part of the chain too: a file following an applied revision other than the head is stranded.
        let unapplied = files.filter { appliedByRevision[$0.file.revision] == nil }.map(\.file.revision)
        let stranded = Set(unapplied).subtracting(pending.map(\.revision))
        if let lost = stranded.sorted().first, let file = files.first(where: { $0.file.revision == lost }) {
            throw PhylacteryError(.migrationRefused, "migration \(lost) (\(file.path)) follows \(file.file.parent ?? "the start"), but the database is at \(applied.last?.revision ?? "the start"); regenerate it on top of the current head")
        }
        return pending
    }

    // MARK: - Messages

    static func milliseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }

    static func serverMessage(_ error: any Error) -> String {
        if let error = error as? PSQLError, let message = error.serverInfo?[.message] { return message }
        if let error = error as? PhylacteryError { return error.message }
        return String(describing: error)
    }

    static func refused(_ plan: MigrationPlan) -> PhylacteryError {
        PhylacteryError(.migrationRefused, "the plan cannot be applied: " + plan.refusals.joined(separator: "; "))
    }

    static func needsConsent(_ hazards: Set<Hazard>, steps: [String], revision: String?) -> PhylacteryError {
        let flags = hazards.sorted().map { "--allow-\($0 == .dataLoss ? "destructive" : $0.rawValue)" }.joined(separator: " ")
        let what = revision.map { "migration \($0)" } ?? "the plan"
        return PhylacteryError(.migrationRefused, "\(what) has hazardous steps that need consent (\(flags)): \(steps.joined(separator: "; "))")
    }
}
