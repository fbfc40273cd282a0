import ArgumentParser
import Foundation
import Logging
import Phylactery
import PhylacteryTestSupport
import PostgresNIO
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The failover run's job: its handler writes one effect row through the job's transaction, with the
/// port of the server that wrote it.
struct FailoverEffect: Job {
    static let kind = "failover.effect"
    static let maxAttempts = 1000
    var n: Int
    /// Milliseconds of work before the write, so the kill lands while jobs run.
    var work: Int
}

/// The failover run's periodic job: fires every second, so the scheduler's leadership is seen moving.
struct FailoverTick: Job {
    static let kind = "failover.tick"
    static let maxAttempts = 1000
}

/// The replication the pair runs with.
enum ReplicationMode: String, ExpressibleByArgument, CaseIterable {
    /// A synchronous standby (`synchronous_commit = remote_apply`): nothing acknowledged is lost.
    case sync
    /// An asynchronous standby: what the primary acknowledged but had not sent yet is lost.
    case async
}

/// The queue across a failover: a primary and its standby (``ReplicatedPair``), workers on a client
/// that knows both hosts, the primary SIGKILLed mid-run, the standby promoted, and the workers and
/// their clients going on without a restart.
///
/// With `--mode sync` every job must complete, every effect exist exactly once, nothing be stuck,
/// nothing acknowledged be lost and nothing run twice. With `--mode async` it reports what the
/// failover lost (commits the old primary acknowledged that never reached the standby: those jobs
/// ran again) and still requires that nothing is stuck, every effect exists exactly once on the new
/// primary and no job ran again unless its earlier commit was lost. It prints the failover time:
/// from the SIGKILL to the first job completed on the new primary. Last line: `RESULT {json}`.
struct Failover: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Kill the primary of a replicated pair mid-run, promote the standby; the workers go on. Checks what was lost.")
    @Option(help: "sync: a synchronous (remote_apply) standby; async: an asynchronous one.") var mode: ReplicationMode
    @Option(help: "Jobs to enqueue.") var jobs = 5000
    @Option(help: "Worker services in this process, each with its own client.") var workers = 2
    @Option(help: "Handlers running at once per worker.") var concurrency = 16
    @Option(help: "Kill the primary once this fraction of the jobs completed.") var killAt = 0.4
    @Option(help: "Random seed for the jobs' work.") var seed: UInt64 = 20261130
    @Option(help: "Give up after this many seconds.") var timeout: Double = 600

    func validate() throws {
        guard self.jobs > 0, self.workers > 0, self.concurrency > 0 else { throw ValidationError("jobs, workers and concurrency must be positive") }
        guard self.killAt > 0, self.killAt < 1 else { throw ValidationError("--kill-at must be between 0 and 1") }
    }

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = ProcessInfo.processInfo.environment["PHYLACTERY_VERBOSE"] == nil ? .error : .debug
            return handler
        }
        let started = ContinuousClock.now
        let pair = try await ReplicatedPair.start("failover-\(self.mode.rawValue)", mode: self.mode == .sync ? .synchronous : .asynchronous)
        let report: FailoverReport
        do {
            report = try await self.exercise(pair, started: started)
        } catch {
            await pair.stop()
            throw error
        }
        await pair.stop()
        for line in report.lines { say(line) }
        if report.failures.isEmpty {
            say("failover: PASS — \(self.mode == .sync ? "nothing lost, " : "")every job completed, every effect exactly once, nothing stuck, nothing run twice without a lost commit")
        } else {
            say("failover: FAIL — \(report.failures.joined(separator: "; "))")
        }
        say("RESULT \(report.json)")
        if !report.failures.isEmpty { throw ExitCode.failure }
    }

    private func exercise(_ pair: ReplicatedPair, started: ContinuousClock.Instant) async throws -> FailoverReport {
        guard case .tcp(_, let oldPort) = pair.primaryURL.endpoint, case .tcp(_, let newPort) = pair.standbyURL.endpoint else {
            throw ValidationError("the pair's servers must listen on TCP")
        }
        say("failover: \(self.mode.rawValue) pair: primary on port \(oldPort), standby on port \(newPort); client on \(pair.clusterURL)")

        // The schema and the jobs, on the primary; then wait until the standby has them all, so the
        // run starts from jobs both servers know.
        var random = SeededRandom(seed: self.seed)
        let work = (0..<self.jobs).map { _ in Int.random(in: 0...20, using: &random) }
        let ids: [UUID] = try await PhylacteryClient.withClient(configuration: .init(url: pair.primaryURL)) { client in
            try await Migrator(client: client, federation: try Federation.standard(extensions: [])).apply(allowing: [])
            // No key on job_id: a second effect for a job must be seen, not refused.
            try await client.execute("""
                CREATE TABLE public.failover_effects (
                    job_id uuid NOT NULL, n int NOT NULL, server_port int NOT NULL, written_at timestamptz NOT NULL DEFAULT clock_timestamp())
                """)
            return try await client.enqueue(contentsOf: (0..<self.jobs).map { FailoverEffect(n: $0, work: work[$0]) }).map(\.id)
        }
        try await eventually("the standby has every job", timeout: .seconds(60), retryingErrors: true) {
            try await Observer.count(pair.standbyURL, "SELECT count(*) FROM queue.jobs WHERE kind = 'failover.effect'") == self.jobs
        }
        say("failover: enqueued \(self.jobs) jobs; the standby has them")

        let ledger = FailoverLedger()
        var handlers = JobHandlers()
        handlers.register(FailoverEffect.self) { job, context in
            ledger.started(context.id)
            if job.work > 0 { try await Task.sleep(for: .milliseconds(job.work)) }
            do {
                let port = try await context.transaction { tx in
                    try await tx.query("""
                        INSERT INTO public.failover_effects (job_id, n, server_port) VALUES (\(context.id), \(job.n), inet_server_port()) RETURNING server_port
                        """).collect().first?.decode(Int32.self) ?? 0
                }
                ledger.committed(context.id, port: Int(port))
            } catch let error as PhylacteryError {
                if error.code == .commitOutcomeUnknown { ledger.unknownOutcome(context.id) }
                ledger.failed(error.code.description)
                throw error
            } catch {
                ledger.failed(String(describing: type(of: error)))
                throw error
            }
        }
        handlers.register(FailoverTick.self) { _, _ in ledger.ticked() }

        // The workers: each its own client on both hosts, LISTENing, one of them leading the periodic
        // scheduler. The lease is the default's (30 s), far above the failover's few seconds: the
        // leases taken on the old primary are honoured on the new one.
        var options = PhylacteryClient.Configuration.Options()
        options.maximumConnections = self.concurrency + 4
        let tick = PeriodicJob(name: "failover.tick", schedule: .every(.seconds(1))) { FailoverTick() }
        let fleet = (0..<self.workers).map { index in
            let client = PhylacteryClient(configuration: .init(url: pair.clusterURL, options: options), logger: Logger(label: "failover.client.\(index)"))
            let ghouls = Ghouls(client: client, handlers: handlers, configuration: GhoulsConfiguration(
                queues: [JobOptions.defaultQueue: QueueConfiguration(concurrency: self.concurrency)],
                lease: .seconds(30), heartbeatInterval: .seconds(2), pollInterval: .milliseconds(500), rescueInterval: .seconds(2),
                shutdownGracePeriod: .seconds(10),
                backoff: RetryBackoff(initial: .milliseconds(50), multiplier: 2, maximum: .seconds(1)), retention: nil,
                periodicJobs: [tick], workerName: "failover-\(index)-\(getpid())"), logger: Logger(label: "failover.ghouls.\(index)"))
            return (client: client, ghouls: ghouls)
        }
        let clientTasks = fleet.map { member in Task { try await member.client.run() } }
        let ghoulTasks = fleet.map { member in Task { try await member.ghouls.run() } }
        func stopFleet() async -> [String] {
            for member in fleet { member.ghouls.beginShutdown() }
            var problems = [String]()
            for (index, task) in ghoulTasks.enumerated() {
                do { try await task.value } catch { problems.append("worker \(index) ended with \(error)") }
            }
            for task in clientTasks { task.cancel() }
            return problems
        }

        let deadline = ContinuousClock.now + .seconds(self.timeout)
        var killedAt: ContinuousClock.Instant?
        var promotedAt: ContinuousClock.Instant?
        var promotedServerTime: Double = 0
        var lagBytesAtKill: Int64 = -1
        var completedOnOldAtKill = 0
        var states = JobStates()
        do {
            while ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(200))
                let url = killedAt == nil ? pair.primaryURL : pair.standbyURL
                guard let seen = try? await Observer.states(url) else { continue }
                states = seen
                if states.completed + states.other == self.jobs { break }
                if killedAt == nil && Double(states.completed) >= Double(self.jobs) * self.killAt {
                    lagBytesAtKill = (try? await Observer.count(pair.primaryURL, """
                        SELECT coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)), -1)::int8 FROM pg_stat_replication
                        """)).map(Int64.init) ?? -1
                    completedOnOldAtKill = states.completed
                    try pair.killPrimary()
                    killedAt = ContinuousClock.now
                    say("failover: SIGKILL to the primary at \(states.completed) completed, \(states.running) running (replay lag \(lagBytesAtKill) bytes)")
                    try await pair.promoteStandby()
                    promotedAt = ContinuousClock.now
                    promotedServerTime = try await Observer.double(pair.standbyURL, "SELECT extract(epoch FROM now())::float8")
                    say("failover: standby promoted after \(Self.milliseconds(promotedAt! - killedAt!)) ms")
                } else {
                    say("failover: \(states.completed) completed, \(states.running) running, \(states.available) waiting")
                }
            }
        } catch {
            _ = await stopFleet()
            throw error
        }
        guard let killedAt, let promotedAt else {
            _ = await stopFleet()
            throw ValidationError("the run ended before the primary was killed (\(states.completed) completed); lower --kill-at")
        }

        // After the jobs: the listeners and the periodic leadership must be back, on the new primary.
        let listenersBack = (try? await eventually("every worker LISTENs on the new primary", timeout: .seconds(60), retryingErrors: true) {
            guard fleet.allSatisfy(\.ghouls.isListening) else { return false }
            return try await Observer.count(pair.standbyURL, """
                SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'
                """) >= fleet.count
        }) != nil
        let ticksAfter = { try await Observer.count(pair.standbyURL, """
            SELECT count(*) FROM queue.jobs WHERE kind = 'failover.tick' AND created_at > to_timestamp(\(promotedServerTime))
            """) }
        let leaderBack = (try? await eventually("a periodic fire enqueued on the new primary", timeout: .seconds(60), retryingErrors: true) { try await ticksAfter() > 0 }) != nil

        let shutdownProblems = await stopFleet()
        let finalStates = try await Observer.states(pair.standbyURL)
        let effects = try await Observer.withConnection(pair.standbyURL) { connection in
            var effects = [UUID: [Int]]()
            for row in try await connection.query("SELECT job_id, server_port FROM public.failover_effects", logger: Observer.logger).collect() {
                let (job, port) = try row.decode((UUID, Int32).self)
                effects[job, default: []].append(Int(port))
            }
            return effects
        }
        let rescued = try await Observer.count(pair.standbyURL, """
            SELECT count(*) FROM queue.jobs WHERE kind = 'failover.effect' AND errors @> '[{"reason": "lease_expired"}]'
            """)
        let ticks = try await ticksAfter()

        let audit = FailoverAudit(effects: effects, jobs: Set(ids), oldPort: oldPort, newPort: newPort)
        let commits = ledger.commits
        let lost = audit.lostCommits(commits)
        let twice = audit.committedTwice(commits)
        let unjustified = audit.unjustifiedReruns(commits)
        let unknown = ledger.unknown
        let firstOnNew = ledger.firstCommit(on: newPort, after: killedAt)
        let failoverTime = firstOnNew.map { $0.at - killedAt }
        let elapsed = ContinuousClock.now - started

        var report = FailoverReport()
        report.lines = [
            "failover: \(self.mode.rawValue), \(self.jobs) jobs, \(self.workers) workers × \(self.concurrency), primary killed at \(completedOnOldAtKill) completed, \(elapsed)",
            "failover: SIGKILL → standby promoted \(Self.milliseconds(promotedAt - killedAt)) ms; SIGKILL → first job completed on the new primary \(failoverTime.map { "\(Self.milliseconds($0)) ms" } ?? "never")",
            "failover: on the new primary: completed \(finalStates.completed), running \(finalStates.running), waiting \(finalStates.available), other final states \(finalStates.other)",
            "failover: effect rows \(effects.values.map(\.count).reduce(0, +)) for \(self.jobs) jobs: missing \(audit.missing), duplicated \(audit.duplicated)",
            "failover: commits acknowledged \(commits.count) (\(commits.filter { $0.port == newPort }.count) by the new primary); acknowledged by the old primary and lost \(lost.count); jobs committed twice \(twice.count), of them without a lost commit \(unjustified.count)",
            "failover: commits with an unknown outcome \(unknown.values.reduce(0, +)) (\(audit.unknownButCommitted(unknown, commits)) of them had committed); rescued after an expired lease \(rescued)",
            "failover: attempts failed by kind \(ledger.failures.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", "))",
            "failover: listeners back on the new primary: \(listenersBack); periodic fires enqueued on the new primary: \(ticks)",
        ]
        if finalStates.completed != self.jobs { report.failures.append("\(self.jobs - finalStates.completed) jobs not completed") }
        if finalStates.running != 0 || finalStates.available != 0 { report.failures.append("\(finalStates.running) jobs stuck running, \(finalStates.available) waiting") }
        if audit.missing != 0 { report.failures.append("\(audit.missing) jobs without an effect") }
        if audit.duplicated != 0 { report.failures.append("\(audit.duplicated) jobs with more than one effect") }
        if !unjustified.isEmpty { report.failures.append("\(unjustified.count) jobs ran again although their completion was not lost") }
        if commits.filter({ $0.port == newPort }).count != Set(commits.filter { $0.port == newPort }.map(\.job)).count {
            report.failures.append("a job was committed twice on the new primary")
        }
        if failoverTime == nil { report.failures.append("no job completed on the new primary after the kill") }
        if !listenersBack { report.failures.append("the listeners did not come back on the new primary") }
        if !leaderBack { report.failures.append("no periodic fire was enqueued on the new primary (the leadership did not move)") }
        report.failures.append(contentsOf: shutdownProblems)
        if self.mode == .sync {
            if !lost.isEmpty { report.failures.append("\(lost.count) acknowledged commits lost with synchronous replication") }
            if !twice.isEmpty { report.failures.append("\(twice.count) jobs committed twice with synchronous replication") }
            if rescued != 0 { report.failures.append("\(rescued) jobs lost their lease (the failover outlasted it)") }
        }
        let fields: [(String, String)] = [
            ("mode", "\"\(self.mode.rawValue)\""), ("jobs", "\(self.jobs)"), ("workers", "\(self.workers)"), ("concurrency", "\(self.concurrency)"),
            ("failover_ms", failoverTime.map { "\(Self.milliseconds($0))" } ?? "null"),
            ("promote_ms", "\(Self.milliseconds(promotedAt - killedAt))"),
            ("completed_at_kill", "\(completedOnOldAtKill)"), ("lag_bytes_at_kill", "\(lagBytesAtKill)"),
            ("commits_lost", "\(lost.count)"), ("jobs_committed_twice", "\(twice.count)"), ("unjustified_reruns", "\(unjustified.count)"),
            ("unknown_commit_outcomes", "\(unknown.values.reduce(0, +))"), ("unknown_but_committed", "\(audit.unknownButCommitted(unknown, commits))"),
            ("completed", "\(finalStates.completed)"), ("stuck", "\(finalStates.running + finalStates.available)"),
            ("effects_missing", "\(audit.missing)"), ("effects_duplicated", "\(audit.duplicated)"), ("rescued", "\(rescued)"),
            ("listeners_back", "\(listenersBack)"), ("periodic_fires_after", "\(ticks)"),
            ("elapsed_s", String(format: "%.1f", Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)),
            ("pass", "\(report.failures.isEmpty)"),
        ]
        report.json = "{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}"
        return report
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }
}
