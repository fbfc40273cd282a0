/// Which server a client with several hosts writes to and which it reads from, as a value type over
/// an injected clock: events in (probe results, connection failures, ticks, requests for a server),
/// actions out (probe host N, hand host N to waiter W, time waiter W out, give up leases on host N).
/// No I/O and no sleeping; ``ClientTopology`` runs it.
///
/// - The primary is the host whose last probe says it takes writes (per
///   ``DatabaseURL/TargetSessionAttributes``). When two do (a former primary restarted on its own after
///   a standby was promoted), the one on the newest timeline wins: the promoted one.
/// - Every host is probed every `checkInterval`; while no primary is known, every `searchInterval`
///   (a quarter of it), so a promotion is found within a fraction of a second.
/// - A connection failure on a host makes it suspect at once (nothing is routed to it) and probes it;
///   a failure on the primary, or its refusal of a write (`25006 read_only_sql_transaction`), also
///   probes every other host, so the search for the next primary starts at once.
/// - A standby serves reads while its replay lag, plus the age of the observation, is within
///   `maximumReplicaLag`: between probes the lag is assumed to grow with time, never to shrink.
/// - A request that finds no server waits until one appears or `failoverTimeout` passes.
package struct TopologyStateMachine<C: Clock>: Sendable where C.Duration == Duration, C.Instant: Sendable {
    /// The knobs, from the client's options and URL.
    package struct Settings: Sendable, Hashable {
        package var hostCount: Int
        package var target: DatabaseURL.TargetSessionAttributes
        package var maximumReplicaLag: Duration
        package var checkInterval: Duration
        package var failoverTimeout: Duration

        package init(
            hostCount: Int, target: DatabaseURL.TargetSessionAttributes, maximumReplicaLag: Duration,
            checkInterval: Duration, failoverTimeout: Duration
        ) {
            self.hostCount = hostCount
            self.target = target
            self.maximumReplicaLag = maximumReplicaLag
            self.checkInterval = checkInterval
            self.failoverTimeout = failoverTimeout
        }

        /// How often hosts are probed while no primary is known: a quarter of `checkInterval`, at least 50 ms.
        package var searchInterval: Duration { max(.milliseconds(50), self.checkInterval / 4) }
    }

    /// What one probe found on a host that answered.
    package struct Observation: Sendable, Hashable {
        /// `pg_is_in_recovery()`: a standby.
        package var inRecovery: Bool
        /// `transaction_read_only` of a new session (`default_transaction_read_only`, or a standby).
        package var readOnly: Bool
        /// The timeline a writable server writes on; `nil` on a standby.
        package var timeline: Int?
        /// How far a standby's replay is behind; `nil` when unknown (it is not streaming, or has
        /// replayed nothing yet), which keeps reads off it.
        package var replayLag: Duration?

        package init(inRecovery: Bool, readOnly: Bool, timeline: Int? = nil, replayLag: Duration? = nil) {
            self.inRecovery = inRecovery
            self.readOnly = readOnly
            self.timeline = timeline
            self.replayLag = replayLag
        }
    }

    /// What the client knows of one host.
    package enum HostState: Sendable, Hashable {
        /// Not probed yet, or suspect since a connection to it failed.
        case unknown
        /// It answered the last probe.
        case up(Observation)
        /// The last probe failed.
        case down(reason: String)
    }

    package struct Host: Sendable {
        package var state: HostState = .unknown
        /// When the last probe came back.
        package var observedAt: C.Instant?
        /// A probe is running.
        package var probing = false
        /// Another probe was asked for while one ran: it runs when that one returns.
        var probeAgain = false
    }

    /// What a request wants a server for.
    package enum Purpose: Sendable, Hashable {
        /// Anything but a read transaction: the primary.
        case write
        /// A read transaction: a standby within the lag bound, else the primary.
        case read
    }

    /// The answer to a request.
    package enum Route: Sendable, Hashable {
        /// Use this host now.
        case host(Int)
        /// None fits now: wait for ``Action/resume(waiter:host:)`` or ``Action/timeOut(waiter:)``.
        case wait(waiter: Int)
    }

    package enum Action: Sendable, Hashable {
        /// Probe this host (no probe of it is running).
        case probe(Int)
        /// A waiting request gets this host.
        case resume(waiter: Int, host: Int)
        /// A waiting request waited `failoverTimeout` in vain.
        case timeOut(waiter: Int)
        /// The primary changed (for the log).
        case primaryChanged(from: Int?, to: Int?)
        /// Requests still waiting for a connection of this host give up and ask again: it is down,
        /// suspect, or no longer the primary.
        case abandon(host: Int)
        /// More than one host takes writes (for the log: a split brain an operator must end).
        case severalPrimaries([Int])
    }

    private struct Waiter: Sendable {
        var purpose: Purpose
        var deadline: C.Instant
    }

    package let settings: Settings
    package private(set) var hosts: [Host]
    /// The host writes go to, when one is known.
    package private(set) var primary: Int?
    private var waiters: [Int: Waiter] = [:]
    private var nextWaiter = 0
    private var readCursor = 0
    private var reportedSplit: [Int] = []

    package init(settings: Settings) {
        precondition(settings.hostCount > 0)
        self.settings = settings
        self.hosts = Array(repeating: Host(), count: settings.hostCount)
    }

    /// How many requests wait for a server.
    package var waitingRequests: Int { self.waiters.count }

    // MARK: Events

    /// The client starts: probe every host.
    package mutating func start(at now: C.Instant) -> [Action] {
        (0..<self.hosts.count).flatMap { self.requestProbe($0) }
    }

    /// Time passed: probe the hosts that are due, time out the waiters whose deadline came.
    package mutating func tick(at now: C.Instant) -> [Action] {
        var actions: [Action] = []
        let interval = self.primary == nil ? self.settings.searchInterval : self.settings.checkInterval
        for index in self.hosts.indices where !self.hosts[index].probing {
            if let observedAt = self.hosts[index].observedAt, now < observedAt.advanced(by: interval) { continue }
            actions += self.requestProbe(index)
        }
        for (id, waiter) in self.waiters.sorted(by: { $0.key < $1.key }) where waiter.deadline <= now {
            self.waiters[id] = nil
            actions.append(.timeOut(waiter: id))
        }
        return actions
    }

    /// When ``tick(at:)`` has something to do next (a probe due or a deadline), if ever.
    package func nextTick() -> C.Instant? {
        let interval = self.primary == nil ? self.settings.searchInterval : self.settings.checkInterval
        var next: C.Instant?
        for host in self.hosts where !host.probing {
            guard let observedAt = host.observedAt else { continue }
            let due = observedAt.advanced(by: interval)
            if next.map({ due < $0 }) ?? true { next = due }
        }
        for waiter in self.waiters.values where next.map({ waiter.deadline < $0 }) ?? true {
            next = waiter.deadline
        }
        return next
    }

    /// A probe of `host` answered.
    package mutating func probeSucceeded(_ host: Int, _ observation: Observation, at now: C.Instant) -> [Action] {
        self.hosts[host].state = .up(observation)
        return self.probeFinished(host, at: now)
    }

    /// A probe of `host` failed (refused, timed out, the server in the middle of shutting down…).
    package mutating func probeFailed(_ host: Int, reason: String, at now: C.Instant) -> [Action] {
        // Requests are only routed to hosts that answered: one that was suspect already had its
        // waiting leases abandoned.
        let wasUp: Bool
        if case .up = self.hosts[host].state { wasUp = true } else { wasUp = false }
        self.hosts[host].state = .down(reason: reason)
        var actions = wasUp ? [Action.abandon(host: host)] : []
        actions += self.probeFinished(host, at: now)
        return Self.unique(actions)
    }

    /// An operation on `host` lost its connection (the session ended, a connection could not be made)
    /// or, with `refusedWrite`, had a write refused because the server is read-only (SQLSTATE 25006).
    /// The host is suspect until a probe says otherwise.
    package mutating func connectionFailed(_ host: Int, refusedWrite: Bool = false, at now: C.Instant) -> [Action] {
        let wasPrimary = self.primary == host
        var actions: [Action] = []
        if case .down = self.hosts[host].state {
            // Already known to be down; its probes go on at their pace.
        } else {
            self.hosts[host].state = .unknown
            actions.append(.abandon(host: host))
        }
        actions += self.requestProbe(host)
        if wasPrimary || refusedWrite {
            for other in self.hosts.indices where other != host { actions += self.requestProbe(other) }
        }
        actions += self.settle(at: now)
        return Self.unique(actions)
    }

    /// A request wants a server for `purpose`, waiting at most until `deadline` (its start plus
    /// `failoverTimeout`) when none fits now.
    package mutating func route(_ purpose: Purpose, deadline: C.Instant, at now: C.Instant) -> (Route, [Action]) {
        if let host = self.pick(purpose, at: now) { return (.host(host), []) }
        let id = self.nextWaiter
        self.nextWaiter += 1
        self.waiters[id] = Waiter(purpose: purpose, deadline: deadline)
        if deadline <= now {
            self.waiters[id] = nil
            return (.wait(waiter: id), [.timeOut(waiter: id)])
        }
        return (.wait(waiter: id), [])
    }

    /// A waiting request gave up on its own (cancelled).
    package mutating func cancel(waiter: Int) {
        self.waiters[waiter] = nil
    }

    // MARK: Decisions

    /// The host a request for `purpose` gets now, if any.
    package mutating func pick(_ purpose: Purpose, at now: C.Instant) -> Int? {
        if purpose == .read {
            let replicas = self.readableReplicas(at: now)
            if !replicas.isEmpty {
                defer { self.readCursor &+= 1 }
                return replicas[Int(UInt(bitPattern: self.readCursor) % UInt(replicas.count))]
            }
        }
        return self.primary
    }

    /// Standbys whose replay lag, aged by the time since they were probed, is within the bound.
    package func readableReplicas(at now: C.Instant) -> [Int] {
        self.hosts.indices.filter { index in
            let host = self.hosts[index]
            guard index != self.primary, case .up(let observation) = host.state, observation.inRecovery,
                  let lag = observation.replayLag, let observedAt = host.observedAt else { return false }
            return lag + observedAt.duration(to: now) <= self.settings.maximumReplicaLag
        }
    }

    /// Whether an observation makes a host fit for writes.
    private func takesWrites(_ observation: Observation) -> Bool {
        Self.takesWrites(observation, target: self.settings.target)
    }

    /// Whether a host so observed is fit for writes under `target`.
    package static func takesWrites(_ observation: Observation, target: DatabaseURL.TargetSessionAttributes) -> Bool {
        switch target {
        case .readWrite: return !observation.inRecovery && !observation.readOnly
        case .primary: return !observation.inRecovery
        case .any: return true
        }
    }

    /// `actions` without repeats, in their order.
    private static func unique(_ actions: [Action]) -> [Action] {
        var seen = Set<Action>()
        return actions.filter { seen.insert($0).inserted }
    }

    private mutating func requestProbe(_ host: Int) -> [Action] {
        if self.hosts[host].probing {
            self.hosts[host].probeAgain = true
            return []
        }
        self.hosts[host].probing = true
        return [.probe(host)]
    }

    private mutating func probeFinished(_ host: Int, at now: C.Instant) -> [Action] {
        self.hosts[host].observedAt = now
        self.hosts[host].probing = false
        var actions = self.settle(at: now)
        if self.hosts[host].probeAgain {
            self.hosts[host].probeAgain = false
            actions += self.requestProbe(host)
        }
        return actions
    }

    /// Recomputes the primary from what is known and serves the waiters that can be served.
    private mutating func settle(at now: C.Instant) -> [Action] {
        var actions: [Action] = []
        let candidates = self.hosts.indices.filter { index in
            if case .up(let observation) = self.hosts[index].state { return self.takesWrites(observation) }
            return false
        }
        var chosen: Int?
        if self.settings.target == .any {
            chosen = self.primary.flatMap { candidates.contains($0) ? $0 : nil } ?? candidates.first
        } else {
            func timeline(_ index: Int) -> Int {
                if case .up(let observation) = self.hosts[index].state { return observation.timeline ?? -1 }
                return -1
            }
            let newest = candidates.map(timeline).max()
            let best = candidates.filter { timeline($0) == newest }
            chosen = self.primary.flatMap { best.contains($0) ? $0 : nil } ?? best.first
            let split = candidates.count > 1 ? candidates : []
            if split != self.reportedSplit {
                self.reportedSplit = split
                if !split.isEmpty { actions.append(.severalPrimaries(split)) }
            }
        }
        if chosen != self.primary {
            let previous = self.primary
            self.primary = chosen
            actions.append(.primaryChanged(from: previous, to: chosen))
            if let previous, !actions.contains(.abandon(host: previous)) { actions.append(.abandon(host: previous)) }
            if chosen == nil {
                // The search for the next primary starts now, not at the next interval.
                for index in self.hosts.indices where !self.hosts[index].probing { actions += self.requestProbe(index) }
            }
        }
        for (id, waiter) in self.waiters.sorted(by: { $0.key < $1.key }) {
            guard let host = self.pick(waiter.purpose, at: now) else { continue }
            self.waiters[id] = nil
            actions.append(.resume(waiter: id, host: host))
        }
        return actions
    }
}
