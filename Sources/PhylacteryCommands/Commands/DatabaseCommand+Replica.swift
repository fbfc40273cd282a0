import ArgumentParser
import Foundation
import Phylactery
import PhylacteryEmbedded

extension DatabaseCommand {
    /// `phylactery db replica create|status|rejoin`: streaming standbys of the local server.
    struct Replica: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Streaming standbys of the local server: create one, see replication, rejoin a former primary.",
            discussion: """
                A standby is a base backup of the primary (pg_basebackup) that streams its WAL through a \
                replication slot and answers read-only queries. `db promote` makes a standby the primary; \
                `db replica rejoin` brings the former primary back as a standby of the new one (pg_rewind).
                """,
            subcommands: [Create.self, Status.self, Rejoin.self])

        /// `--from`: the primary's home (a directory) or a postgres:// URL.
        struct SourceOption: ParsableArguments {
            @Option(name: .customLong("from"), help: "The primary: its home directory on this machine (it must be running), or a postgres:// URL of any PostgreSQL primary (a user with REPLICATION).")
            var from: String

            @Option(help: "The replication slot on the primary, also the standby's application_name (default: phylactery_<name of --home>).")
            var slot: String?

            @Flag(help: "Make the primary wait until this standby has applied each commit (synchronous_commit = remote_apply). The primary must be a home on this machine.")
            var synchronous = false

            func source(pgBin: String?) throws -> EmbeddedServer.ReplicationSource {
                if from.hasPrefix("postgres://") || from.hasPrefix("postgresql://") {
                    return .url(try DatabaseURL(parsing: from))
                }
                let home = from.hasPrefix("/") ? from : FileManager.default.currentDirectoryPath + "/" + from
                return .home(EmbeddedServer.Configuration(home: home, pgBinOverride: pgBin))
            }

            /// Prints what a create or rejoin did: its notes, `headline` with the pid and slot, and what synchronous means.
            func report(_ outcome: EmbeddedServer.ReplicaOutcome, _ headline: String) throws {
                for note in outcome.notes { print("· \(note)") }
                print("\(headline) (pid \(outcome.pid)) through slot '\(outcome.slot)'.")
                if outcome.synchronous {
                    print("Synchronous: every commit on the primary now waits until this standby has applied it (and waits while it is down).")
                }
            }
        }

        struct Create: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Make a streaming standby of --from in the new --home and start it.",
                discussion: """
                    Copies the primary with pg_basebackup (-R -X stream -C -S SLOT) into --home, which must \
                    hold no cluster, and starts the standby on its own socket (and --tcp port). Returns once \
                    it streams. The slot keeps every WAL segment the standby has not received, also while \
                    the standby is stopped: drop it on the primary when a standby is gone for good. With \
                    --synchronous every commit on the primary waits for this standby, and stalls while it is down.
                    """)

            @OptionGroup var server: ServerOptions
            @OptionGroup var source: SourceOption

            func run() async throws {
                try await reportingErrors {
                    let configuration = server.configuration
                    let outcome = try await EmbeddedServer(configuration: configuration)
                        .createReplica(from: try source.source(pgBin: configuration.pgBinOverride), slot: source.slot, synchronous: source.synchronous)
                    try source.report(outcome, "Standby of \(try source.source(pgBin: nil)) streaming in \(configuration.home)")
                    print("URL: \(outcome.url)")
                }
            }
        }

        struct Status: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Show replication as this server sees it: its role, its standbys or its primary, lag in bytes and time, slots. Exit 3 when stopped.")

            @OptionGroup var server: ServerOptions

            func run() async throws {
                try await reportingErrors {
                    let embedded = EmbeddedServer(configuration: server.configuration)
                    guard case .running = embedded.pidFileState() else {
                        print("PostgreSQL is not running in \(server.configuration.home).")
                        throw ExitCode(3)
                    }
                    for line in Self.lines(try await embedded.replicationStatus()) { print(line) }
                }
            }

            static func lines(_ status: EmbeddedServer.ReplicationStatus) -> [String] {
                func bytes(_ value: Int64?) -> String { value.map { "\($0) bytes" } ?? "unknown" }
                func time(_ value: Duration?) -> String { value.map { String(format: "%.3f s", $0.seconds) } ?? "none (caught up)" }
                var lines = ["role:         \(status.role.rawValue) (timeline \(status.timeline))"]
                switch status.role {
                case .primary:
                    lines.append("wal position: \(status.lsn)")
                    lines.append(status.synchronousStandbyNames.isEmpty
                        ? "synchronous:  no (commits do not wait for standbys)"
                        : "synchronous:  \(status.synchronousStandbyNames), synchronous_commit = \(status.synchronousCommit)")
                case .standby:
                    lines.append("replayed:     \(status.lsn)")
                }
                if let upstream = status.upstream {
                    let source = upstream.sender.map { "from \($0)" } ?? "(no connection to the primary)"
                    lines.append("upstream:     \(upstream.receiverStatus ?? "not receiving") \(source)\(upstream.slotName.map { " through slot '\($0)'" } ?? "")")
                    lines.append("received:     \(upstream.receiveLSN ?? "nothing yet")")
                    lines.append("lag:          \(upstream.lagBytes) bytes, \(String(format: "%.3f s", upstream.lag.seconds)) behind\(upstream.replayPaused ? " (replay paused)" : "")")
                }
                if status.role == .primary || !status.standbys.isEmpty {
                    lines.append("standbys:     \(status.standbys.isEmpty ? "none connected" : String(status.standbys.count))")
                }
                for standby in status.standbys {
                    lines.append("  \(standby.applicationName): \(standby.state), \(standby.syncState); replayed \(standby.replayLSN ?? "nothing"), lag \(bytes(standby.lagBytes)), replay lag \(time(standby.replayLag))")
                }
                if status.role == .primary || !status.slots.isEmpty {
                    lines.append("slots:        \(status.slots.isEmpty ? "none" : String(status.slots.count))")
                }
                for slot in status.slots {
                    lines.append("  \(slot.name): \(slot.active ? "active" : "INACTIVE"), WAL \(slot.walStatus ?? "unknown"), retains \(bytes(slot.retainedBytes))")
                }
                return lines
            }
        }

        struct Rejoin: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Make this home's former primary a standby of the new primary --from (pg_rewind), and start it.",
                discussion: """
                    Stops the server if it runs, creates the slot on the new primary, rewinds the data \
                    directory to where the timelines forked (pg_rewind: transactions the former primary \
                    committed after that point, never replicated, are discarded), writes the standby \
                    settings and starts it. Needs data checksums (PostgreSQL 18's default) or wal_log_hints.
                    """)

            @OptionGroup var server: ServerOptions
            @OptionGroup var source: SourceOption

            func run() async throws {
                try await reportingErrors {
                    let configuration = server.configuration
                    let outcome = try await EmbeddedServer(configuration: configuration)
                        .rejoin(from: try source.source(pgBin: configuration.pgBinOverride), slot: source.slot, synchronous: source.synchronous)
                    try source.report(outcome, "Rejoined: \(configuration.home) is a standby of \(try source.source(pgBin: nil)), streaming")
                }
            }
        }
    }

    /// `phylactery db promote`: the standby becomes the primary.
    struct Promote: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Promote this home's standby to the primary (pg_promote), waiting until it accepts writes.",
            discussion: """
                Make sure the former primary is stopped (or unreachable) first: two primaries diverge. \
                Bring it back as a standby with `phylactery db replica rejoin --home OLD --from NEW`.
                """)

        @OptionGroup var server: ServerOptions

        @Option(help: "How long to wait for the promotion to finish, in seconds.")
        var wait: Int = 60

        func validate() throws {
            guard wait >= 1 else { throw ValidationError("--wait must be at least 1 second.") }
        }

        func run() async throws {
            try await reportingErrors {
                let outcome = try await EmbeddedServer(configuration: server.configuration).promote(timeout: .seconds(wait))
                print("Promoted: the server in \(server.configuration.home) is the primary now (timeline \(outcome.timeline)).")
                print("Keep the former primary from starting as a primary: rejoin it with `phylactery db replica rejoin --home OLD_HOME --from \(server.configuration.home)`.")
            }
        }
    }
}
