public import Foundation

/// `manifest.json` of a logical backup: what was dumped, from which server, with which `pg_dump`,
/// and a SHA-256 for every archive. A backup directory without it is incomplete.
public struct LogicalBackupManifest: Codable, Sendable, Hashable {
    /// Always ``LogicalBackupManifest/formatName``.
    public var format: String
    /// The layout's version; a reader refuses versions it does not know.
    public var formatVersion: Int
    /// When the snapshot was taken.
    public var createdAt: Date
    /// The database that was dumped.
    public var database: String
    /// `server_version` of the server that was dumped, e.g. `18.6`.
    public var serverVersion: String
    /// The `pg_dump` that wrote the archives, e.g. `18.6`.
    public var pgDumpVersion: String
    /// One archive per chamber, in restore order.
    public var chambers: [ChamberArchive]

    /// One chamber's archive: `pg_dump --format=custom --schema=<chamber>`.
    public struct ChamberArchive: Codable, Sendable, Hashable {
        /// The chamber's schema name.
        public var chamber: String
        /// The archive's file name inside the backup directory.
        public var file: String
        /// The archive's size in bytes.
        public var bytes: Int64
        /// SHA-256 of the archive, lowercase hex.
        public var sha256: String
        /// Tables in the archive (partitions included).
        public var tables: [String]
        /// Entries in the archive's table of contents (`pg_restore --list`).
        public var entries: Int
    }

    /// `phylactery-logical-backup`.
    public static let formatName = "phylactery-logical-backup"
    /// The version this code writes and reads.
    public static let currentVersion = 1
    /// The manifest's file name inside the backup directory.
    public static let fileName = "manifest.json"

    /// The manifest's JSON, keys sorted and indented, so a person can read it.
    public func encoded() throws -> Data { try ManifestCoding.encode(self) }

    /// Reads `manifest.json` from `data`.
    public static func decode(_ data: Data) throws -> LogicalBackupManifest {
        try ManifestCoding.decode(LogicalBackupManifest.self, from: data)
    }
}
