import Foundation
package import PostgresNIO

extension MigrationBookkeeping {
    /// The ledger row of an applied migration: what `Migrator` writes when it applies one, and what a
    /// purge writes to record the tables it dropped. Every value is a bind: a message or SQL text
    /// holding quotes, backslashes or any other character is stored exactly, whatever the session's
    /// string settings.
    package static func ledgerInsert(_ file: MigrationFile, text: String, source: String) -> PostgresQuery {
        let downText = MigrationFile.render(section: "down", file.down).joined(separator: "\n")
        let upText = MigrationFile.render(section: "up", file.up).joined(separator: "\n")
        return """
            INSERT INTO public.phylactery_migrations (revision, parent, message, up_sql, down_sql, checksum, source, text)
            VALUES (\(file.revision), \(file.parent), \(file.message), \(upText), \(downText), \(MigrationFile.checksum(of: text)), \(source), \(text))
            """
    }
}

extension Transaction {
    /// Waits for the migration advisory lock and holds it until this transaction ends, so no
    /// migration plans or applies while the caller changes what the registry records.
    ///
    /// The lock is polled (`pg_try_advisory_xact_lock`) rather than waited for in one statement, for
    /// the reason ``Migrator`` polls: a statement blocked on the lock holds a snapshot that a
    /// migration's `CREATE INDEX CONCURRENTLY` would wait for, and the two would deadlock.
    ///
    /// - Throws: ``PhylacteryError/Code/migrationRefused`` when a migration holds it longer than `timeout`.
    package func holdMigrationLock(timeout: Duration = .seconds(120)) async throws {
        let deadline = ContinuousClock.now + timeout
        var pause = Duration.milliseconds(50)
        while true {
            let taken = try await self.rows("SELECT pg_try_advisory_xact_lock(\(MigrationBookkeeping.advisoryLockKey))", doing: "Taking the migration lock")
                .first?.decode(Bool.self) ?? false
            if taken { return }
            guard ContinuousClock.now + pause < deadline else {
                throw PhylacteryError(.migrationRefused, "a migration has held the migration lock for more than \(timeout); try again once it finished")
            }
            try await Task.sleep(for: pause)
            pause = min(pause * 2, .milliseconds(500))
        }
    }

    /// Drops the owner's tables (children first, never `CASCADE`), removes its registry rows, and
    /// records both as an entry of the migration ledger (source `purge`) whose up SQL is the drops.
    /// Call it holding the migration lock (``holdMigrationLock(timeout:)``).
    ///
    /// - Parameter message: the ledger entry's message (what `migrate history` shows).
    /// - Returns: the ledger entry.
    /// - Throws: ``PhylacteryError/Code/migrationRefused`` when another owner's foreign key points at
    ///   one of the tables (nothing is dropped then).
    @discardableResult
    package func dropOwnerTables(_ inventory: OwnerInventory, message: String) async throws -> MigrationFile {
        let owned = Set(inventory.tables.map(\.name))
        for table in inventory.tables {
            if let outside = table.referencedBy.first(where: { !owned.contains($0.table) }) {
                throw PhylacteryError(.migrationRefused, "\(table.name) of '\(inventory.owner)' is referenced by \(outside.constraint) on \(outside.table); drop that foreign key (or its owner's table) first. Nothing was dropped")
            }
        }
        let drops = inventory.tables.reversed().filter(\.exists).map { table in
            MigrationFile.Block(
                summary: "purge: drop table \(table.name)", owner: inventory.owner,
                statement: MigrationStatement("DROP TABLE \(table.name.sql)"), hazards: [.dataLoss])
        }
        let head = try await self.rows("SELECT revision FROM public.phylactery_migrations ORDER BY position DESC LIMIT 1", doing: "Reading the ledger's head")
            .first?.decode(String.self)
        let file = MigrationFile(revision: MigrationFile.newRevision(), parent: head, message: message.replacingOccurrences(of: "\n", with: " "), up: drops, down: [])
        for block in drops {
            try await self.execute(PostgresQuery(unsafeSQL: block.statement.sql))
        }
        try await self.execute("DELETE FROM public.phylactery_registry WHERE owner = \(inventory.owner)")
        try await self.execute(MigrationBookkeeping.ledgerInsert(file, text: file.text, source: "purge"))
        return file
    }
}
