import Foundation
public import Logging
public import PhylacteryEmbedded
import Phylactery
import PostgresNIO

/// Continuous archiving of the embedded server's WAL into the backup directory.
///
/// Without encryption the server's own `basic_archive` module copies each finished segment into
/// `DIR/wal`: it writes a temporary file, `fsync`s it, renames it into place, and refuses to
/// overwrite a segment already archived with other contents — so a crash never leaves half a segment
/// that looks whole. `summarize_wal = on` keeps the WAL summaries incremental backups are made from,
/// and `archive_timeout` forces a segment switch, so no committed work waits longer than that to be
/// archived.
///
/// With encryption WAL must never reach the backup directory in plain text, so the server runs an
/// `archive_command`: the `phylactery` executable (``BackupSettings/archiveHelper``, e.g.
/// `phylactery db archive-wal`), which deflates and seals the segment with the key installed in
/// `home/backup/wal.key` and publishes it with the same write–fsync–rename steps
/// (``WALArchive/push(segment:name:to:key:)``). This was chosen over archiving in plain into a
/// staging directory and encrypting later: the server itself still archives every segment within
/// `archive_timeout` with nothing else running, a failure counts in `pg_stat_archiver` exactly like a
/// `basic_archive` failure, and the server retries it by itself. The price is that the server's user
/// must be able to run the executable and read the key copy; ``configure(_:for:key:logger:)``
/// checks both before it changes anything.
///
/// Failures show in ``ArchiveStatus`` (`phylactery db status`), as a failed `phylactery doctor`
/// check once a segment has waited longer than `archive_timeout`, and in the metrics of
/// ``ArchiveMonitor``.
public enum WALArchiving {
    /// What ``configure(_:for:key:logger:)`` did.
    public struct Outcome: Sendable {
        /// The settings now in force.
        public var settings: BackupSettings
        /// The server runs but must be restarted before it archives (`archive_mode` changes only then).
        public var needsRestart: Bool
        /// Things the operator should know.
        public var notes: [String]
    }

    /// Sets up archiving for `server`'s home: creates the backup directory's `wal/` and `base/`,
    /// installs the key copy when encrypting, writes the settings and the server include, and reloads
    /// a running server.
    ///
    /// - Parameters:
    ///   - key: required when `settings.encrypted`; must be the key the directory's existing backups use.
    /// - Throws: ``BackupError`` when the directory, the helper or the key cannot be used; nothing is
    ///   changed then.
    @discardableResult
    public static func configure(
        _ settings: BackupSettings, for server: EmbeddedServer, key: BackupKey?, logger: Logger = Logger(label: "phylactery.backup")
    ) async throws(BackupError) -> Outcome {
        let access = ServerAccess(server, logger: logger)
        let home = BackupHome(server.configuration)
        var notes: [String] = []
        try validate(settings, server: server, key: key)
        if settings.directory.hasPrefix(server.configuration.home + "/") {
            notes.append("the backup directory is inside the home, on the same disk as the data: it does not survive that disk; prefer another drive")
        }
        let crypt = Crypt(server: server, settings: settings, logger: logger)
        try crypt.requireConsistentEncryption(key: key)

        try access.createDirectory(settings.directory, forServer: false, mode: 0o711)
        try access.createDirectory(crypt.baseDirectory, forServer: false)
        try access.createDirectory(settings.walDirectory, forServer: true)
        guard access.serverUserCan("w", settings.walDirectory) else {
            throw BackupError(.fileSystem, "The server's user '\(server.configuration.serverUser)' cannot write to \(settings.walDirectory), so it could not archive WAL there. Give it that directory (chown \(server.configuration.serverUser) \(settings.walDirectory)), or choose another backup directory.")
        }
        try access.createDirectory(home.directory, forServer: false, mode: 0o711)
        if settings.encrypted, let key, let helper = settings.archiveHelper {
            guard access.serverUserCan("x", helper[0]) else {
                throw BackupError(.invalidArgument, "The server's user '\(server.configuration.serverUser)' cannot run \(helper[0]), which encrypts each WAL segment. Install phylactery where every user can run it (e.g. /usr/local/bin), or make the directories above it searchable.")
            }
            try installKey(key, for: server, logger: logger)
            notes.append("the server encrypts WAL with a copy of key \(key.id) in \(home.keyFile); keep your own copy of the key file away from this machine: without it no backup can be restored")
        } else {
            try? FileManager.default.removeItem(atPath: home.keyFile)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        do {
            try DurableFile.replace(home.settingsFile, with: try encoder.encode(settings))
        } catch let error as BackupError {
            throw error
        } catch {
            throw BackupError(.fileSystem, "Could not write \(home.settingsFile): \(error).")
        }
        try access.writeForServer(settings.serverSettings(keyFile: home.keyFile), to: home.archivingFile)

        guard case .running = server.pidFileState() else {
            return Outcome(settings: settings, needsRestart: false, notes: notes + ["archiving starts with the server (phylactery db start)"])
        }
        try await ensureReplicationAccess(server, logger: logger)
        let active = try await reload(server, expecting: settings, logger: logger)
        return Outcome(settings: settings, needsRestart: !active, notes: notes)
    }

    /// Stops archiving: removes the server include and the settings (the backup directory stays as
    /// it is). A running server stops archiving once restarted.
    public static func disable(for server: EmbeddedServer, logger: Logger = Logger(label: "phylactery.backup")) async throws(BackupError) -> Bool {
        let home = BackupHome(server.configuration)
        for path in [home.archivingFile, home.settingsFile, home.keyFile] { try? FileManager.default.removeItem(atPath: path) }
        guard case .running = server.pidFileState() else { return false }
        _ = try await ServerAccess(server, logger: logger).rows("SELECT pg_reload_conf()", doing: "Reloading the server's settings")
        return true
    }

    /// Puts the server's copy of `key` in `home/backup/wal.key` (mode 0400, the server's user's).
    static func installKey(_ key: BackupKey, for server: EmbeddedServer, logger: Logger) throws(BackupError) {
        let home = BackupHome(server.configuration)
        try? FileManager.default.removeItem(atPath: home.keyFile)
        try DurableFile.replace(home.keyFile, with: Data(key.bytes), mode: 0o400)
        try ServerAccess(server, logger: logger).giveToServer(home.keyFile)
    }

    static func validate(_ settings: BackupSettings, server: EmbeddedServer, key: BackupKey?) throws(BackupError) {
        guard settings.directory.hasPrefix("/") else {
            throw BackupError(.invalidArgument, "The backup directory must be an absolute path (got \(settings.directory)).")
        }
        let data = server.configuration.dataDirectory
        guard settings.directory != data, !settings.directory.hasPrefix(data + "/") else {
            throw BackupError(.invalidArgument, "The backup directory cannot be inside the data directory \(data): it would be backed up into itself and lost with it.")
        }
        guard settings.archiveTimeout >= .seconds(1), settings.archiveTimeout <= .seconds(86_400) else {
            throw BackupError(.invalidArgument, "The archive timeout must be between 1 second and 1 day (got \(settings.archiveTimeout)).")
        }
        if settings.encrypted {
            guard key != nil else {
                throw BackupError(.keyRequired, "Encrypted backups need a key file (--key-file KEY; make one with --new-key KEY).")
            }
            guard let helper = settings.archiveHelper, let program = helper.first, program.hasPrefix("/") else {
                throw BackupError(.invalidArgument, "Encrypted archiving needs the absolute path of the program that seals WAL segments (the phylactery executable).")
            }
        }
    }

    /// Makes sure the superuser may open replication connections to the running server (pg_basebackup
    /// needs one): ``EmbeddedServer/ensureReplicationAccess()``, which adds `local replication
    /// <superuser> trust` and `host replication <superuser> 127.0.0.1/32 scram-sha-256` to `pg_hba.conf`
    /// when missing and reloads. Base backups do this themselves; it is public for tools that run
    /// pg_basebackup directly.
    public static func ensureReplicationAccess(_ server: EmbeddedServer, logger: Logger = Logger(label: "phylactery.backup")) async throws(BackupError) {
        do {
            try await server.ensureReplicationAccess()
        } catch {
            throw BackupError(error.code == .fileSystem ? .fileSystem : .database, error.message)
        }
    }

    /// Reloads the server's settings and says whether it now archives as `settings` says.
    static func reload(_ server: EmbeddedServer, expecting settings: BackupSettings, logger: Logger) async throws(BackupError) -> Bool {
        let access = ServerAccess(server, logger: logger)
        _ = try await access.rows("SELECT pg_reload_conf()", doing: "Reloading the server's settings")
        let wanted = settings.encrypted ? "archive_command" : "archive_library"
        // The postmaster applies a reload asynchronously; wait (bounded) until the setting shows it.
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            let rows = try await access.rows("""
                SELECT current_setting('archive_mode'), current_setting(\(wanted)) <> '', current_setting('summarize_wal')
                """, doing: "Reading the archiving settings")
            if let row = rows.first, let (mode, set, summarize) = try? row.decode((String, Bool, String).self) {
                if set && summarize == "on" { return mode == "on" }
            }
            if ContinuousClock.now > deadline { return false }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    /// How archiving is doing on `server` now.
    public static func status(of server: EmbeddedServer, logger: Logger = Logger(label: "phylactery.backup")) async -> ArchiveStatus {
        var status = ArchiveStatus()
        do {
            status.settings = try BackupSettings.load(for: server)
        } catch {
            status.problem = error.message
        }
        guard case .running = server.pidFileState() else {
            status.problem = status.problem ?? "the server is not running"
            return status
        }
        do {
            let access = ServerAccess(server, logger: logger)
            let rows = try await access.rows("""
                SELECT current_setting('archive_mode'),
                       (SELECT pending_restart FROM pg_settings WHERE name = 'archive_mode'),
                       a.archived_count, a.last_archived_wal, a.last_archived_time,
                       a.failed_count, a.last_failed_wal, a.last_failed_time,
                       (SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'),
                       (SELECT min(modification) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'),
                       now()
                FROM pg_stat_archiver a
                """, doing: "Reading pg_stat_archiver")
            guard let row = rows.first else { return status }
            let (mode, pending, archived, lastArchived, lastArchivedAt, failed, lastFailed, lastFailedAt, waiting, oldest, now) =
                try row.decode((String, Bool, Int64, String?, Date?, Int64, String?, Date?, Int64, Date?, Date).self)
            status.archiveMode = mode
            status.pendingRestart = pending
            status.archivedCount = Int(archived)
            status.lastArchived = lastArchived
            status.lastArchivedAt = lastArchivedAt
            status.failedCount = Int(failed)
            status.lastFailed = lastFailed
            status.lastFailedAt = lastFailedAt
            status.waitingSegments = Int(waiting)
            status.oldestWaitingSince = oldest
            status.checkedAt = now
        } catch {
            status.problem = (error as? BackupError)?.message ?? String(describing: error)
        }
        return status
    }
}
