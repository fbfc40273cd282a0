import Foundation
import Logging
public import PhylacteryEmbedded
import Phylactery

/// Point-in-time restore of the whole cluster: builds a new data directory from a full backup and its
/// incrementals, replays archived WAL to the target, promotes it, checks it, and only then swaps it in
/// for the current data directory — which is kept aside as `data.previous-<time>` until
/// ``discardPrevious(of:)``.
///
/// The restore rule for a time `T` (`--at`): PostgreSQL replays WAL until the first commit record whose
/// time is after `T` (inclusive, the default: commits at exactly `T` stay) or at or after `T`
/// (`inclusive: false`), and stops there; a time target can only stop at a commit. Times are the
/// server's clock as recorded in the commit records, so take `T` from the server (`SELECT now()`,
/// `clock_timestamp()`). WAL comes from the archive and, when the current data directory still exists
/// and belongs to the same cluster, from its `pg_wal` too (the last segment is only archived once full,
/// at `archive_timeout`, or at a clean shutdown; after a crash it lives only there). When no commit
/// after `T` exists in that WAL, everything it holds is replayed, and the outcome's note says up to
/// which commit.
///
/// A restore refuses to run while the server runs on the data directory, or while a runtime or worker
/// holds the home (``EmbeddedServer/holdExclusiveUsage(for:)``).
public struct Restore: Sendable {
    let crypt: Crypt
    var server: EmbeddedServer { crypt.server }

    /// A restore from `crypt`'s backups into its server's home.
    public init(crypt: Crypt) { self.crypt = crypt }

    /// What a restore did; also written to `home/backup/reanimate.json` for ``Reanimation``.
    public struct Outcome: Codable, Sendable {
        /// What was asked for.
        public var target: String
        /// The backups combined, full first.
        public var chain: [String]
        /// The last transaction replayed (`nil` when the WAL held none after the backup).
        public var recoveredTo: RecoveryTime?
        /// The timeline the restored cluster continues on.
        public var timeline: UInt32
        /// Where the replaced data directory was moved (`nil` when there was none).
        public var previousDataDirectory: String?
        /// What was checked before the swap, one line each.
        public var checks: [String]
        /// Things the operator should know.
        public var notes: [String]
        /// The migration ledger's head in the restored cluster.
        public var migrationHead: String?
        /// When the restore started and ended (this machine's clock).
        public var startedAt: RecoveryTime
        /// See ``startedAt``.
        public var finishedAt: RecoveryTime
    }

    /// Restores to `target`.
    ///
    /// - Parameters:
    ///   - key: the key of encrypted backups (default: the server's copy in the home, if present).
    ///   - usingCurrentWAL: also replay WAL left in the current data directory's `pg_wal` (default on;
    ///     ignored for `.backup`).
    /// - Throws: ``BackupError`` — nothing is swapped in unless every step and check passed.
    public func run(
        to target: RestoreTarget, key explicit: BackupKey? = nil, usingCurrentWAL: Bool = true, progress: @escaping BackupProgress = { _ in }
    ) async throws(BackupError) -> Outcome {
        let started = RecoveryTime(Date())
        let usage: EmbeddedServer.UsageLease
        do {
            usage = try server.holdExclusiveUsage(for: "restoring")
        } catch {
            throw BackupError(.serverState, error.message)
        }
        defer { usage.release() }
        if case .running(let pid, _) = server.pidFileState() {
            throw BackupError(.serverState, "The server (pid \(pid)) is running on \(server.configuration.dataDirectory); a restore replaces that directory. Stop it first: phylactery db stop (and stop the daemon or worker using it).")
        }
        let tools = try PostgresTools.forPhysicalBackups(of: server)
        let catalog = try crypt.catalog()
        let encrypted = catalog.backups.contains(where: \.isEncrypted) || crypt.settings.encrypted
        let key = encrypted ? try crypt.key(explicit) : nil
        var work = RestoreWorkspace(crypt: crypt, tools: tools, key: key, progress: progress)
        try work.create()
        var keepWorkspace = false
        defer { if !keepWorkspace { work.remove() } }
        do throws(BackupError) {
            var outcome = try await work.restore(catalog: catalog, target: target, usingCurrentWAL: usingCurrentWAL)
            outcome.startedAt = started
            outcome.finishedAt = RecoveryTime(Date())
            try work.publish(&outcome)
            // A home rebuilt after losing its disk has no key copy: the restored server needs it to
            // go on archiving (encrypted) once it starts.
            if crypt.settings.encrypted, let key, !FileManager.default.fileExists(atPath: crypt.home.keyFile) {
                try WALArchiving.installKey(key, for: server, logger: crypt.logger)
                outcome.notes.append("installed the key \(key.id) for the server's archiving again (\(crypt.home.keyFile))")
            }
            return outcome
        } catch {
            // A cluster that failed its checks is kept for inspection; anything else is removed.
            guard error.code == .checkFailed else { throw error }
            keepWorkspace = true
            work.stopRecoveryServerQuietly()
            var kept = error
            kept.message += "\nThe restored cluster is kept in \(work.data) for inspection; remove \(work.root) when done."
            throw kept
        }
    }

    /// The data directories earlier restores moved aside (`home/data.previous-<time>`), oldest first.
    public static func previousDataDirectories(of server: EmbeddedServer) -> [String] {
        let home = server.configuration.home
        return ((try? FileManager.default.contentsOfDirectory(atPath: home)) ?? [])
            .filter { $0.hasPrefix("data.previous-") }.sorted().map { home + "/" + $0 }
    }

    /// Deletes the data directories earlier restores moved aside; returns them.
    public static func discardPrevious(of server: EmbeddedServer) throws(BackupError) -> [String] {
        let previous = previousDataDirectories(of: server)
        for path in previous {
            do {
                try FileManager.default.removeItem(atPath: path)
            } catch {
                throw BackupError(.fileSystem, "Could not remove \(path): \(error).")
            }
        }
        return previous
    }
}
