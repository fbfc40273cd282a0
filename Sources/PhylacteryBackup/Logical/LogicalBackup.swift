public import Foundation
import Logging
public import Phylactery
import PhylacteryEmbedded
import PostgresNIO

/// Logical backups of a Phylactery database with the installed `pg_dump` and `pg_restore`: one
/// custom-format archive per chamber, all taken from one snapshot, so a transaction that wrote into
/// several chambers is in every archive or in none.
///
/// ```swift
/// let backup = LogicalBackup(client: client, tools: try PostgresTools.locate(.fromEnvironment()))
/// let manifest = try await backup.backup(to: "/var/backups/phylactery-2026-11-29")
/// // later, into an empty database:
/// try await LogicalBackup(client: other, tools: tools).restore(from: "/var/backups/phylactery-2026-11-29")
/// ```
///
/// A backup is a directory: `public.dump`, `vectors.dump`, `traces.dump`, `queue.dump`,
/// `verbatim.dump` (the chambers the database has) and `manifest.json` (see
/// ``LogicalBackupManifest``). It works against any PostgreSQL ≥ 15 the client reaches, embedded
/// or external, as long as `pg_dump` is not older than the server. Each archive is also a plain
/// `pg_restore` input: `pg_restore -d DB public.dump` restores the `public` chamber by hand.
public struct LogicalBackup: Sendable {
    /// The database to back up, or to restore into.
    public let client: PhylacteryClient
    /// The `pg_dump` / `pg_restore` to run.
    public let tools: PostgresTools

    /// Backs up, or restores into, the database of `client` with the programs of `tools`.
    public init(client: PhylacteryClient, tools: PostgresTools) {
        self.client = client
        self.tools = tools
    }

    var url: DatabaseURL { self.client.configuration.url }

    // MARK: - Backup

    /// Dumps every chamber the database has into `directory`, verifies what was written (checksums
    /// and each archive's table of contents read back), and returns the manifest.
    ///
    /// The archives are written into a hidden sibling directory and moved into place once complete,
    /// so `directory` never holds half a backup.
    ///
    /// - Parameter directory: must not exist, or be empty. Created with mode 0700: a backup holds every row.
    /// - Throws: ``BackupError`` (`targetNotEmpty`, `toolTooOld`, `toolFailed`, `fileSystem`) or the
    ///   client's ``PhylacteryError`` when the database cannot be reached.
    @discardableResult
    public func backup(to directory: String) async throws -> LogicalBackupManifest {
        let target = BackupFiles.absolute(directory)
        try BackupFiles.requireEmptyOrMissing(target, what: "The backup directory")
        let staging = try BackupFiles.makeStagingDirectory(beside: target)
        do {
            let manifest = try await self.dump(into: staging)
            try BackupFiles.write(try manifest.encoded(), to: staging + "/" + LogicalBackupManifest.fileName)
            _ = try await Self.verify(staging, tools: self.tools)
            try BackupFiles.moveIntoPlace(staging, target)
            return manifest
        } catch {
            try? FileManager.default.removeItem(atPath: staging)
            throw error
        }
    }

    /// Runs one `pg_dump` per chamber inside a read-only REPEATABLE READ transaction whose snapshot
    /// every `pg_dump` adopts (`--snapshot`), so all archives show the same moment.
    private func dump(into staging: String) async throws -> LogicalBackupManifest {
        try await self.client.transaction(options: .init(isolationLevel: .repeatableRead, readOnly: true)) { tx in
            let rows = try await tx.query("SELECT current_setting('server_version'), current_database(), pg_export_snapshot(), (SELECT count(*) FROM pg_extension WHERE extname = 'vector')")
                .collect()
            guard let row = rows.first else {
                throw BackupError(.toolFailed, "The server did not report its version and a snapshot.")
            }
            let (serverVersion, database, snapshot, vectorCount) = try row.decode((String, String, String, Int).self)
            try self.tools.requireAtLeast(server: serverVersion, for: "pg_dump")
            let present = Set(try await tx.query("SELECT nspname FROM pg_namespace WHERE nspname = ANY(\(Chamber.allCases.map(\.schema)))")
                .collect().map { try $0.decode(String.self) })
            var archives: [LogicalBackupManifest.ChamberArchive] = []
            for chamber in Chamber.allCases where present.contains(chamber.schema) {
                let file = "\(chamber.schema).dump"
                let path = staging + "/" + file
                var arguments = [
                    "--format=custom", "--schema=\(chamber.schema)", "--snapshot=\(snapshot)",
                    "--no-password", "--lock-wait-timeout=60s", "--file=\(path)",
                ]
                // pgvector's types are used by every chamber; its CREATE EXTENSION travels with `public`.
                if chamber == .public && vectorCount > 0 { arguments.append("--extension=vector") }
                _ = try await self.tools.run("pg_dump", arguments, connectingTo: self.url, doing: "Dumping the \(chamber.schema) chamber")
                let contents = try await ArchiveContents.read(path, tools: self.tools)
                archives.append(.init(
                    chamber: chamber.schema, file: file, bytes: BackupFiles.size(path), sha256: try BackupFiles.sha256(path),
                    tables: contents.tables, entries: contents.entries.count))
            }
            return LogicalBackupManifest(
                format: LogicalBackupManifest.formatName, formatVersion: LogicalBackupManifest.currentVersion,
                createdAt: ManifestCoding.now(), database: database, serverVersion: serverVersion.split(separator: " ").first.map(String.init) ?? serverVersion,
                pgDumpVersion: self.tools.version, chambers: archives)
        }
    }

    // MARK: - Verify

    /// Reads a backup back: the manifest, every archive's size and SHA-256, and every archive's table
    /// of contents through `pg_restore --list` (which fails on a damaged archive).
    ///
    /// - Throws: ``BackupError/Code/invalidArchive`` naming the first thing that does not match.
    @discardableResult
    public static func verify(_ directory: String, tools: PostgresTools) async throws(BackupError) -> LogicalBackupManifest {
        let root = BackupFiles.absolute(directory)
        let manifestPath = root + "/" + LogicalBackupManifest.fileName
        guard let data = FileManager.default.contents(atPath: manifestPath) else {
            throw BackupError(.invalidArchive, "\(root) has no \(LogicalBackupManifest.fileName): it is not a logical backup, or its writing did not finish.")
        }
        let manifest: LogicalBackupManifest
        do {
            manifest = try LogicalBackupManifest.decode(data)
        } catch {
            throw BackupError(.invalidArchive, "\(manifestPath) cannot be read: \(error).")
        }
        guard manifest.format == LogicalBackupManifest.formatName else {
            throw BackupError(.invalidArchive, "\(manifestPath) describes a '\(manifest.format)', not a logical backup.")
        }
        guard manifest.formatVersion <= LogicalBackupManifest.currentVersion else {
            throw BackupError(.invalidArchive, "\(root) was written in backup format \(manifest.formatVersion), newer than this phylactery reads (\(LogicalBackupManifest.currentVersion)). Use a newer phylactery.")
        }
        guard tools.majorVersion >= PostgresTools.major(of: manifest.pgDumpVersion) else {
            throw BackupError(.toolTooOld, "The backup was written by pg_dump \(manifest.pgDumpVersion); pg_restore \(tools.version) (\(tools.binDirectory)) cannot read its archives. Use PostgreSQL \(PostgresTools.major(of: manifest.pgDumpVersion)) or newer binaries (--pg-bin / PHYLACTERY_PG_BIN).")
        }
        for archive in manifest.chambers {
            let path = root + "/" + archive.file
            guard FileManager.default.fileExists(atPath: path) else {
                throw BackupError(.invalidArchive, "\(path) is missing from the backup.")
            }
            let digest: String
            do { digest = try BackupFiles.sha256(path) } catch {
                throw BackupError(.invalidArchive, "\(path) cannot be read: \(error).")
            }
            guard BackupFiles.size(path) == archive.bytes, digest == archive.sha256 else {
                throw BackupError(.invalidArchive, "\(path) has changed since the backup was taken (SHA-256 \(digest.prefix(16))…, the manifest says \(archive.sha256.prefix(16))…). The backup is damaged; use another one.")
            }
            let contents = try await ArchiveContents.read(path, tools: tools)
            guard contents.entries.count == archive.entries else {
                throw BackupError(.invalidArchive, "\(path) lists \(contents.entries.count) entries, the manifest says \(archive.entries). The backup is damaged; use another one.")
            }
        }
        return manifest
    }

    // MARK: - Restore

    /// What ``restore(from:chambers:)`` restored.
    public struct RestoreOutcome: Sendable {
        /// The backup's manifest.
        public var manifest: LogicalBackupManifest
        /// The chambers restored, in order.
        public var chambers: [String]
        /// Tables restored (partitions included).
        public var tables: Int
    }

    /// Restores a backup into the client's database, which must hold nothing in the chambers being
    /// restored (empty chamber schemas, as a fresh client creates them, are fine).
    ///
    /// The backup is verified first. `pg_restore` then runs section by section over the chambers
    /// (`public` first: it carries pgvector): every chamber's tables and functions, then every
    /// chamber's rows, then indexes, constraints and triggers, so foreign keys between chambers
    /// and the facts' immutability triggers come after the rows. Each run is one transaction
    /// (`--single-transaction --exit-on-error`); a failure names the chamber and section, and the
    /// database is then dropped and the restore repeated. Objects are owned by the restoring user
    /// and no grants are restored (`--no-owner --no-privileges`), so a backup restores on a server
    /// with other roles.
    ///
    /// - Parameter chambers: restore only these (default: every chamber in the backup).
    /// - Throws: ``BackupError`` — `targetNotEmpty` naming what is in the way, `invalidArchive`,
    ///   `toolTooOld` (pg_restore older than the backup's pg_dump, or a server older than the one dumped).
    @discardableResult
    public func restore(from directory: String, chambers selected: Set<Chamber>? = nil) async throws -> RestoreOutcome {
        let root = BackupFiles.absolute(directory)
        let manifest = try await Self.verify(root, tools: self.tools)
        let wanted: Set<String>? = selected.map { Set($0.map(\.schema)) }
        let archives = manifest.chambers.filter { wanted?.contains($0.chamber) ?? true }
        let schemas = archives.map(\.chamber)
        let client = self.client
        let serverVersion = try await client.query("SELECT current_setting('server_version')").collect().first?.decode(String.self) ?? "0"
        let existingSchemas = Set(try await client.query("SELECT nspname FROM pg_namespace WHERE nspname = ANY(\(schemas))")
            .collect().map { try $0.decode(String.self) })
        // The extensions and functions the client's bootstrap creates in every database it uses.
        let bootstrapExtensions = Set(try await client.query("""
            SELECT extname::text FROM pg_extension WHERE extname = ANY(\([Chamber.vectorExtension, Chamber.trigramExtension]))
            """).collect().map { try $0.decode(String.self) })
        let bootstrapFunctions = Set(Chamber.bootstrapFunctions)
        // Anything in the chambers that is not part of an extension (pgvector's objects live in public).
        let inTheWay = try await client.query("""
            SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = ANY(\(schemas)) AND NOT EXISTS (
                SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
            UNION ALL
            SELECT n.nspname || '.' || p.proname || '()' FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = ANY(\(schemas)) AND NOT n.nspname || '.' || p.proname = ANY(\(Chamber.bootstrapFunctions)) AND NOT EXISTS (
                SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
            ORDER BY 1 LIMIT 6
            """).collect().map { try $0.decode(String.self) }
        let sourceMajor = PostgresTools.major(of: manifest.serverVersion)
        guard PostgresTools.major(of: serverVersion) >= sourceMajor else {
            throw BackupError(.toolTooOld, "The backup comes from PostgreSQL \(manifest.serverVersion) and the target server is PostgreSQL \(serverVersion.split(separator: " ").first ?? ""): a dump is only guaranteed to load into the same or a newer major version. Restore into PostgreSQL \(sourceMajor) or newer.")
        }
        guard inTheWay.isEmpty else {
            let shown = inTheWay.prefix(5).joined(separator: ", ") + (inTheWay.count > 5 ? ", …" : "")
            throw BackupError(.targetNotEmpty, "The database \(self.url.database) already holds objects in the chambers to restore (\(shown)). Restore into an empty database (createdb a new one and point PHYLACTERY_DATABASE_URL at it); nothing was changed.")
        }
        let scratch = try PostgresTools.privateDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        var lists: [String: String] = [:]
        for archive in archives {
            let contents = try await ArchiveContents.read(root + "/" + archive.file, tools: self.tools)
            // What a fresh database (or the client's bootstrap) already created is skipped, not failed on.
            let list = contents.listWithout(
                schemas: existingSchemas.intersection([archive.chamber]), extensions: bootstrapExtensions, functions: bootstrapFunctions)
            let listPath = scratch + "/\(archive.chamber).list"
            try BackupFiles.write(Data(list.utf8), to: listPath)
            lists[archive.chamber] = listPath
        }
        // Section by section over every chamber: all tables, then all rows, then indexes, constraints
        // and triggers, so a foreign key from one chamber into another finds its target.
        for section in ["pre-data", "data", "post-data"] {
            for archive in archives {
                _ = try await self.tools.run("pg_restore", [
                    "--dbname=" + Self.conninfo(database: self.url.database), "--section=\(section)",
                    "--single-transaction", "--exit-on-error", "--no-owner", "--no-privileges",
                    "--no-password", "--use-list=\(lists[archive.chamber]!)", root + "/" + archive.file,
                ], connectingTo: self.url, doing: "Restoring the \(archive.chamber) chamber (\(section))")
            }
        }
        let tables = archives.reduce(0) { $0 + $1.tables.count }
        return RestoreOutcome(manifest: manifest, chambers: schemas, tables: tables)
    }

    /// `dbname='…'` with libpq's quoting, so a database name is never read as connection options.
    static func conninfo(database: String) -> String {
        "dbname='" + database.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
    }
}
