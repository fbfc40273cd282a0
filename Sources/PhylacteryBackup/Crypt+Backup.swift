import Foundation
import Phylactery
import PhylacteryEmbedded
import PostgresNIO

extension Crypt {
    /// What ``backup(_:key:progress:)`` did.
    public struct BackupOutcome: Sendable {
        /// The backup as the catalog now records it.
        public var record: BackupRecord
        /// Things the operator should know (e.g. an incremental that had to be a full backup).
        public var notes: [String]
    }

    /// Takes a base backup of the running server, verifies it, stores it (encrypted when configured)
    /// and records it in the catalog.
    ///
    /// - `pg_basebackup` writes it in tar format, gzip-compressed, with its manifest and the WAL that
    ///   makes it consistent (`-X stream`); an incremental one (`--incremental`) copies only the blocks
    ///   changed since the newest backup on the same timeline, found from the server's WAL summaries.
    /// - It is verified before it is stored (and before it is encrypted): `pg_verifybackup` checks every
    ///   file against the manifest's checksums, and `pg_waldump` reads the WAL from its start to its end.
    /// - Encrypted, the plaintext is staged in the home's private `backup/work`, never in the backup
    ///   directory; stored files are sealed with ``SealedFile``.
    ///
    /// An incremental backup becomes a full one, with a note, when there is no earlier backup of this
    /// cluster on its timeline (a new cluster, or one restored since) or the server lacks the WAL
    /// summaries.
    ///
    /// - Parameter key: the key to encrypt with; default the server's copy in the home.
    public func backup(
        _ kind: BackupRecord.Kind, key explicit: BackupKey? = nil, lockWait: Duration = .zero, progress: BackupProgress = { _ in }
    ) async throws(BackupError) -> BackupOutcome {
        guard case .running = server.pidFileState() else {
            throw BackupError(.serverState, "The server of \(server.configuration.home) is not running; a base backup is taken from the running server. Start it: phylactery db start.")
        }
        let key = try self.key(explicit)
        try requireConsistentEncryption(key: key)
        let tools = try PostgresTools.forPhysicalBackups(of: server)
        return try await withLock("the backup") { () throws(BackupError) -> BackupOutcome in
            try await self.takeBackup(kind, key: key, tools: tools, progress: progress)
        }
    }

    private func takeBackup(
        _ requested: BackupRecord.Kind, key: BackupKey?, tools: PostgresTools, notes earlier: [String] = [], progress: BackupProgress
    ) async throws(BackupError) -> BackupOutcome {
        var notes = earlier
        try access.createDirectory(baseDirectory, forServer: false)
        try await WALArchiving.ensureReplicationAccess(server, logger: logger)
        let info = try await serverInfo()
        if info.archiveMode != "on" {
            notes.append("WAL archiving is not active on the server, so this backup restores only to its own end; run `phylactery db archive` and restart the server for point-in-time restores")
        }
        var catalog = try self.catalog()
        var kind = requested
        var parent: BackupRecord?
        if requested == .incremental {
            parent = catalog.backups.filter { $0.systemIdentifier == info.systemIdentifier && $0.timeline == info.timeline }
                .max { ($0.stopLSN, $0.stopTime) < ($1.stopLSN, $1.stopTime) }
            if parent == nil {
                kind = .full
                notes.append("no earlier backup of this cluster on timeline \(info.timeline) (a new cluster, or restored since): took a full backup instead of an incremental one")
            } else if info.summarizeWAL != "on" {
                kind = .full
                parent = nil
                notes.append("the server does not summarize WAL (summarize_wal is off until it is restarted with archiving configured): took a full backup")
            }
        }
        var label = Self.label(at: info.now, kind: kind)
        while catalog[label] != nil || FileManager.default.fileExists(atPath: folder(of: label)) { label += "x" }

        // Stage: plaintext never goes to the backup directory when encrypting.
        let stagingRoot = key == nil ? incomingDirectory : home.workDirectory
        try access.createDirectory(stagingRoot, forServer: false)
        Self.removeLeftovers(in: stagingRoot)
        let stage = stagingRoot + "/" + label
        defer { try? FileManager.default.removeItem(atPath: stage) }
        var parentManifest: String?
        if let parent {
            parentManifest = try self.plainManifest(of: parent, key: key, into: stagingRoot + "/" + label + ".parent")
        }
        defer { if parent != nil { try? FileManager.default.removeItem(atPath: stagingRoot + "/" + label + ".parent") } }

        var arguments = [
            "-D", stage, "-F", "t", "-Z", "gzip", "-X", "stream", "-c", "fast", "-l", "phylactery \(label)",
            "--manifest-checksums=CRC32C", "-P", "-v",
            "-h", server.configuration.socketDirectory, "-p", String(server.configuration.port), "-U", server.configuration.superuser, "-w",
        ]
        if let parentManifest { arguments += ["--incremental", parentManifest] }
        let what = kind == .full ? "a full base backup" : "an incremental base backup (on \(parent!.label))"
        progress(.step("Taking \(what) of \(server.configuration.dataDirectory) (pg_basebackup, gzip)"))
        do throws(BackupError) {
            try await tools.runWatching("pg_basebackup", arguments, failure: "The base backup failed") { output in
                if let figures = PostgresTools.kilobyteProgress(in: output) {
                    progress(.advanced(done: figures.done, total: figures.total, unit: .bytes))
                }
            }
        } catch {
            guard kind == .incremental, (error.details ?? "").contains("summar") else { throw error }
            notes.append("the server lacks the WAL summaries for an incremental backup on \(parent!.label): took a full backup")
            progress(.note(notes.last!))
            try? FileManager.default.removeItem(atPath: stage)
            return try await self.takeBackup(.full, key: key, tools: tools, notes: notes, progress: progress)
        }

        let manifest = try BackupManifest.read(stage + "/backup_manifest")
        try await self.verifyPlain(stage, label: label, manifest: manifest, tools: tools, progress: progress)
        let after = try await serverInfo()

        // Store: move (plain) or seal (encrypted) into DIR/.incoming/<label>, then into DIR/base/<label>.
        let incoming = incomingDirectory + "/" + label
        var stored: [BackupRecord.StoredFile] = []
        if let key {
            try access.createDirectory(incomingDirectory, forServer: false)
            try access.createDirectory(incoming, forServer: false)
            for name in Self.backupFiles {
                let source = stage + "/" + name
                let sealedName = name + SealedFile.suffix
                let total = BackupFiles.fileSize(source)
                progress(.step("Encrypting \(name) of \(label) (AES-256-GCM, key \(key.id))"))
                do {
                    try SealedFile.seal(file: source, to: incoming + "/" + sealedName, key: key) { done in
                        progress(.advanced(done: done, total: total, unit: .bytes))
                    }
                } catch let error as BackupError {
                    throw error
                } catch {
                    throw BackupError(.fileSystem, "Could not encrypt \(name): \(error).")
                }
                stored.append(.init(name: sealedName, size: BackupFiles.fileSize(incoming + "/" + sealedName), sha256: try BackupFiles.sha256(incoming + "/" + sealedName, progress: { _ in })))
            }
            try DurableFile.syncDirectory(incoming)
        } else {
            for name in Self.backupFiles {
                let path = stage + "/" + name
                progress(.step("Checksumming \(name) of \(label) (SHA-256, for the catalog)"))
                let total = BackupFiles.fileSize(path)
                stored.append(.init(name: name, size: total, sha256: try BackupFiles.sha256(path) { done in
                    progress(.advanced(done: done, total: total, unit: .bytes))
                }))
            }
        }
        let published = key == nil ? stage : incoming
        guard rename(published, folder(of: label)) == 0 else { throw DurableFile.failure("move the backup into", folder(of: label)) }
        try DurableFile.syncDirectory(baseDirectory)

        let first = manifest.walRanges.first!, last = manifest.walRanges.last!
        let record = BackupRecord(
            label: label, kind: kind, parent: parent?.label,
            startLSN: first.start, stopLSN: last.end, timeline: last.timeline,
            startTime: info.now, stopTime: after.now,
            systemIdentifier: String(manifest.systemIdentifier), files: stored, dataSize: manifest.dataSize,
            postgresVersion: info.version, phylacteryVersion: PhylacteryVersion.current, migrationHead: info.migrationHead,
            keyID: key?.id, walSegmentSize: info.walSegmentSize, verifiedAt: after.now)
        catalog.backups.append(record)
        try save(catalog)
        return BackupOutcome(record: record, notes: notes)
    }

    /// The files a stored backup has, before any `.enc`.
    static let backupFiles = ["backup_manifest", "base.tar.gz", "pg_wal.tar.gz"]

    /// `20261129T140500Z-full`, from the server's clock.
    static func label(at time: RecoveryTime, kind: BackupRecord.Kind) -> String {
        let text = time.description  // 2026-11-29 14:05:00.123456+00
        let digits = text.prefix(19).filter { $0.isNumber }
        return "\(digits.prefix(8))T\(digits.dropFirst(8))Z-\(kind.rawValue)"
    }

    /// Removes what an interrupted backup left in a staging directory.
    static func removeLeftovers(in directory: String) {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
            try? FileManager.default.removeItem(atPath: directory + "/" + name)
        }
    }

    /// The parent's `backup_manifest` as a plain file: in place, or decrypted into `scratch`.
    func plainManifest(of record: BackupRecord, key: BackupKey?, into scratch: String) throws(BackupError) -> String {
        let stored = folder(of: record.label) + "/backup_manifest"
        guard record.isEncrypted else { return stored }
        guard let key else { throw BackupError(.keyRequired, "Backup \(record.label) is encrypted; pass its key file (--key-file KEY).") }
        try access.createDirectory(scratch, forServer: false)
        let plain = scratch + "/backup_manifest"
        do {
            try SealedFile.open(file: stored + SealedFile.suffix, to: plain, key: key, name: "\(record.label)/backup_manifest\(SealedFile.suffix)")
        } catch let error as BackupError {
            throw error
        } catch {
            throw BackupError(.fileSystem, "Could not decrypt the manifest of \(record.label): \(error).")
        }
        return plain
    }

    /// What the backup records about the server, read just before and just after it.
    struct ServerInfo {
        var version: String
        var systemIdentifier: String
        var timeline: UInt32
        var walSegmentSize: UInt64
        var archiveMode: String
        var summarizeWAL: String
        var migrationHead: String?
        var now: RecoveryTime
    }

    func serverInfo() async throws(BackupError) -> ServerInfo {
        let rows = try await access.rows("""
            SELECT current_setting('server_version'), s.system_identifier::text, c.timeline_id,
                   (SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size'),
                   current_setting('archive_mode'), current_setting('summarize_wal'), clock_timestamp()
            FROM pg_control_system() s, pg_control_checkpoint() c
            """, doing: "Reading the server's identity")
        guard let row = rows.first, let values = try? row.decode((String, String, Int32, Int64, String, String, Date).self) else {
            throw BackupError(.database, "The server did not say who it is (pg_control_system).")
        }
        let head = try await access.withConnection(database: server.configuration.database, doing: "Reading the migration ledger") { connection in
            let exists = try await connection.query("SELECT to_regclass('public.phylactery_migrations') IS NOT NULL", logger: logger).collect().first?.decode(Bool.self) ?? false
            guard exists else { return String?.none }
            return try await connection.query("SELECT revision FROM public.phylactery_migrations ORDER BY position DESC LIMIT 1", logger: logger)
                .collect().first?.decode(String.self)
        }
        return ServerInfo(version: values.0, systemIdentifier: values.1, timeline: UInt32(values.2), walSegmentSize: UInt64(values.3),
                          archiveMode: values.4, summarizeWAL: values.5, migrationHead: head, now: RecoveryTime(values.6))
    }
}
