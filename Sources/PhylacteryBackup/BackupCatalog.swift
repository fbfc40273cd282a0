import Foundation

/// One base backup as the catalog (`catalog.json` in the backup directory) records it.
public struct BackupRecord: Codable, Sendable, Hashable {
    /// Full (every file) or incremental (blocks changed since ``parent``, from the server's WAL summaries).
    public enum Kind: String, Codable, Sendable, Hashable {
        case full
        case incremental
    }

    /// One file stored for the backup (`base.tar.gz`, `pg_wal.tar.gz`, `backup_manifest`, each with
    /// `.enc` when encrypted).
    public struct StoredFile: Codable, Sendable, Hashable {
        /// The file's name in the backup's folder.
        public var name: String
        /// Its size in bytes, as stored.
        public var size: UInt64
        /// SHA-256 of the stored bytes (hex).
        public var sha256: String
    }

    /// Unique, sortable, and the name of the backup's folder: `20261129T140500Z-full`.
    public var label: String
    /// Full or incremental.
    public var kind: Kind
    /// The backup an incremental builds on (the previous one of its chain).
    public var parent: String?
    /// WAL position and timeline where the backup starts; recovery replays from here.
    public var startLSN: LSN
    /// WAL position where the backup ends: the earliest point it can be restored to.
    public var stopLSN: LSN
    /// The timeline the backup ends on.
    public var timeline: UInt32
    /// The server's clock when the backup started and after it ended (so a restore to any time at
    /// or after ``stopTime`` can start from it).
    public var startTime: RecoveryTime
    /// See ``startTime``.
    public var stopTime: RecoveryTime
    /// The cluster's system identifier: backups of another cluster never mix.
    public var systemIdentifier: String
    /// The stored files with their sizes and checksums.
    public var files: [StoredFile]
    /// Bytes of the cluster the backup covers, before compression (from its manifest).
    public var dataSize: UInt64
    /// `server_version` of the server backed up.
    public var postgresVersion: String
    /// ``PhylacteryVersion/current`` of the program that took it.
    public var phylacteryVersion: String
    /// The newest revision in the federation's migration ledger (`public.phylactery_migrations`), if any.
    public var migrationHead: String?
    /// The id of the key it is encrypted with (``BackupKey/id``), `nil` when stored in plain.
    public var keyID: String?
    /// `wal_segment_size` of the cluster, in bytes.
    public var walSegmentSize: UInt64
    /// When pg_verifybackup last passed on it.
    public var verifiedAt: RecoveryTime
    /// The last verification after it was taken (``Crypt/verify(_:key:progress:)``), passed or not;
    /// `nil` while it was verified only when taken.
    public var lastVerification: BackupVerification?

    /// Bytes stored.
    public var size: UInt64 { files.reduce(0) { $0 + $1.size } }
    /// Whether it is stored encrypted.
    public var isEncrypted: Bool { keyID != nil }
}

/// The list of base backups in a backup directory (`catalog.json`), oldest first.
public struct BackupCatalog: Codable, Sendable, Hashable {
    /// The catalog's format, so a newer program can read an older catalog.
    public var format: Int = 1
    /// The backups, in the order they were taken.
    public var backups: [BackupRecord] = []

    /// A catalog of `backups`.
    public init(backups: [BackupRecord] = []) { self.backups = backups }

    /// The backup named `label`.
    public subscript(label: String) -> BackupRecord? { backups.first { $0.label == label } }

    /// `record` and the backups it builds on, full backup first; `nil` when one of them is missing.
    public func chain(of record: BackupRecord) -> [BackupRecord]? {
        var chain = [record]
        var current = record
        while let parent = current.parent {
            guard let found = self[parent], !chain.contains(where: { $0.label == found.label }) else { return nil }
            chain.insert(found, at: 0)
            current = found
        }
        return current.kind == .full ? chain : nil
    }

    /// The newest backup (by end position on the same history, then by time).
    public var newest: BackupRecord? { backups.max { ($0.stopTime, $0.label) < ($1.stopTime, $1.label) } }
}
