import Foundation
public import PhylacteryEmbedded

/// How a home's cluster is backed up: where its backups and archived WAL go, how long committed work
/// may wait before its WAL is archived, and whether backups are encrypted.
///
/// Kept in `home/backup/settings.json` (written by ``WALArchiving/configure(_:for:key:logger:)``), next
/// to `home/backup/archiving.conf`, the server settings every start of the embedded server includes.
public struct BackupSettings: Codable, Sendable, Hashable {
    /// The backup directory (a local disk, a mounted drive or NAS path): `catalog.json`, `base/` (one
    /// folder per base backup) and `wal/` (the archived WAL).
    public var directory: String
    /// The longest a committed transaction waits before the WAL holding it is archived
    /// (`archive_timeout`): what losing the whole disk can take with it. Default 60 s.
    ///
    /// Each forced switch archives a whole 16 MB segment (compressed only when encrypted), so a short
    /// timeout on a busy-then-idle server costs archive space.
    public var archiveTimeout: Duration
    /// Whether base backups and archived WAL are encrypted (AES-256-GCM) with the key kept in
    /// `home/backup/wal.key`.
    public var encrypted: Bool
    /// The program and leading arguments the server runs to encrypt each WAL segment
    /// (`archive_command`), e.g. `["/usr/local/bin/phylactery", "db", "archive-wal"]`; only with
    /// ``encrypted``. The server appends `%p %f --to DIR --key-file KEY`.
    public var archiveHelper: [String]?

    /// Settings for `directory`.
    public init(directory: String, archiveTimeout: Duration = .seconds(60), encrypted: Bool = false, archiveHelper: [String]? = nil) {
        self.directory = (directory as NSString).standardizingPath
        self.archiveTimeout = archiveTimeout
        self.encrypted = encrypted
        self.archiveHelper = archiveHelper
    }

    enum CodingKeys: String, CodingKey {
        case directory, archiveTimeoutSeconds, encrypted, archiveHelper
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.directory = try container.decode(String.self, forKey: .directory)
        self.archiveTimeout = .seconds(try container.decode(Int.self, forKey: .archiveTimeoutSeconds))
        self.encrypted = try container.decode(Bool.self, forKey: .encrypted)
        self.archiveHelper = try container.decodeIfPresent([String].self, forKey: .archiveHelper)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.directory, forKey: .directory)
        try container.encode(Int(self.archiveTimeout.components.seconds), forKey: .archiveTimeoutSeconds)
        try container.encode(self.encrypted, forKey: .encrypted)
        try container.encodeIfPresent(self.archiveHelper, forKey: .archiveHelper)
    }

    /// Where the archived WAL goes: `directory/wal`.
    public var walDirectory: String { directory + "/wal" }

    /// The settings of `server`'s home, or `nil` when backups are not configured there.
    public static func load(for server: EmbeddedServer) throws(BackupError) -> BackupSettings? {
        let path = BackupHome(server.configuration).settingsFile
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        do {
            return try JSONDecoder().decode(BackupSettings.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw BackupError(.notConfigured, "The backup settings in \(path) cannot be read (\(error)). Configure backups again: phylactery db archive --to DIR.")
        }
    }

    /// The settings of `server`'s home; ``BackupError/Code/notConfigured`` with the fix when there are none.
    public static func required(for server: EmbeddedServer) throws(BackupError) -> BackupSettings {
        guard let settings = try load(for: server) else {
            throw BackupError(.notConfigured, "Backups are not configured for \(server.configuration.home). Choose a backup directory first: phylactery db archive --to DIR (a local disk, mounted drive or NAS path; add --key-file KEY to encrypt).")
        }
        return settings
    }

    /// The server settings that archive WAL into ``walDirectory``: `basic_archive` (it fsyncs each
    /// segment and never overwrites a different one), or — encrypted — ``archiveHelper``, which does
    /// the same for the sealed segment.
    func serverSettings(keyFile: String) -> String {
        var lines = [
            "# Written by Phylactery (`phylactery db archive`); included by phylactery.conf at every start.",
            "archive_mode = on",
            "archive_timeout = \(Int(archiveTimeout.components.seconds))",
            "summarize_wal = on",
        ]
        if encrypted, let helper = archiveHelper {
            let command = (helper + ["%p", "%f", "--to", walDirectory, "--key-file", keyFile])
                .map { $0 == "%p" || $0 == "%f" ? $0 : Shell.quote($0) }.joined(separator: " ")
            lines.append("archive_library = ''")
            lines.append("archive_command = \(ServerSetting.quote(command))")
        } else {
            lines.append("archive_command = ''")
            lines.append("archive_library = 'basic_archive'")
            lines.append("basic_archive.archive_directory = \(ServerSetting.quote(walDirectory))")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// The files backups keep in a home (outside the data directory, never in the backup directory).
struct BackupHome: Sendable {
    let configuration: EmbeddedServer.Configuration

    init(_ configuration: EmbeddedServer.Configuration) { self.configuration = configuration }

    /// `home/backup`: settings, the server's archiving include, the WAL key; owned by the server user.
    var directory: String { configuration.home + "/backup" }
    var settingsFile: String { directory + "/settings.json" }
    var archivingFile: String { configuration.archivingSettingsFile }
    /// The key the server's archive command encrypts WAL with (a copy of the operator's key file).
    var keyFile: String { directory + "/wal.key" }
    /// Private plaintext staging (backups being verified before encryption, decrypted manifests).
    var workDirectory: String { directory + "/work" }
    /// Written when a restore swapped a cluster in; the runtime's reanimation reads and removes it.
    var reanimationFile: String { directory + "/reanimate.json" }
}

/// Quoting for `/bin/sh` command lines (archive and restore commands).
enum Shell {
    /// `value` in single quotes, any single quote in it closed, escaped and reopened.
    static func quote(_ value: String) -> String {
        "'" + value.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}

/// Quoting for values in PostgreSQL configuration files.
enum ServerSetting {
    /// `value` as a single-quoted configuration string (quotes doubled).
    static func quote(_ value: String) -> String {
        "'" + value.replacingOccurrences(of: "'", with: "''") + "'"
    }
}
