import Foundation
import Logging
import Phylactery
import PhylacteryTestSupport
import PostgresNIO
import Testing

/// A client on a primary and a synchronous standby (``ReplicatedPair``) across a failover: the
/// primary is killed with SIGKILL, the standby promoted, and the same client — never restarted —
/// writes on the new primary, while the transactions in flight got the typed errors.
@Suite(.serialized) struct ClientFailoverTests {
    @Test("after a promotion the client writes on the new primary by itself; in-flight transactions get typed errors")
    func failoverWithoutRestart() async throws {
        try await ReadRoutingTests.withPair("failover", mode: .synchronous) { pair in try await self.run(pair) }
    }

    func run(_ pair: ReplicatedPair) async throws {
        var options = TestDatabase.defaultOptions
        options.maximumConnections = 6
        options.topologyCheckInterval = .milliseconds(200)
        options.failoverTimeout = .seconds(60)
        try await PhylacteryClient.withClient(configuration: .init(url: pair.clusterURL, options: options)) { client in
            try await client.execute("CREATE TABLE public.marks (n int PRIMARY KEY)")
            try await client.execute("INSERT INTO public.marks VALUES (1)")
            let oldPrimary = ObjectIdentifier(client.postgres)

            // A separate watcher on the primary, to see a COMMIT waiting for the standby.
            var watcherOptions = TestDatabase.defaultOptions
            watcherOptions.createsChambers = false
            let watcher = PhylacteryClient(configuration: .init(url: pair.primaryURL, options: watcherOptions))

            // (a) A COMMIT in flight: with replay paused on the synchronous (remote_apply) standby,
            // the primary holds the COMMIT until the standby applies it.
            try await pair.pauseReplay()
            let committing = Task {
                try await client.transaction { tx in try await tx.execute("INSERT INTO public.marks VALUES (2)") }
            }
            try await eventually("the COMMIT waits for the standby", timeout: .seconds(30)) {
                try await watcher.withDirectConnection { connection in
                    try await connection.query("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'", logger: Logger(label: "test"))
                        .collect().first!.decode(Int64.self) > 0
                }
            }

            // (b) A transaction in the middle of a statement (the backend of a killed postmaster ends
            // its session as soon as it waits, and a sleeping one waits).
            let midBody = Task {
                try await client.transaction { tx in
                    try await tx.execute("INSERT INTO public.marks VALUES (3)")
                    try await tx.execute("SELECT pg_sleep(120)")
                }
            }
            try await eventually("the statement runs", timeout: .seconds(30)) {
                try await watcher.withDirectConnection { connection in
                    try await connection.query("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query = 'SELECT pg_sleep(120)'", logger: Logger(label: "test"))
                        .collect().first!.decode(Int64.self) > 0
                }
            }

            try pair.killPrimary()
            let killed = ContinuousClock.now

            // The body's next statement fails: nothing of it committed, safe to run again.
            let bodyError = await #expect(throws: PhylacteryError.self) { try await midBody.value }
            #expect(bodyError?.code == .connectionFailed)
            #expect(bodyError?.description.contains("nothing of the transaction was committed") == true, "\(bodyError?.description ?? "")")
            // The COMMIT's outcome is unknown, and the error says so.
            let commitError = await #expect(throws: PhylacteryError.self) { try await committing.value }
            #expect(commitError?.code == .commitOutcomeUnknown)
            #expect(commitError?.phase == .commit)
            #expect(commitError?.description.contains("may or may not have committed") == true, "\(commitError?.description ?? "")")

            // New work waits for a primary; the standby is promoted meanwhile.
            let waiting = Task {
                try await client.transaction { tx in try await tx.execute("INSERT INTO public.marks VALUES (5)") }
                return ContinuousClock.now
            }
            try await pair.resumeReplay()
            try await pair.promoteStandby()
            let promoted = ContinuousClock.now
            let written = try await waiting.value
            let found = max(.zero, written - promoted)
            print("client failover: kill → promotion done \(promoted - killed), kill → first write committed on the new primary \(written - killed) (the test promotes right after the kill)")
            #expect(found < .seconds(10), "the client found the new primary within seconds of the promotion (took \(found) after it)")

            // The same client, never restarted, works on the new primary.
            #expect(ObjectIdentifier(client.postgres) != oldPrimary, "client.postgres is the new primary's pool")
            let port = try await client.query("SELECT inet_server_port()").collect().first!.decode(Int32.self)
            if case .tcp(_, let standbyPort) = pair.standbyURL.endpoint { #expect(Int(port) == standbyPort) }
            for n in 6...20 {
                try await client.transaction { tx in try await tx.execute("INSERT INTO public.marks VALUES (\(n))") }
            }
            let marks = try await client.query("SELECT n FROM public.marks ORDER BY n").collect().map { try $0.decode(Int.self) }
            // 1 committed before; 2 reached the synchronous standby before the kill, so the COMMIT whose
            // outcome was unknown did commit (what the error told the caller to check); 3 and 4 never
            // committed; 5 waited for the new primary.
            #expect(marks == [1, 2, 5] + Array(6...20))
        }
    }
}
