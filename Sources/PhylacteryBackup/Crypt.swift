import Foundation
public import Logging
public import PhylacteryEmbedded
import Phylactery
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The backup directory of one home — its "crypt" — and everything done with it: taking base backups
/// (``backup(_:key:progress:)``), verifying them (``verify(_:key:progress:)``), listing them with the
/// time range they can restore (``overview(key:)``) and retention (``applyRetention(keepFull:progress:)``).
/// Restoring is ``Restore``.
///
/// ```
/// DIR/catalog.json             every base backup: label, kind, parent, LSNs, times, sizes, checksums, versions
/// DIR/base/<label>/            base.tar.gz, pg_wal.tar.gz, backup_manifest (each + .enc when encrypted)
/// DIR/wal/                     the archived WAL (segments, timeline and backup histories; + .enc when encrypted)
/// DIR/.incoming/               a backup being written (moved into base/ once verified)
/// DIR/.lock                    held while a backup, verification or retention runs
/// ```
public struct Crypt: Sendable {
    /// The embedded server whose cluster is backed up.
    public let server: EmbeddedServer
    /// Where backups go and how (see ``BackupSettings``).
    public let settings: BackupSettings
    let logger: Logger

    /// The crypt of `server`'s home with `settings`.
    public init(server: EmbeddedServer, settings: BackupSettings, logger: Logger = Logger(label: "phylactery.backup")) {
        self.server = server
        self.settings = settings
        self.logger = logger
    }

    /// The crypt configured for `server`'s home (`phylactery db archive`), or the fix.
    public static func open(_ server: EmbeddedServer, logger: Logger = Logger(label: "phylactery.backup")) throws(BackupError) -> Crypt {
        Crypt(server: server, settings: try BackupSettings.required(for: server), logger: logger)
    }

    /// The backup directory.
    public var directory: String { settings.directory }
    var catalogFile: String { directory + "/catalog.json" }
    var baseDirectory: String { directory + "/base" }
    var incomingDirectory: String { directory + "/.incoming" }
    var lockFile: String { directory + "/.lock" }
    var home: BackupHome { BackupHome(server.configuration) }
    var access: ServerAccess { ServerAccess(server, logger: logger) }

    /// The archive, read with the segment size of the newest backup (16 MB unless initdb chose otherwise).
    func archive(segmentSize: UInt64? = nil) -> WALArchive {
        WALArchive(directory: settings.walDirectory, segmentSize: segmentSize ?? (try? catalog().newest?.walSegmentSize) ?? WALArchive.defaultSegmentSize)
    }

    func folder(of label: String) -> String { baseDirectory + "/" + label }

    // MARK: - Catalog

    /// The catalog; empty when no backup was taken yet.
    public func catalog() throws(BackupError) -> BackupCatalog {
        guard let data = FileManager.default.contents(atPath: catalogFile) else { return BackupCatalog() }
        do {
            let decoder = JSONDecoder()
            return try decoder.decode(BackupCatalog.self, from: data)
        } catch {
            throw BackupError(.invalidArchive, "The catalog \(catalogFile) cannot be read (\(error)). It was damaged; the backups themselves are in \(baseDirectory).")
        }
    }

    func save(_ catalog: BackupCatalog) throws(BackupError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data: Data
        do {
            data = try encoder.encode(catalog)
        } catch {
            throw BackupError(.fileSystem, "Could not encode the catalog: \(error).")
        }
        try DurableFile.replace(catalogFile, with: data, mode: 0o600)
    }

    // MARK: - Keys

    /// The key to encrypt or decrypt with: the one given, else the server's copy in the home.
    /// `nil` when backups are not encrypted.
    func key(_ explicit: BackupKey?) throws(BackupError) -> BackupKey? {
        guard settings.encrypted else { return explicit }
        if let explicit { return explicit }
        if FileManager.default.fileExists(atPath: home.keyFile) { return try BackupKey.load(from: home.keyFile) }
        throw BackupError(.keyRequired, "Backups in \(directory) are encrypted; pass the key file (--key-file KEY).")
    }

    /// Refuses to mix keys, or plain and encrypted files, in one backup directory: a restore would
    /// need several keys at once.
    func requireConsistentEncryption(key: BackupKey?) throws(BackupError) {
        let wanted = settings.encrypted ? key?.id : nil
        for record in try catalog().backups where record.keyID != wanted {
            if let other = record.keyID {
                throw BackupError(.wrongKey, "\(directory) holds backups encrypted with key \(other)\(wanted.map { ", not \($0)" } ?? ""). Use that key, or choose another backup directory for other settings.")
            }
            throw BackupError(.invalidArgument, "\(directory) holds unencrypted backups; encrypted ones go to another backup directory.")
        }
        let files = (try? FileManager.default.contentsOfDirectory(atPath: settings.walDirectory)) ?? []
        let sealed = files.contains { $0.hasSuffix(SealedFile.suffix) }
        let plain = files.contains { WALFileName($0, segmentsPerId: 256) != nil }
        if settings.encrypted && plain {
            throw BackupError(.invalidArgument, "\(settings.walDirectory) already holds unencrypted WAL; encrypted archiving needs another backup directory.")
        }
        if !settings.encrypted && sealed {
            throw BackupError(.invalidArgument, "\(settings.walDirectory) holds encrypted WAL; keep encrypting (--key-file), or choose another backup directory.")
        }
    }

    // MARK: - Lock

    /// Runs `body` holding `DIR/.lock`, waiting up to `wait` for another backup or retention to end.
    func withLock<R>(_ purpose: String, wait: Duration = .zero, _ body: () async throws(BackupError) -> R) async throws(BackupError) -> R {
        let fd = openFile(lockFile, O_RDWR | O_CREAT | O_CLOEXEC)
        guard fd >= 0 else { throw DurableFile.failure("open", lockFile) }
        defer { close(fd) }
        let deadline = ContinuousClock.now + wait
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else { throw DurableFile.failure("lock", lockFile) }
            if ContinuousClock.now >= deadline {
                let holders = EmbeddedServer.lockHolders(of: lockFile)
                throw BackupError(.serverState, "Another backup, verification or retention is running on \(directory)\(holders.isEmpty ? "" : " (pid \(holders.map(String.init).joined(separator: ", ")))"); \(purpose) waits for it. Try again when it has finished.")
            }
            try? await Task.sleep(for: .milliseconds(500))
        }
        defer { flock(fd, LOCK_UN) }
        return try await body()
    }
}
