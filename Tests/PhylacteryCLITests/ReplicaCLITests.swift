import Foundation
import Phylactery
import PhylacteryEmbedded
import PhylacteryTestSupport
import PostgresNIO
import Testing

/// `db replica create|status|rejoin` and `db promote` on two homes of their own: a standby streams,
/// is promoted, the former primary rejoins it, and what the new primary writes reaches the former one.
@Suite(.serialized) struct ReplicaCLITests {
    /// Plain connections: no chambers are created (a standby is read-only).
    static var options: PhylacteryClient.Configuration.Options {
        var options = TestDatabase.defaultOptions
        options.createsChambers = false
        return options
    }

    static func count(_ home: String, port: Int, _ sql: String) async throws -> Int64 {
        let url = DatabaseURL(endpoint: .unixSocket(directory: home + "/run", port: port), username: "phylactery", database: "phylactery")
        return try await PhylacteryClient.withClient(configuration: .init(url: url, options: Self.options)) { client in
            try await client.query(PostgresQuery(unsafeSQL: sql)).collect().first?.decode(Int64.self) ?? -1
        }
    }

    static func execute(_ home: String, port: Int, _ sql: String) async throws {
        let url = DatabaseURL(endpoint: .unixSocket(directory: home + "/run", port: port), username: "phylactery", database: "phylactery")
        try await PhylacteryClient.withClient(configuration: .init(url: url, options: Self.options)) { client in
            try await client.execute(PostgresQuery(unsafeSQL: sql))
        }
    }

    @Test func createStatusPromoteRejoin() async throws {
        let first = try TestDatabase.temporaryHome("replA")
        let second = try TestDatabase.temporaryHome("replB")
        let (portA, portB) = (try TestDatabase.freePort(), try TestDatabase.freePort())
        let environment = ["PHYLACTERY_PG_BIN": try TestDatabase.installedBinaries(), "PHYLACTERY_DATABASE_URL": "", "PHYLACTERY_HOME": ""]
        func run(_ arguments: String...) throws -> PhylacteryProcess { try PhylacteryProcess.run(arguments, environment: environment) }
        defer {
            _ = try? run("db", "stop", "--home", second)
            _ = try? run("db", "stop", "--home", first)
            try? FileManager.default.removeItem(atPath: first)
            try? FileManager.default.removeItem(atPath: second)
        }

        let start = try run("db", "start", "--home", first, "--port", String(portA), "--tcp")
        #expect(start.status == 0, "\(start.output)")
        try await Self.execute(first, port: portA, "CREATE TABLE public.events (id int PRIMARY KEY)")
        try await Self.execute(first, port: portA, "INSERT INTO public.events SELECT generate_series(1, 10)")

        // A standby of a home that is not running is refused, naming the fix.
        let stopped = try run("db", "replica", "create", "--from", second, "--home", first + "-nothing")
        #expect(stopped.status == 1 && stopped.output.contains("No server runs in \(second). Start it first"), "\(stopped.output)")
        try? FileManager.default.removeItem(atPath: first + "-nothing")

        let create = try run("db", "replica", "create", "--from", first, "--home", second, "--port", String(portB), "--tcp", "--slot", "standby_b")
        #expect(create.status == 0, "\(create.output)")
        #expect(create.output.contains("Standby of the server in \(first) streaming in \(second)"), "\(create.output)")
        #expect(create.output.contains("through slot 'standby_b'"), "\(create.output)")
        #expect(try await Self.count(second, port: portB, "SELECT count(*) FROM public.events") == 10)
        // Over TCP the standby takes the primary's password (its catalog is the primary's).
        let standbyTCP = try run("db", "url", "--home", second, "--port", String(portB), "--tcp", "--show-password")
        let primaryTCP = try run("db", "url", "--home", first, "--port", String(portA), "--tcp", "--show-password")
        #expect(standbyTCP.output.replacingOccurrences(of: String(portB), with: String(portA)) == primaryTCP.output, "\(standbyTCP.output)")
        let overTCP = try await PhylacteryClient.withClient(configuration: .init(url: try DatabaseURL(parsing: standbyTCP.output), options: Self.options)) { client in
            try await client.query("SELECT pg_is_in_recovery()").collect().first?.decode(Bool.self)
        }
        #expect(overTCP == true)

        let again = try run("db", "replica", "create", "--from", first, "--home", second, "--port", String(portB))
        #expect(again.status == 1 && again.output.contains("already runs in \(second)"), "\(again.output)")

        let primaryStatus = try run("db", "replica", "status", "--home", first, "--port", String(portA))
        #expect(primaryStatus.status == 0, "\(primaryStatus.output)")
        #expect(primaryStatus.output.contains("role:         primary (timeline 1)"), "\(primaryStatus.output)")
        #expect(primaryStatus.output.contains("synchronous:  no (commits do not wait for standbys)"), "\(primaryStatus.output)")
        #expect(primaryStatus.output.contains("  standby_b: streaming, async; replayed "), "\(primaryStatus.output)")
        #expect(primaryStatus.output.contains("  standby_b: active, WAL reserved, retains "), "\(primaryStatus.output)")
        let standbyStatus = try run("db", "replica", "status", "--home", second, "--port", String(portB))
        #expect(standbyStatus.status == 0, "\(standbyStatus.output)")
        #expect(standbyStatus.output.contains("role:         standby (timeline 1)"), "\(standbyStatus.output)")
        #expect(standbyStatus.output.contains("upstream:     streaming from \(first)/run:\(portA) through slot 'standby_b'"), "\(standbyStatus.output)")

        // Promoting the primary is refused; the standby is promoted once its primary is stopped.
        let wrong = try run("db", "promote", "--home", first, "--port", String(portA))
        #expect(wrong.status == 1 && wrong.output.contains("is already a primary"), "\(wrong.output)")
        let earlyRejoin = try run("db", "replica", "rejoin", "--home", first, "--port", String(portA), "--from", second)
        #expect(earlyRejoin.status == 1 && earlyRejoin.output.contains("is still a standby. Promote it first"), "\(earlyRejoin.output)")
        #expect(try run("db", "stop", "--home", first).status == 0)
        let promote = try run("db", "promote", "--home", second, "--port", String(portB))
        #expect(promote.status == 0, "\(promote.output)")
        #expect(promote.output.contains("is the primary now (timeline 2)"), "\(promote.output)")
        try await Self.execute(second, port: portB, "INSERT INTO public.events SELECT generate_series(11, 20)")

        // The former primary rejoins as a standby of the new one, and receives what it writes.
        let rejoin = try run("db", "replica", "rejoin", "--home", first, "--port", String(portA), "--tcp", "--from", second, "--slot", "standby_a", "--synchronous")
        #expect(rejoin.status == 0, "\(rejoin.output)")
        #expect(rejoin.output.contains("Rejoined: \(first) is a standby of the server in \(second), streaming"), "\(rejoin.output)")
        #expect(rejoin.output.contains("Synchronous: every commit on the primary now waits"), "\(rejoin.output)")
        #expect(rejoin.output.contains("· dropped the replication slot 'standby_b' this cluster kept as a primary"), "\(rejoin.output)")
        // Synchronous (remote_apply): each commit is on the rejoined standby when it returns.
        try await Self.execute(second, port: portB, "INSERT INTO public.events SELECT generate_series(21, 30)")
        #expect(try await Self.count(first, port: portA, "SELECT count(*) FROM public.events") == 30)
        #expect(try await Self.count(first, port: portA, "SELECT pg_is_in_recovery()::int::int8") == 1)
        let after = try run("db", "replica", "status", "--home", second, "--port", String(portB))
        #expect(after.output.contains("role:         primary (timeline 2)"), "\(after.output)")
        #expect(after.output.contains("synchronous:  FIRST 1 (\"standby_a\"), synchronous_commit = remote_apply"), "\(after.output)")
        #expect(after.output.contains("  standby_a: streaming, sync; replayed "), "\(after.output)")
        let rejoined = try run("db", "replica", "status", "--home", first, "--port", String(portA))
        #expect(rejoined.output.contains("role:         standby (timeline 2)"), "\(rejoined.output)")
        #expect(!rejoined.output.contains("slots:"), "the former primary keeps no slot: \(rejoined.output)")
    }
}
