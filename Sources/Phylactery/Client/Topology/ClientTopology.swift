import Logging
import PostgresNIO
import Synchronization

/// The I/O shell of ``TopologyStateMachine`` for a client with several hosts (or a
/// `target_session_attrs` that asks for a role): one pool per host, a probe loop per host on a
/// connection of its own, a ticker, and the requests waiting for a server.
///
/// ``PhylacteryClient`` asks it for a host (``host(for:deadline:)``), leases a connection of that
/// host's pool through it (``withConnection(host:isolation:_:)``, which gives the wait up when the
/// host is lost), and tells it when an operation's connection failed (``connectionFailed(_:refusedWrite:)``).
final class ClientTopology: Sendable {
    typealias Machine = TopologyStateMachine<ContinuousClock>

    /// One single-host URL per host, in the URL's order.
    let hosts: [DatabaseURL]
    /// One pool per host, run by ``PhylacteryClient/run()``.
    let pools: [PostgresClient]
    let options: PhylacteryClient.Configuration.Options
    let logger: Logger
    private let clock = ContinuousClock()
    private let probeSignals: [WakeSignal]
    private let tickSignal = WakeSignal()

    /// What a waiting request is handed.
    enum WaitOutcome: Sendable {
        case host(Int)
        case timedOut
        case cancelled
    }

    private struct Inner: Sendable {
        var machine: Machine
        var waiters: [Int: OneShot<WaitOutcome>] = [:]
        /// Per host, the leases waiting for one of its connections; fulfilled when it is abandoned.
        var leaseGuards: [Int: [Int: OneShot<Void>]] = [:]
        var nextGuard = 0
        var running = false
        /// The last primary known, for ``PhylacteryClient/postgres`` while none is.
        var lastPrimary = 0
        /// Why each host's last probe failed, for messages.
        var lastErrors: [Int: String] = [:]
        /// What each host's last probe found, for the log (a line when it changes).
        var lastKinds: [Int: String] = [:]
    }
    private let inner: Mutex<Inner>

    init(url: DatabaseURL, options: PhylacteryClient.Configuration.Options, logger: Logger) {
        let hosts = url.endpoints.indices.map { url.host($0) }
        self.hosts = hosts
        self.options = options
        self.logger = logger
        self.pools = hosts.map { PostgresClient(configuration: $0.clientConfiguration(options: options), backgroundLogger: logger) }
        self.probeSignals = hosts.map { _ in WakeSignal() }
        let settings = Machine.Settings(
            hostCount: url.endpoints.count, target: url.effectiveTargetSessionAttributes,
            maximumReplicaLag: options.maximumReplicaLag, checkInterval: options.topologyCheckInterval,
            failoverTimeout: options.failoverTimeout)
        self.inner = Mutex(Inner(machine: Machine(settings: settings)))
    }

    /// Whether ``run()`` runs (probes, pools).
    var isRunning: Bool { self.inner.withLock { $0.running } }

    /// The role writes need.
    var target: DatabaseURL.TargetSessionAttributes { self.inner.withLock { $0.machine.settings.target } }

    /// The current primary, else the last one known (host 0 before any is known).
    var currentPrimary: Int {
        self.inner.withLock { $0.machine.primary ?? $0.lastPrimary }
    }

    // MARK: Running

    /// Probes the hosts until cancelled; the pools run beside it.
    func run() async {
        self.inner.withLock { $0.running = true }
        defer {
            let waiters = self.inner.withLock { inner -> [OneShot<WaitOutcome>] in
                inner.running = false
                defer { inner.waiters = [:] }
                return Array(inner.waiters.values)
            }
            for waiter in waiters { waiter.fulfil(.cancelled) }
        }
        self.handle { machine, now in machine.start(at: now) }
        await withDiscardingTaskGroup { group in
            for host in self.hosts.indices {
                group.addTask { await self.probeLoop(host) }
            }
            group.addTask { await self.tickLoop() }
        }
    }

    private func tickLoop() async {
        while !Task.isCancelled {
            let next = self.inner.withLock { $0.machine.nextTick() }
            let timeout = next.map { max(.zero, self.clock.now.duration(to: $0)) }
            await self.tickSignal.wait(timeout: timeout)
            if Task.isCancelled { return }
            self.handle(wakingTheTicker: false) { machine, now in machine.tick(at: now) }
        }
    }

    private func probeLoop(_ host: Int) async {
        var connection: PostgresConnection?
        while !Task.isCancelled {
            await self.probeSignals[host].wait(timeout: nil)
            if Task.isCancelled { break }
            do {
                let observation = try await self.probe(host, connection: &connection)
                let kind = observation.inRecovery ? (observation.replayLag == nil ? "a standby of unknown lag" : "a standby") : (observation.readOnly ? "read-only" : "writable")
                let changed = self.inner.withLock { inner -> Bool in
                    defer { inner.lastKinds[host] = kind }
                    return inner.lastErrors.removeValue(forKey: host) != nil || inner.lastKinds[host] != kind
                }
                if changed {
                    self.logger.debug("\(self.hosts[host].endpoint) is \(kind)", metadata: ["lag": "\(observation.replayLag.map { "\($0)" } ?? "unknown")"])
                }
                self.handle { machine, now in machine.probeSucceeded(host, observation, at: now) }
            } catch {
                if let open = connection {
                    connection = nil
                    await open.closeBounded()
                }
                let reason = Self.reason(error)
                let changed = self.inner.withLock { inner -> Bool in
                    defer { inner.lastErrors[host] = reason; inner.lastKinds[host] = nil }
                    return inner.lastErrors[host] == nil
                }
                if changed { self.logger.debug("\(self.hosts[host].endpoint) does not answer: \(reason)") }
                self.handle { machine, now in machine.probeFailed(host, reason: reason, at: now) }
            }
        }
        if let connection { await connection.closeBounded() }
    }

    /// What one probe asks a server: its role, whether its sessions are read-only, the timeline it
    /// writes on (a promoted standby is on a newer one than the primary it replaced), and a
    /// standby's replay lag.
    ///
    /// The lag is measured on the standby itself, so it is known even when the primary is gone: 0
    /// while everything received is replayed (an idle primary sends nothing, and the standby is then
    /// current however old its last replayed transaction), else the age of the last transaction
    /// replayed — an upper bound, since the first transaction not yet replayed can be younger. It is
    /// unknown (NULL, and no reads go there) while the standby does not stream from a primary
    /// (`pg_stat_wal_receiver`; a role that may not read its status is trusted on the WAL positions)
    /// or has replayed no transaction since it started. It is reckoned with the standby's clock
    /// against the primary's commit times: the two machines' clocks must agree (NTP).
    static let probeSQL = """
        SELECT pg_is_in_recovery(),
               current_setting('transaction_read_only') = 'on',
               CASE WHEN pg_is_in_recovery() THEN NULL
                    ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END,
               CASE WHEN NOT pg_is_in_recovery() THEN NULL
                    WHEN NOT EXISTS (SELECT FROM pg_stat_wal_receiver WHERE coalesce(status, 'streaming') = 'streaming') THEN NULL
                    WHEN pg_last_wal_receive_lsn() IS NULL THEN NULL
                    WHEN pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() THEN 0::float8
                    WHEN pg_last_xact_replay_timestamp() IS NULL THEN NULL
                    ELSE greatest(0, extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp()))::float8 END
        """

    private func probe(_ host: Int, connection: inout PostgresConnection?) async throws -> Machine.Observation {
        if connection?.isClosed ?? true {
            connection = try await PostgresConnection.connect(
                configuration: try self.hosts[host].connectionConfiguration(options: self.options), id: host, logger: self.logger)
        }
        return try await Self.observe(on: connection!, timeout: self.options.connectTimeout, logger: self.logger)
    }

    /// Runs ``probeSQL`` on `connection`.
    static func observe(on connection: PostgresConnection, timeout: Duration, logger: Logger) async throws -> Machine.Observation {
        let rows = try await connection.collectGuarded(PostgresQuery(unsafeSQL: Self.probeSQL), timeout: timeout, logger: logger)
        guard let row = rows.first else {
            throw PhylacteryError(.queryFailed, "the probe returned no row")
        }
        let (inRecovery, readOnly, timeline, lag) = try row.decode((Bool, Bool, Int?, Double?).self)
        return Machine.Observation(
            inRecovery: inRecovery, readOnly: readOnly, timeline: timeline,
            replayLag: lag.map { Duration.seconds($0) })
    }

    static func reason(_ error: any Error) -> String {
        let message = PhylacteryError.wrapping(error, doing: "probing").message
        let prefix = "probing failed: "
        return message.hasPrefix(prefix) ? String(message.dropFirst(prefix.count)) : message
    }

    // MARK: Events from the client

    /// An operation's connection to `host` failed (or, with `refusedWrite`, its write was refused as
    /// read-only): the host is suspect until probed again.
    func connectionFailed(_ host: Int, refusedWrite: Bool = false) {
        self.handle { machine, now in machine.connectionFailed(host, refusedWrite: refusedWrite, at: now) }
    }

    /// The host for `purpose`, waiting for one until `deadline`.
    func host(for purpose: Machine.Purpose, deadline: ContinuousClock.Instant, file: String, line: Int) async throws -> Int {
        let waiter = OneShot<WaitOutcome>()
        let route = self.handleReturning { inner, now -> (Machine.Route, [Machine.Action]) in
            let (route, actions) = inner.machine.route(purpose, deadline: deadline, at: now)
            if case .wait(let id) = route { inner.waiters[id] = waiter }
            return (route, actions)
        }
        switch route {
        case .host(let host):
            return host
        case .wait(let id):
            self.tickSignal.signal()
            // The ticker times waiters out; this timer does too, should the client not be running
            // (requests made before run() wait for it like PostgresNIO's, but not forever).
            let timer = Task {
                try await self.clock.sleep(until: deadline, tolerance: nil)
                waiter.fulfil(.timedOut)
            }
            let outcome = await withTaskCancellationHandler {
                await waiter.wait()
            } onCancel: {
                waiter.fulfil(.cancelled)
            }
            timer.cancel()
            self.inner.withLock { inner in
                inner.machine.cancel(waiter: id)
                inner.waiters[id] = nil
            }
            switch outcome {
            case .host(let host):
                return host
            case .cancelled:
                if Task.isCancelled { throw CancellationError() }
                throw PhylacteryError(.connectionFailed, "The client stopped while the request waited for a server; nothing was sent.", file: file, line: line)
            case .timedOut:
                throw self.timeoutError(purpose, file: file, line: line)
            }
        }
    }

    /// The error of a request that waited `failoverTimeout` in vain, naming what each host was.
    private func timeoutError(_ purpose: Machine.Purpose, file: String, line: Int) -> PhylacteryError {
        let (hosts, errors, settings) = self.inner.withLock { ($0.machine.hosts, $0.lastErrors, $0.machine.settings) }
        let states = hosts.indices.map { index -> String in
            let name = self.hosts[index].endpoint.description
            switch hosts[index].state {
            case .unknown: return "\(name): not reached yet"
            case .down(let reason): return "\(name): \(errors[index] ?? reason)"
            case .up(let observation):
                if observation.inRecovery {
                    let lag = observation.replayLag.map { "replay lag \($0)" } ?? "not streaming from a primary"
                    return "\(name): a standby (\(lag))"
                }
                return "\(name): \(observation.readOnly ? "not in recovery but read-only (default_transaction_read_only)" : "writable")"
            }
        }
        let wanted = purpose == .write ? "a primary (\(settings.target.rawValue))" : "a standby within \(settings.maximumReplicaLag) of replay lag or a primary"
        guard self.isRunning else {
            return PhylacteryError(
                .connectionFailed,
                "No server was found for the request within \(settings.failoverTimeout) (failoverTimeout) because the client is not running: run PhylacteryClient.run() (in a ServiceGroup) before using it; it finds the primary among \(self.hostList). Nothing was sent.",
                file: file, line: line)
        }
        return PhylacteryError(
            .connectionFailed,
            "No server answered as \(wanted) within \(settings.failoverTimeout) (failoverTimeout); nothing was sent. The hosts: \(states.joined(separator: "; ")). If the primary is down, promote a standby (`phylactery db promote`, or pg_promote()); the client finds it by itself.",
            file: file, line: line)
    }

    /// The hosts, for messages.
    var hostList: String { self.hosts.map(\.endpoint.description).joined(separator: ", ") }

    // MARK: Leasing

    /// Leasing a connection of a host failed before anything was sent: it is safe to ask for a host again.
    struct LeaseFailed: Error {
        let host: Int
        let error: any Error
    }

    /// Leases a connection of `host`'s pool for `body`. While the lease waits (a pool whose server has
    /// just died queues requests until its circuit breaker trips, a minute later), the topology may
    /// give the host up; the wait is then cancelled and ``LeaseFailed`` thrown, so the caller asks for
    /// a host again. With `patience`, the wait is also given up after that long (a standby's pool
    /// that is still backing off its reconnection after the standby came back: a read then goes to
    /// the primary rather than wait). Once `body` runs, nothing interrupts it.
    func withConnection<Result>(
        host: Int,
        patience: Duration? = nil,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> sending Result
    ) async throws -> sending Result {
        let pool = self.pools[host]
        let handoff = OneShot<Swift.Result<PostgresConnection, any Error>>()
        let release = OneShot<Void>()
        let (guardID, abandoned) = self.guardLease(on: host)
        let lease = Task {
            do {
                try await pool.withConnection { connection in
                    if handoff.fulfil(.success(connection)) { await release.wait() }
                }
            } catch {
                handoff.fulfil(.failure(error))
            }
        }
        let watcher = Task {
            await abandoned.wait()
            lease.cancel()
        }
        let timer = patience.map { patience in
            Task {
                try await Task.sleep(for: patience)
                abandoned.fulfil(())
            }
        }
        let outcome = await withTaskCancellationHandler {
            await handoff.wait()
        } onCancel: {
            lease.cancel()
        }
        timer?.cancel()
        self.releaseGuard(guardID, on: host)
        abandoned.fulfil(())
        watcher.cancel()
        defer { release.fulfil(()) }
        switch outcome {
        case .success(let connection):
            return try await body(connection)
        case .failure(let error):
            try Task.checkCancellation()
            throw LeaseFailed(host: host, error: error)
        }
    }

    /// A signal fulfilled when `host` is abandoned, registered until ``releaseGuard(_:on:)``.
    func guardLease(on host: Int) -> (Int, OneShot<Void>) {
        let abandoned = OneShot<Void>()
        let id = self.inner.withLock { inner -> Int in
            inner.nextGuard += 1
            inner.leaseGuards[host, default: [:]][inner.nextGuard] = abandoned
            return inner.nextGuard
        }
        return (id, abandoned)
    }

    func releaseGuard(_ id: Int, on host: Int) {
        self.inner.withLock { _ = $0.leaseGuards[host]?.removeValue(forKey: id) }
    }

    // MARK: Applying actions

    private func handle(wakingTheTicker: Bool = true, _ event: (inout Machine, ContinuousClock.Instant) -> [Machine.Action]) {
        self.handleReturning(wakingTheTicker: wakingTheTicker) { inner, now -> (Void, [Machine.Action]) in
            ((), event(&inner.machine, now))
        }
    }

    /// Runs `event` under the lock, then carries out its actions outside it.
    private func handleReturning<R: Sendable>(
        wakingTheTicker: Bool = true, _ event: (inout Inner, ContinuousClock.Instant) -> (R, [Machine.Action])
    ) -> R {
        let now = self.clock.now
        var resumes: [(OneShot<WaitOutcome>, WaitOutcome)] = []
        var abandons: [OneShot<Void>] = []
        var logs: [Machine.Action] = []
        var probes: [Int] = []
        let value = self.inner.withLock { inner -> R in
            let (value, actions) = event(&inner, now)
            for action in actions {
                switch action {
                case .probe(let host):
                    probes.append(host)
                case .resume(let id, let host):
                    if let waiter = inner.waiters.removeValue(forKey: id) { resumes.append((waiter, .host(host))) }
                case .timeOut(let id):
                    if let waiter = inner.waiters.removeValue(forKey: id) { resumes.append((waiter, .timedOut)) }
                case .abandon(let host):
                    abandons += (inner.leaseGuards.removeValue(forKey: host) ?? [:]).values
                case .primaryChanged(_, let to):
                    if let to { inner.lastPrimary = to }
                    logs.append(action)
                case .severalPrimaries:
                    logs.append(action)
                }
            }
            return value
        }
        for host in probes { self.probeSignals[host].signal() }
        for (waiter, outcome) in resumes { waiter.fulfil(outcome) }
        for guardSignal in abandons { guardSignal.fulfil(()) }
        for action in logs { self.log(action) }
        // Every event can move the next tick (a probe came back: its host is due again an interval
        // from now), so the ticker recomputes its sleep after each — but its own ticks.
        if wakingTheTicker { self.tickSignal.signal() }
        return value
    }

    private func log(_ action: Machine.Action) {
        switch action {
        case .primaryChanged(let from, let to):
            let fromText = from.map { self.hosts[$0].endpoint.description } ?? "none"
            if let to {
                self.logger.notice("the primary is \(self.hosts[to].endpoint.description)", metadata: ["previous": "\(fromText)"])
            } else {
                self.logger.warning("no primary: \(fromText) is lost or no longer takes writes; looking for the next one among \(self.hostList)")
            }
        case .severalPrimaries(let hosts):
            self.logger.warning(
                "several hosts take writes: \(hosts.map { self.hosts[$0].endpoint.description }.joined(separator: ", ")); the client writes to the one on the newest timeline. Stop or rejoin the others (`phylactery db replica rejoin`).")
        default:
            break
        }
    }
}
