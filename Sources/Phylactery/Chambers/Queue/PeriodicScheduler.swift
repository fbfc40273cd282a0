import Foundation
import PostgresNIO

/// Enqueues periodic jobs from exactly one process at a time.
///
/// Leadership is a session advisory lock held on the client's session connection (a pooled one, or
/// one to the session URL behind a transaction pooler): whoever holds it schedules; the others try
/// again every few seconds. If the leader dies its session ends and the lock with it. Each fire is
/// enqueued with the unique key `periodic:<name>:<epoch>` (kept "ever"), so even two processes that
/// both believed they led could not enqueue one fire twice.
///
/// Through a transaction pooler without a session URL no lock outlives a transaction, so there is no
/// leader: every process follows the schedule, and each fire is enqueued in a transaction that first
/// takes a transaction-scoped advisory lock (``fireLockKey``, not the leader's key, so a process
/// without a session never waits on one that leads) — fires are written one at a time and the unique
/// key keeps each fire once.
///
/// Every statement on the leader's connection is guarded (``PostgresConnection/collectGuarded(_:timeout:logger:file:line:)``):
/// when the server dies under it — restarted, killed — the statement fails instead of waiting
/// forever, the leader gives up its (already lost) lock and campaigns again, and a shutdown never
/// waits on it.
struct PeriodicScheduler {
    let ghouls: Ghouls
    static let leaderLockKey: Int64 = 0x7068_796c_6163_7402  // "phylact" + 2
    /// Taken per enqueue, in its transaction, when there is no session to lead from.
    static let fireLockKey: Int64 = 0x7068_796c_6163_7403  // "phylact" + 3
    static let retryInterval: Duration = .seconds(5)
    /// The longest the leader waits for an answer on its connection.
    static let statementTimeout: Duration = .seconds(30)

    private func run(_ query: PostgresQuery, on connection: PostgresConnection) async throws -> [PostgresRow] {
        try await connection.collectGuarded(query, timeout: Self.statementTimeout, logger: self.ghouls.logger)
    }

    func run() async {
        if self.ghouls.client.sessionFeatures?.sessionAvailable == false {
            await self.runWithoutSession()
            return
        }
        while !Task.isCancelled {
            do {
                try await self.ghouls.client.withSessionConnection { connection in
                    let leads = try await self.run("SELECT pg_try_advisory_lock(\(Self.leaderLockKey))", on: connection)
                        .first?.decode(Bool.self, context: .default) ?? false
                    guard leads else { return }
                    self.ghouls.logger.info("leading the periodic scheduler", metadata: ["jobs": "\(self.ghouls.configuration.periodicJobs.count)"])
                    do {
                        try await self.lead(transactionLock: false) { _ = try await self.run("SELECT 1", on: connection) }
                    } catch {
                        _ = try? await self.run("SELECT pg_advisory_unlock(\(Self.leaderLockKey))", on: connection)
                        throw error
                    }
                    _ = try? await self.run("SELECT pg_advisory_unlock(\(Self.leaderLockKey))", on: connection)
                }
            } catch {
                if Task.isCancelled { return }
                self.ghouls.logger.warning("periodic scheduler lost its connection; retrying", metadata: ["error": "\(error)"])
            }
            do { try await Task.sleep(for: Self.retryInterval) } catch { return }
        }
    }

    /// Follows the schedule in every process (no session to hold a leader's lock in), each enqueue under
    /// a transaction-scoped lock; a failure backs off and starts again, as a lost leader would.
    private func runWithoutSession() async {
        self.ghouls.logger.info("periodic scheduler without a session: every process proposes each fire; the unique key keeps it once",
                                metadata: ["jobs": "\(self.ghouls.configuration.periodicJobs.count)"])
        while !Task.isCancelled {
            do {
                try await self.lead(transactionLock: true) {}
            } catch {
                if Task.isCancelled { return }
                self.ghouls.logger.warning("periodic scheduler failed; retrying", metadata: ["error": "\(error)"])
            }
            do { try await Task.sleep(for: Self.retryInterval) } catch { return }
        }
    }

    /// Enqueues fires as they fall due until cancelled. `stillLeading` runs between sleeps (the leader
    /// checks that its session, and with it the lock, is alive); `transactionLock` makes each enqueue
    /// take ``fireLockKey`` in its transaction first.
    private func lead(transactionLock: Bool, stillLeading: () async throws -> Void) async throws {
        let jobs = self.ghouls.configuration.periodicJobs
        let start = Date()
        // Fires missed while no process led, for the jobs that want them made up.
        for job in jobs {
            guard let window = job.catchUp,
                  let missed = job.schedule.latestFire(in: start.addingTimeInterval(-window.seconds)...start) else { continue }
            try await self.enqueue(job, fire: missed, caughtUp: true, transactionLock: transactionLock)
        }
        var next = jobs.map { $0.schedule.next(after: start) }
        while !Task.isCancelled {
            guard let soonest = next.compactMap({ $0 }).min() else { return }
            let wait = soonest.timeIntervalSinceNow
            if wait > 0 {
                // Sleep in short steps, checking that the leadership session is still alive.
                try await Task.sleep(for: .milliseconds(Int64(min(wait, 5) * 1000)))
                try await stillLeading()
                continue
            }
            let now = Date()
            for index in jobs.indices {
                guard let planned = next[index] else { continue }
                let step = Self.step(jobs[index], planned: planned, now: now)
                if let fire = step.fire { try await self.enqueue(jobs[index], fire: fire, caughtUp: step.caughtUp, transactionLock: transactionLock) }
                next[index] = step.next
            }
        }
    }

    /// How late a fire may be seen and still count as on time: the leader looks at least every 5 s,
    /// so a later one means the process slept or the clock jumped.
    static let onTimeTolerance: TimeInterval = 60

    /// What the leader does for `job` whose next fire was planned at `planned`, at `now`: at most one
    /// fire to enqueue, and the next planned fire. After a sleep or a clock jump the missed fires are
    /// never enqueued one after another: only the latest, and only when it is on time or the job's
    /// catch-up window covers it. (Pure: tested without a clock.)
    static func step(_ job: PeriodicJob, planned: Date, now: Date) -> (fire: Date?, caughtUp: Bool, next: Date?) {
        guard planned <= now else { return (nil, false, planned) }
        let latest = job.schedule.latestFire(in: planned...now) ?? planned
        let next = job.schedule.next(after: now)
        let lateness = now.timeIntervalSince(latest)
        if lateness <= Self.onTimeTolerance { return (latest, false, next) }
        if let window = job.catchUp, lateness <= window.seconds { return (latest, true, next) }
        return (nil, false, next)
    }

    /// Enqueues one fire; a fire already enqueued (by an earlier leader) comes back as a duplicate.
    private func enqueue(_ job: PeriodicJob, fire: Date, caughtUp: Bool, transactionLock: Bool) async throws {
        let pending = try job.make(fire)
        let enqueued = try await self.ghouls.client.transaction { tx in
            if transactionLock { try await tx.execute("SELECT pg_advisory_xact_lock(\(Self.fireLockKey))") }
            return try await tx.enqueue(contentsOf: [pending])
        }
        self.ghouls.logger.info(caughtUp ? "missed periodic fire enqueued" : "periodic job enqueued", metadata: [
            "name": "\(job.name)", "fire": "\(fire)", "duplicate": "\(enqueued.first?.isDuplicate ?? false)",
        ])
    }
}
