public import Foundation
public import Phylactery
import PostgresNIO

extension ExtensionData {
    /// What keeps a purge from losing data by accident.
    public enum PurgeSafeguard: Sendable, Hashable {
        /// Export the owner's tables to this new file first, in the purge's own transaction, and drop
        /// them only once the file was written and read back.
        case exportTo(String)
        /// Drop without an export: the operator's explicit consent (`--without-export`).
        case withoutExport
    }

    /// What ``purge(_:federation:safeguard:)`` did.
    public struct PurgeOutcome: Sendable {
        /// The owner purged.
        public var owner: String
        /// Tables dropped (`schema.table`) with the rows each held.
        public var tables: [(table: String, rows: Int)]
        /// The export written first, if any.
        public var export: ExtensionExportManifest?
        /// SHA-256 of the export file, if any.
        public var exportSHA256: String?
        /// The ledger entry that records the purge (`migrate history` lists it).
        public var ledgerEntry: MigrationFile
        /// Whether the purge was also recorded as a fact (`core.extensions` / `<slug>.purged`);
        /// false when the database has no `verbatim.facts` table.
        public var recordedFact: Bool
    }

    /// The fact namespace purges are recorded in.
    public static let factNamespace = "core.extensions"

    /// Drops the tables of an owner that is no longer registered, and its registry rows.
    ///
    /// Everything happens in one transaction that holds the migration lock: the owner's tables are
    /// locked against writers, exported (``PurgeSafeguard/exportTo(_:)``) and the export read back
    /// from disk and checked against the rows still in the tables, then the tables are dropped
    /// (never `CASCADE`: a foreign key of another owner pointing at one refuses the purge), the
    /// registry rows removed, and the purge recorded — as a ledger entry whose up SQL is the drops,
    /// and as the fact `core.extensions` / `<slug>.purged` (a new version on every purge of that slug).
    ///
    /// - Warning: the tables' rows are gone once this returns. Keep the export.
    /// - Throws: ``BackupError/Code/ownerRegistration`` when `owner` is registered in `federation`
    ///   (or is the core); ``BackupError/Code/ownerUnknown`` when the database has nothing of it.
    ///   Nothing is changed by a refusal or a failure.
    @discardableResult
    public func purge(_ owner: String, federation: Federation, safeguard: PurgeSafeguard) async throws -> PurgeOutcome {
        guard owner != Federation.coreSlug, federation.owner(owner) == nil else {
            throw BackupError(.ownerRegistration, "'\(owner)' is registered in this federation: its tables are in use. Only the tables of an owner that is no longer registered (an uninstalled extension, listed as orphaned by `migrate status`) can be purged; nothing was changed.")
        }
        if case .exportTo(let path) = safeguard, FileManager.default.fileExists(atPath: BackupFiles.absolute(path)) {
            throw BackupError(.targetNotEmpty, "\(BackupFiles.absolute(path)) already exists. Choose a new file for the export; nothing was changed.")
        }
        // No retry: the export file is written inside the body.
        return try await self.client.transaction(options: .init(retry: .init(maximumAttempts: 1))) { tx in
            try await tx.holdMigrationLock()
            let inventory = try await OwnerInventory.read(owner: owner, in: tx)
            guard !inventory.isEmpty else { throw Self.unknown(owner, database: self.client.configuration.url.database) }
            try await tx.execute("SELECT set_config('lock_timeout', '30s', true)")
            var counts: [(table: String, rows: Int)] = []
            for table in inventory.tables where table.exists {
                try await tx.execute(PostgresQuery(unsafeSQL: "LOCK TABLE \(table.name.sql) IN ACCESS EXCLUSIVE MODE"))
                let rows = try await tx.rows(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(table.name.sql)"), doing: "Counting \(table.name)")
                    .first?.decode(Int.self) ?? 0
                counts.append((table.name.description, rows))
            }
            var export: ExtensionExportManifest?
            var digest: String?
            var exportPath: String?
            if case .exportTo(let path) = safeguard {
                let written = try await ExtensionArchive.write(inventory, in: tx, to: path)
                let reread = try ExtensionArchive.read(path)
                let expected = Dictionary(counts.map { ($0.table, $0.rows) }, uniquingKeysWith: { first, _ in first })
                guard reread == written, reread.tables.allSatisfy({ expected[$0.qualifiedName] == $0.rows }), reread.tables.count == counts.count else {
                    throw BackupError(.invalidArchive, "The export \(path) does not read back with every row of the tables; nothing was dropped.")
                }
                export = reread
                exportPath = BackupFiles.absolute(path)
                digest = try BackupFiles.sha256(exportPath!)
            }
            let rows = counts.reduce(0) { $0 + $1.rows }
            let message: String
            if let exportPath, let digest {
                message = "purge extension \(owner): \(counts.count) table(s), \(rows) row(s); exported to \(exportPath) (sha256 \(digest)), restore with `phylactery extension import`"
            } else {
                message = "purge extension \(owner): \(counts.count) table(s), \(rows) row(s); dropped without an export (--without-export)"
            }
            let entry = try await tx.dropOwnerTables(inventory, message: message)
            let recorded = try await Self.recordFact(in: tx, PurgeRecord(
                owner: owner, ownerVersion: inventory.ownerVersion,
                tables: counts.map { .init(table: $0.table, rows: $0.rows) },
                export: exportPath.map { .init(file: $0, sha256: digest ?? "") }, withoutExport: safeguard == .withoutExport,
                ledgerRevision: entry.revision))
            return PurgeOutcome(owner: owner, tables: counts, export: export, exportSHA256: digest, ledgerEntry: entry, recordedFact: recorded)
        }
    }

    /// The fact's value.
    struct PurgeRecord: Codable, Sendable {
        struct TableRows: Codable, Sendable { var table: String; var rows: Int }
        struct ExportFile: Codable, Sendable { var file: String; var sha256: String }
        var owner: String
        var ownerVersion: String?
        var tables: [TableRows]
        var export: ExportFile?
        var withoutExport: Bool
        var ledgerRevision: String
    }

    /// Records the purge as the fact `core.extensions` / `<slug>.purged`, when the facts chamber exists.
    private static func recordFact(in tx: Transaction, _ record: PurgeRecord) async throws -> Bool {
        let hasFacts = try await tx.rows("SELECT to_regclass('verbatim.facts') IS NOT NULL", doing: "Looking for the facts table")
            .first?.decode(Bool.self) ?? false
        guard hasFacts else { return false }
        let key = "\(record.owner).purged"
        if try await tx.facts.get(Self.factNamespace, key: key) != nil {
            try await tx.facts.supersede(Self.factNamespace, key: key, value: record, source: "phylactery extension purge")
        } else {
            try await tx.facts.put(Self.factNamespace, key: key, value: record, source: "phylactery extension purge")
        }
        return true
    }
}
