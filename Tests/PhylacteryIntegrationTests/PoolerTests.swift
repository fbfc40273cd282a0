import Foundation
import Logging
import Phylactery
import PhylacteryTestSupport
import PostgresNIO
import Testing

/// A fresh database with a private PgBouncer in front of it, and a client through the pooler (with the
/// direct URL as its session URL when asked). The body also gets the direct URL, to look at the server
/// past the pooler.
func withPooledDatabase<Result: Sendable>(
    _ label: String, poolMode: String = "transaction", sessionURL: Bool = false, connections: Int = 6,
    _ body: (PhylacteryClient, DatabaseURL, PgBouncer) async throws -> Result
) async throws -> Result {
    try await TestDatabase.withFreshDatabaseURL(label) { direct in
        let bouncer = try await PgBouncer.start(label, server: direct, poolMode: poolMode)
        do {
            var options = TestDatabase.defaultOptions
            options.maximumConnections = connections
            if sessionURL { options.sessionURL = direct }
            let result = try await PhylacteryClient.withClient(configuration: .init(url: bouncer.url, options: options)) { client in
                try await body(client, direct, bouncer)
            }
            await bouncer.stop()
            return result
        } catch {
            await bouncer.stop()
            throw error
        }
    }
}

/// Runs `sql` on the server past the pooler (a direct connection to `url`).
func direct(_ url: DatabaseURL, _ sql: PostgresQuery) async throws -> Int {
    try await PhylacteryClient.withClient(configuration: .init(url: url, options: TestDatabase.defaultOptions)) { client in
        Int(try await client.query(sql).collect().first?.decode(Int64.self) ?? -1)
    }
}

let poolerLogger = Logger(label: "phylactery.tests.pooler")

/// Advisory locks held in the test's database, by anyone: what a session lock left behind on a pooled
/// server session would show up as.
let heldAdvisoryLocks: PostgresQuery =
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"

/// Transaction poolers (PgBouncer in `pool_mode = transaction`): detection, session connections and
/// every fallback, against a real PgBouncer in front of the test server.
///
/// Not part of the pass that runs the whole suite through a PgBouncer (it would put one pooler behind
/// another): scripts/test runs these in its main pass.
@Suite("Transaction poolers", .timeLimit(.minutes(5)))
struct PoolerTests {
    @Test("a transaction pooler is detected; a direct connection and a pooler in session mode are not")
    func detection() async throws {
        try await withPooledDatabase("pooler_detect") { client, directURL, _ in
            try await client.prepare()
            #expect(client.sessionFeatures == SessionFeatures(transactionPooler: true, usesSessionURL: false))
            #expect(client.sessionFeatures?.sessionAvailable == false)
            #expect(client.sessionFeatures?.fallbacks.count == 3)
            // Without a session URL, nothing that needs a session is handed out.
            let refused = await #expect(throws: PhylacteryError.self) { try await client.withSessionConnection { _ in 1 } }
            #expect(refused?.code == .sessionUnavailable, "\(String(describing: refused))")
            #expect(refused?.message.contains("sessionURL") == true)
            try await PhylacteryClient.withClient(configuration: .init(url: directURL, options: TestDatabase.defaultOptions)) { direct in
                try await direct.prepare()
                #expect(direct.sessionFeatures == SessionFeatures(transactionPooler: false, usesSessionURL: false))
            }
        }
        try await withPooledDatabase("pooler_session_mode", poolMode: "session") { client, _, _ in
            try await client.prepare()
            #expect(client.sessionFeatures?.transactionPooler == false)
            // A session pooler keeps one server session per client connection: the pool's connections do.
            let pids = try await client.withSessionConnection { connection in
                var pids: [Int32] = []
                for _ in 0..<3 {
                    pids.append(try await connection.query("SELECT pg_backend_pid()", logger: poolerLogger).collect().first!.decode(Int32.self))
                }
                return pids
            }
            #expect(Set(pids).count == 1, "\(pids)")
        }
    }

    @Test("with a session URL, session connections go to it: their session lasts; everything else goes through the pooler")
    func sessionURL() async throws {
        try await withPooledDatabase("pooler_session_url", sessionURL: true) { client, directURL, bouncer in
            try await client.prepare()
            #expect(client.sessionFeatures == SessionFeatures(transactionPooler: true, usesSessionURL: true))
            let (settings, port) = try await client.withSessionConnection { connection in
                _ = try await connection.query("SET application_name = 'phylactery-session-test'", logger: poolerLogger).collect()
                var settings: [String] = []
                for _ in 0..<3 {
                    settings.append(try await connection.query("SELECT current_setting('application_name')", logger: poolerLogger).collect().first!.decode(String.self))
                }
                let port = try await connection.query("SELECT coalesce(inet_server_port(), 0)", logger: poolerLogger).collect().first!.decode(Int32.self)
                return (settings, port)
            }
            #expect(settings == Array(repeating: "phylactery-session-test", count: 3))
            // The session connection is not the pooler's port; an ordinary statement is.
            #expect(Int(port) != bouncer.port)
            if case .tcp(_, let directPort) = directURL.endpoint { #expect(Int(port) == directPort) }
            let report = await client.healthReport()
            let sessions = report.checks.first { $0.name == "sessions" }
            #expect(sessions?.status == .ok, "\(report)")
            #expect(sessions?.detail.contains("use the session URL") == true, "\(report)")
        }
    }

    @Test("doctor's sessions check: a warning listing the fallbacks without a session URL, a failure when the session URL is a pooler too")
    func doctor() async throws {
        try await withPooledDatabase("pooler_doctor") { client, _, bouncer in
            let report = await client.healthReport()
            let sessions = try #require(report.checks.first { $0.name == "sessions" }, "\(report)")
            #expect(sessions.status == .warning, "\(report)")
            #expect(sessions.detail.contains("transaction pooler detected") && sessions.detail.contains("poll"), "\(report)")
            #expect(sessions.fix?.contains("PHYLACTERY_DATABASE_SESSION_URL") == true, "\(report)")
            #expect(report.isHealthy)
            var options = TestDatabase.defaultOptions
            options.sessionURL = bouncer.url
            try await PhylacteryClient.withClient(configuration: .init(url: bouncer.url, options: options)) { wrong in
                let report = await wrong.healthReport()
                #expect(report.checks.first { $0.name == "sessions" }?.status == .failed, "\(report)")
                #expect(!report.isHealthy)
            }
        }
    }

    @Test("queue workers through a transaction pooler: without a session URL they poll (no LISTEN) and every job runs once; with one they LISTEN")
    func queue() async throws {
        for withSession in [false, true] {
            try await withPooledDatabase("pooler_queue_\(withSession)", sessionURL: withSession, connections: 8) { client, directURL, _ in
                try await Migrator(client: client, federation: try Federation.standard(extensions: [])).apply(allowing: [])
                try await client.execute("CREATE TABLE public.effects (job_id uuid NOT NULL, n int NOT NULL)")
                let ghouls = Ghouls(client: client, handlers: effectHandlers(), configuration: quickConfiguration())
                try await whileRunning(ghouls) {
                    if withSession {
                        try await eventually("the listener is up on the session URL") { ghouls.isListening }
                    }
                    try await client.transaction { tx in _ = try await tx.enqueue(contentsOf: (0..<50).map { Effect(n: $0) }) }
                    try await eventually("every job completed") {
                        try await count(client, "SELECT count(*) FROM queue.jobs WHERE state = 'completed'") == 50
                    }
                    #expect(ghouls.isListening == withSession)
                }
                #expect(try await count(client, "SELECT count(*) FROM public.effects") == 50)
                #expect(try await count(client, "SELECT count(DISTINCT n) FROM public.effects") == 50)
                // Nothing a session would have kept stays behind on the server's pooled sessions.
                #expect(try await direct(directURL, heldAdvisoryLocks) == 0)
            }
        }
    }

    @Test("periodic jobs through a transaction pooler without a session URL: no leader lock, each fire enqueued once by two processes")
    func periodic() async throws {
        try await withPooledDatabase("pooler_periodic", connections: 10) { client, directURL, _ in
            try await Migrator(client: client, federation: try Federation.standard(extensions: [])).apply(allowing: [])
            try await client.execute("CREATE TABLE public.effects (job_id uuid NOT NULL, n int NOT NULL)")
            var configuration = quickConfiguration()
            configuration.periodicJobs = [PeriodicJob(name: "tick", schedule: .every(.milliseconds(500))) { Effect(n: 0) }]
            let a = Ghouls(client: client, handlers: effectHandlers(), configuration: configuration)
            let b = Ghouls(client: client, handlers: effectHandlers(), configuration: configuration)
            let begin = Date()
            try await whileRunning(a) {
                try await whileRunning(b) {
                    try await eventually("four fires") {
                        try await count(client, "SELECT count(*) FROM queue.jobs WHERE unique_key LIKE 'periodic:tick:%'") >= 4
                    }
                    // A leader's session lock taken through the pooler would stay on a server session: there is
                    // none (the fires' own transaction-scoped lock comes and goes with each enqueue).
                    let leaderKey = UInt64(bitPattern: 0x7068_796c_6163_7402)
                    #expect(try await direct(directURL, """
                        SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = \(Int64(leaderKey >> 32))
                          AND objid = \(Int64(leaderKey & 0xFFFF_FFFF)) AND objsubid = 1
                          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                        """) == 0)
                }
            }
            let elapsed = Date().timeIntervalSince(begin)
            let fires = try await count(client, "SELECT count(*) FROM queue.jobs WHERE unique_key LIKE 'periodic:tick:%'")
            let distinct = try await count(client, "SELECT count(DISTINCT unique_key) FROM queue.jobs WHERE unique_key LIKE 'periodic:tick:%'")
            #expect(fires == distinct)
            #expect(fires >= 4 && Double(fires) <= elapsed / 0.5 + 1, "fires: \(fires) in \(elapsed) s")
        }
    }

    @Test("migrations through a transaction pooler, with or without a session URL: two at once apply once, concurrent builds finish, no lock or setting stays behind",
          arguments: [false, true])
    func migrations(withSession: Bool) async throws {
        try await withPooledDatabase("pooler_migrate_\(withSession)", sessionURL: withSession, connections: 6) { client, directURL, _ in
            let before = try MigrationTests.migrator(client, [MigrationTests.notes([MigrationTests.title])])
            try await before.apply(allowing: [])
            try await client.execute("INSERT INTO public.notes (id, title) VALUES (gen_random_uuid(), 'a'), (gen_random_uuid(), 'b')")
            // A unique constraint on an existing table: built CONCURRENTLY, outside the migration's transaction.
            let after = try MigrationTests.migrator(client, [MigrationTests.notes([ModelSchema.column("title", String.self, unique: true)])])
            #expect(try await after.plan().upStatements.contains { $0.sql.contains("CONCURRENTLY") })
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<2 { group.addTask { try await after.apply(allowing: []) } }
                try await group.waitForAll()
            }
            #expect(try await after.plan().isEmpty)
            #expect(try await count(client, "SELECT count(*) FROM public.phylactery_migrations") == 2)
            #expect(try await count(client, "SELECT count(*) FROM pg_index WHERE indrelid = 'public.notes'::regclass AND NOT indisvalid") == 0)
            #expect(try await direct(directURL, heldAdvisoryLocks) == 0)
            // No session setting of the migrator's reached the pooler's server sessions.
            for _ in 0..<20 {
                let row = try await client.query("SELECT current_setting('lock_timeout'), current_setting('statement_timeout')").collect().first!
                let (lock, statement) = try row.decode((String, String).self)
                #expect(lock == "0" && statement == "0", "lock_timeout \(lock), statement_timeout \(statement)")
            }
        }
    }
}
