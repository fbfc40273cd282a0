import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
public import Phylactery
public import PhylacteryEmbedded
import PostgresNIO

/// A primary and a streaming standby: two real PostgreSQL clusters from the installed binaries
/// (``TestDatabase/installedBinaries()``), each in its own ``TestDatabase/temporaryHome(_:)``,
/// listening on TCP at 127.0.0.1 on free ports (password authentication) and on their own Unix
/// sockets. The standby is a base backup of the primary that streams through a replication slot
/// (``EmbeddedServer/createReplica(from:slot:synchronous:installIfNeeded:)``).
///
/// ``primary`` and ``standby`` name the clusters by the roles they started in; after
/// ``promoteStandby()`` the standby is the primary.
///
/// ```swift
/// let pair = try await ReplicatedPair.start("reads", mode: .synchronous)
/// defer { Task { await pair.stop() } }   // or `await pair.stop()` at the end of the test
/// ```
public final class ReplicatedPair: Sendable {
    /// How the primary waits for the standby.
    public enum Mode: Sendable {
        /// Every commit waits until the standby has applied it (`synchronous_commit = remote_apply`):
        /// a read on the standby right after a commit sees it, and a promotion loses nothing committed.
        case synchronous
        /// Commits do not wait; the standby replays shortly after (what a crash of the primary can lose).
        case asynchronous
    }

    /// The replication slot and `application_name` of the standby.
    public static let standbyName = "phylactery_standby"

    /// The cluster that started as the primary.
    public let primary: EmbeddedServer
    /// The cluster that started as the standby.
    public let standby: EmbeddedServer
    /// How the pair was started.
    public let mode: Mode
    /// The primary's superuser, database `phylactery`, password authentication over TCP.
    public let primaryURL: DatabaseURL
    /// The standby's superuser, database `phylactery`, password authentication over TCP (read-only).
    public let standbyURL: DatabaseURL
    /// Both hosts, primary first: `postgres://u:p@127.0.0.1:P1,127.0.0.1:P2/phylactery?sslmode=disable`.
    private let clusterURLText: String

    /// Both hosts, primary first, as a libpq multi-host URL:
    /// `postgres://u:p@127.0.0.1:P1,127.0.0.1:P2/phylactery?sslmode=disable`.
    ///
    /// It needs ``DatabaseURL``'s multi-host parsing; ``clusterURLString`` is the same URL as text.
    public var clusterURL: DatabaseURL {
        do {
            return try DatabaseURL(parsing: self.clusterURLText)
        } catch {
            preconditionFailure("ReplicatedPair.clusterURL: DatabaseURL does not parse multi-host URLs here: \(error)")
        }
    }

    /// ``clusterURL`` as text, password included.
    public var clusterURLString: String { self.clusterURLText }

    private init(primary: EmbeddedServer, standby: EmbeddedServer, mode: Mode, primaryURL: DatabaseURL, standbyURL: DatabaseURL) {
        self.primary = primary
        self.standby = standby
        self.mode = mode
        self.primaryURL = primaryURL
        self.standbyURL = standbyURL
        func encoded(_ text: String) -> String {
            var allowed = CharacterSet.urlUserAllowed
            allowed.remove(charactersIn: ":@/?#")
            return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
        }
        let credentials = encoded(primaryURL.username) + (primaryURL.password.map { ":" + encoded($0) } ?? "")
        self.clusterURLText = "postgres://\(credentials)@127.0.0.1:\(primary.configuration.port),127.0.0.1:\(standby.configuration.port)/\(primaryURL.database)?sslmode=disable"
    }

    /// Starts a primary, makes the standby from it and waits until it streams (and, in
    /// ``Mode/synchronous``, is the primary's synchronous standby).
    ///
    /// - Parameter label: names the temporary homes (`/tmp/phyl-<label>p-…`, `/tmp/phyl-<label>s-…`).
    public static func start(_ label: String, mode: Mode) async throws -> ReplicatedPair {
        let binaries = try TestDatabase.installedBinaries()
        let stem = String(label.prefix(10))
        let primaryHome = try TestDatabase.temporaryHome(stem + "p")
        let standbyHome = try TestDatabase.temporaryHome(stem + "s")
        var primary: EmbeddedServer?
        var standby: EmbeddedServer?
        do {
            // A free port can be taken by a parallel test before the server binds it: try others.
            primary = try await startOnFreePort { port in
                let server = EmbeddedServer(configuration: .init(home: primaryHome, pgBinOverride: binaries, port: port, listensOnTCP: true))
                _ = try await server.start(installIfNeeded: false)
                return server
            }
            standby = try await startOnFreePort { port in
                let server = EmbeddedServer(configuration: .init(home: standbyHome, pgBinOverride: binaries, port: port, listensOnTCP: true))
                do {
                    try await server.createReplica(
                        from: .home(primary!.configuration), slot: standbyName, synchronous: mode == .synchronous, installIfNeeded: false)
                } catch let error as EmbeddedServerError where error.code == .portInUse {
                    // The copy was made and its slot created; only the start failed (the port was
                    // taken): the next try starts afresh.
                    _ = try? server.stop()
                    try? FileManager.default.removeItem(atPath: server.configuration.dataDirectory)
                    try await primary!.execute("SELECT pg_drop_replication_slot(\(standbyName))")
                    throw error
                }
                return server
            }
            return ReplicatedPair(
                primary: primary!, standby: standby!, mode: mode, primaryURL: try primary!.tcpURL(), standbyURL: try standby!.tcpURL())
        } catch {
            _ = try? standby?.stop()
            _ = try? primary?.stop()
            try? FileManager.default.removeItem(atPath: primaryHome)
            try? FileManager.default.removeItem(atPath: standbyHome)
            throw error
        }
    }

    /// Runs `body` with a free port, again with another when the port was taken meanwhile.
    private static func startOnFreePort(_ body: (Int) async throws -> EmbeddedServer) async throws -> EmbeddedServer {
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await body(try TestDatabase.freePort())
            } catch let error as EmbeddedServerError where error.code == .portInUse && attempt < 5 {
                continue
            }
        }
    }

    /// `SIGKILL` to the primary's postmaster (the pid in its `postmaster.pid`): a crash, no shutdown.
    /// Its backends notice and exit on their own.
    public func killPrimary() throws {
        guard case .running(let pid, _) = self.primary.pidFileState() else {
            throw EmbeddedServerError(.stopFailed, "The primary in \(self.primary.configuration.home) is not running; there is nothing to kill.")
        }
        guard kill(pid, SIGKILL) == 0 else {
            throw EmbeddedServerError(.stopFailed, "Could not kill the primary (pid \(pid)): \(String(cString: strerror(errno))).")
        }
    }

    /// Promotes the standby (`pg_promote()`) and returns once it is out of recovery.
    public func promoteStandby() async throws {
        try await self.standby.promote()
    }

    /// Pauses replay on the standby (`pg_wal_replay_pause()`): it keeps receiving WAL but falls behind.
    /// In ``Mode/synchronous`` commits on the primary wait until ``resumeReplay()``.
    public func pauseReplay() async throws {
        try await self.standby.execute("SELECT pg_wal_replay_pause()")
    }

    /// Resumes replay on the standby (`pg_wal_replay_resume()`).
    public func resumeReplay() async throws {
        try await self.standby.execute("SELECT pg_wal_replay_resume()")
    }

    /// Stops the standby (a fast shutdown by its data directory). In ``Mode/synchronous`` commits on
    /// the primary wait until it is back.
    public func stopStandby() async throws {
        _ = try self.standby.stop()
    }

    /// Starts the standby again; it resumes streaming from its slot.
    public func startStandby() async throws {
        _ = try await self.standby.start(installIfNeeded: false)
    }

    /// Stops both clusters by data directory and removes their homes.
    public func stop() async {
        for server in [self.standby, self.primary] {
            _ = try? server.stop()
            try? FileManager.default.removeItem(atPath: server.configuration.home)
        }
    }
}

extension EmbeddedServer {
    /// Runs one statement on the maintenance database over the superuser's socket.
    fileprivate func execute(_ query: PostgresQuery) async throws {
        let client = PhylacteryClient(configuration: .init(url: self.url.with(database: "postgres"), options: TestDatabase.adminOptions))
        try await client.withDirectConnection { connection in
            _ = try await connection.query(query, logger: TestDatabase.logger).collect()
        }
    }
}
