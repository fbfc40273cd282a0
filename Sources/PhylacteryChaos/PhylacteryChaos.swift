import ArgumentParser
import Foundation
import Logging
import Phylactery
import PhylacteryEmbedded
import PhylacteryTestSupport
import PostgresNIO
import ServiceLifecycle
import Synchronization
import UnixSignals
#if canImport(Glibc)
import Glibc
#endif

/// The queue's crash test: jobs whose effect must happen exactly once, while worker processes are
/// killed with SIGKILL at random moments and the database server is restarted mid-run.
///
/// `phylactery-chaos run` starts a private server (so it can restart it), enqueues the jobs,
/// runs worker processes (`phylactery-chaos worker`, this same executable), kills and restarts
/// them, restarts the server once, and at the end checks: every job completed, every effect row
/// present exactly once, nothing left running. It prints the counts and exits non-zero on any
/// violation. The test command (`scripts/test`) runs it.
@main
struct PhylacteryChaos: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "phylactery-chaos",
        abstract: "Crash test of the job queue: SIGKILLed workers and a server restart, effects exactly once.",
        subcommands: [Run.self, Worker.self, PgBouncerCommand.self], defaultSubcommand: Run.self)
}

/// The crash test's job: its handler writes one effect row through the job's transaction.
struct ChaosEffect: Job {
    static let kind = "chaos.effect"
    static let maxAttempts = 1000
    var n: Int
    /// Milliseconds of work before the write, so kills land while jobs run.
    var work: Int
}

/// Diagnostics: where each running handler is, so a stall can be located.
let phases = Mutex<[UUID: (String, ContinuousClock.Instant)]>([:])

struct Worker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "One worker process (started by `run`).")
    @Option var url: String
    @Option var concurrency = 16

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = ProcessInfo.processInfo.environment["PHYLACTERY_VERBOSE"] == nil ? .error : .debug
            return handler
        }
        var handlers = JobHandlers()
        handlers.register(ChaosEffect.self) { job, context in
            phases.withLock { $0[context.id] = ("sleep", .now) }
            defer { phases.withLock { _ = $0.removeValue(forKey: context.id) } }
            if job.work > 0 { try await Task.sleep(for: .milliseconds(job.work)) }
            phases.withLock { $0[context.id] = ("transaction", .now) }
            try await context.transaction { tx in
                phases.withLock { $0[context.id] = ("body", .now) }
                try await tx.execute("INSERT INTO public.chaos_effects (job_id, n) VALUES (\(context.id), \(job.n))")
                phases.withLock { $0[context.id] = ("commit", .now) }
            }
        }
        Task {
            while true {
                try await Task.sleep(for: .seconds(3))
                let stuck = phases.withLock { $0.filter { ContinuousClock.now - $0.value.1 > .seconds(3) } }
                for (id, phase) in stuck { FileHandle.standardError.write(Data("worker \(getpid()): job \(id) in phase \(phase.0) for \(ContinuousClock.now - phase.1)\n".utf8)) }
            }
        }
        var options = PhylacteryClient.Configuration.Options()
        options.maximumConnections = 8
        let client = PhylacteryClient(configuration: .init(url: try DatabaseURL(parsing: self.url), options: options))
        let ghouls = Ghouls(client: client, handlers: handlers, configuration: GhoulsConfiguration(
            queues: ["default": QueueConfiguration(concurrency: self.concurrency)],
            lease: .seconds(2), heartbeatInterval: .milliseconds(500), pollInterval: .milliseconds(250),
            rescueInterval: .milliseconds(500), shutdownGracePeriod: .seconds(5),
            backoff: RetryBackoff(initial: .milliseconds(50), multiplier: 2, maximum: .seconds(1)), retention: nil,
            workerName: "chaos-\(getpid())"))
        // SIGTERM reaches the ghouls as a graceful shutdown: they drain, then the client stops.
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: client), .init(service: ghouls, successTerminationBehavior: .gracefullyShutdownGroup)],
            gracefulShutdownSignals: [.sigterm], logger: Logger(label: "chaos")))
        try await group.run()
    }
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the crash test and check its invariants.")
    @Option(help: "Jobs to enqueue.") var jobs = 10_000
    @Option(help: "Worker processes running at once.") var workers = 3
    @Option(help: "Random seed for the kill schedule.") var seed: UInt64 = 20261126
    @Option(help: "Give up after this many seconds.") var timeout: Double = 900
    @Flag(help: "Restart the server but kill no worker (to watch recovery alone).") var noKills = false

    func run() async throws {
        let started = ContinuousClock.now
        let home = try TestDatabase.temporaryHome("chaos")
        let server = EmbeddedServer(configuration: .init(home: home, pgBinOverride: try TestDatabase.installedBinaries()))
        defer {
            _ = try? server.stop()
            try? FileManager.default.removeItem(atPath: home)
        }
        let outcome = try await server.start(installIfNeeded: false)
        say("chaos: private server pid \(outcome.pid) at \(home)")
        let url = outcome.url
        var random = SeededRandom(seed: self.seed)

        try await PhylacteryClient.withClient(configuration: .init(url: url)) { client in
            try await Migrator(client: client, federation: try Federation.standard(extensions: [])).apply(allowing: [])
            try await client.execute("CREATE TABLE public.chaos_effects (job_id uuid NOT NULL, n int NOT NULL)")
            var jobs = [ChaosEffect]()
            for n in 0..<self.jobs { jobs.append(ChaosEffect(n: n, work: Int.random(in: 0...20, using: &random))) }
            try await client.enqueue(contentsOf: jobs)
        }
        say("chaos: enqueued \(self.jobs) jobs")

        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        func spawn() throws -> Process {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = ["worker", "--url", url.description]
            try process.run()
            return process
        }
        var processes = try (0..<self.workers).map { _ in try spawn() }
        var kills = 0, restartedServer = false
        var final = (completed: 0, running: 0, available: 0, other: 0)
        let deadline = ContinuousClock.now + .seconds(self.timeout)

        // Chaos until every job is final.
        while ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(Int64.random(in: 300...1200, using: &random)))
            final = try await Self.states(url)
            let done = final.completed + final.other
            say("chaos: \(final.completed) completed, \(final.running) running, \(final.available) waiting, \(kills) kills\(restartedServer ? ", server restarted" : "")")
            if done == self.jobs { break }
            if final.running > 0 && final.available == 0 {
                // Progress stalls only on running jobs: show who holds them, for the log.
                try? await PhylacteryClient.withClient(configuration: .init(url: url)) { client in
                    let rows = try await client.query("""
                        SELECT worker, count(*), max(lease_expires_at - now())::text FROM queue.jobs WHERE state = 'running' GROUP BY worker
                        """).collect()
                    for row in rows { say("chaos:   held by \(try row.decode((String?, Int64, String?).self))") }
                    let activity = try await client.query("""
                        SELECT state, coalesce(wait_event, ''), left(query, 60), count(*) FROM pg_stat_activity
                        WHERE datname = current_database() AND pid <> pg_backend_pid() GROUP BY 1, 2, 3
                        """).collect()
                    for row in activity { say("chaos:   backend \(try row.decode((String?, String, String?, Int64).self))") }
                }
            }
            if !restartedServer && final.completed >= self.jobs * 2 / 5 {
                let stop = try server.stop()
                say("chaos: database server stopped (\(stop)); starting it again")
                try await Task.sleep(for: .milliseconds(500))
                let again = try await server.start(installIfNeeded: false)
                say("chaos: database server restarted (pid \(again.pid))")
                restartedServer = true
                continue
            }
            if self.noKills { continue }
            let victim = Int.random(in: 0..<processes.count, using: &random)
            kill(processes[victim].processIdentifier, SIGKILL)
            processes[victim].waitUntilExit()
            kills += 1
            processes[victim] = try spawn()
        }

        // Stop the workers gracefully: SIGTERM drains.
        say("chaos: sending SIGTERM to the workers")
        for process in processes { kill(process.processIdentifier, SIGTERM) }
        for process in processes { process.waitUntilExit() }
        say("chaos: workers exited")
        let terminations = processes.map(\.terminationStatus)

        let (effects, distinct, jobsWithoutEffect) = try await PhylacteryClient.withClient(configuration: .init(url: url)) { client in
            let row = try await client.query("""
                SELECT (SELECT count(*) FROM public.chaos_effects), (SELECT count(DISTINCT job_id) FROM public.chaos_effects),
                       (SELECT count(*) FROM queue.jobs j WHERE NOT EXISTS (SELECT 1 FROM public.chaos_effects e WHERE e.job_id = j.id))
                """).collect().first!
            return try row.decode((Int64, Int64, Int64).self)
        }
        final = try await Self.states(url)
        let elapsed = ContinuousClock.now - started
        say("""
            chaos: \(self.jobs) jobs, \(kills) worker processes killed with SIGKILL, server restarted: \(restartedServer), \(elapsed)
            chaos: completed \(final.completed), running \(final.running), waiting \(final.available), other final states \(final.other)
            chaos: effect rows \(effects), distinct jobs with an effect \(distinct), jobs without an effect \(jobsWithoutEffect)
            chaos: workers' exit statuses after SIGTERM: \(terminations)
            """)
        var failures = [String]()
        if !restartedServer { failures.append("the server was never restarted") }
        if final.completed != self.jobs { failures.append("\(self.jobs - final.completed) jobs not completed") }
        if final.running != 0 { failures.append("\(final.running) jobs stuck running") }
        if effects != self.jobs { failures.append("\(effects) effect rows for \(self.jobs) jobs") }
        if distinct != self.jobs { failures.append("\(distinct) distinct effects for \(self.jobs) jobs") }
        if terminations.contains(where: { $0 != 0 }) { failures.append("a worker did not exit cleanly after SIGTERM") }
        if failures.isEmpty {
            say("chaos: PASS — every job completed, every effect exactly once, nothing stuck")
        } else {
            say("chaos: FAIL — \(failures.joined(separator: "; "))")
            throw ExitCode.failure
        }
    }

    static func states(_ url: DatabaseURL) async throws -> (completed: Int, running: Int, available: Int, other: Int) {
        // A fresh client each time: the server may be down or restarting.
        for attempt in 1...60 {
            do {
                return try await PhylacteryClient.withClient(configuration: .init(url: url)) { client in
                    let rows = try await client.query("SELECT state, count(*) FROM queue.jobs GROUP BY state").collect()
                    var result = (completed: 0, running: 0, available: 0, other: 0)
                    for row in rows {
                        let (state, count) = try row.decode((String, Int64).self)
                        switch state {
                        case "completed": result.completed = Int(count)
                        case "running": result.running = Int(count)
                        case "available": result.available = Int(count)
                        default: result.other += Int(count)
                        }
                    }
                    return result
                }
            } catch {
                if attempt == 60 { throw error }
                try await Task.sleep(for: .milliseconds(500))
            }
        }
        return (0, 0, 0, 0)
    }
}

/// Prints a line at once (unbuffered), so progress shows even when the run is cut short.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
