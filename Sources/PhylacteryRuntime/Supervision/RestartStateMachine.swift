import Phylactery

/// The embedded server's supervision, as a value type over an injected clock: events in (started,
/// failed to start, exited, the delay elapsed, stop requested), actions out. No I/O and no sleeping:
/// ``EmbeddedServerSupervisor`` runs the actions, and tests drive every transition with a clock of
/// their own.
///
/// ```
/// idle ──begin──▶ starting ──ready──▶ running ──exited (not asked)──▶ waiting ──delay over──▶ starting
///                    │                   │                              ▲
///                    └──failed───────────┼──────────────────────────────┘ (until maximumStartFailures in a row: give up)
///                                        └──stop──▶ stopping ──exited──▶ finished
/// ```
///
/// Restarts back off with ``RetryBackoff`` (the wait doubles with every restart in a row); a server
/// that stayed up for `stablePeriod` before it died starts the count again. Starts that fail before
/// the server accepts connections are counted apart: after `maximumStartFailures` in a row the
/// supervisor gives up (the last error, with the log's tail, ends the runtime).
struct RestartStateMachine<C: Clock>: Sendable where C.Duration == Duration, C.Instant: Sendable {
    /// Where the supervision stands.
    enum State: Equatable, Sendable {
        /// Nothing started yet.
        case idle
        /// A start is under way.
        case starting
        /// The server accepts connections, since the instant.
        case running(since: C.Instant)
        /// Waiting until the instant before the next start.
        case waiting(until: C.Instant)
        /// Asked to stop; waiting for the server to exit.
        case stopping
        /// Stopped on request.
        case finished
        /// Gave up after too many failed starts.
        case failed
    }

    /// What the supervisor must do.
    enum Action: Equatable, Sendable {
        /// Start the server.
        case start
        /// Call ``delayElapsed(at:)`` at this instant.
        case wait(until: C.Instant)
        /// Ask the server to stop (a fast shutdown).
        case stop
        /// Supervision is over: the server is stopped.
        case finish
        /// Supervision failed: this many starts in a row failed.
        case giveUp(failures: Int)
    }

    /// How restarts are spaced.
    let backoff: RetryBackoff
    /// Failed starts in a row before giving up.
    let maximumStartFailures: Int
    /// A server up this long before it died restarts after the first delay again.
    let stablePeriod: Duration
    /// Where the supervision stands.
    private(set) var state: State = .idle
    /// Restarts in a row (for the backoff).
    private(set) var restartsInARow = 0
    /// Failed starts in a row.
    private(set) var consecutiveStartFailures = 0
    /// Every restart after a death or a failed start since supervision began.
    private(set) var restarts = 0
    /// Whether a stop was asked for.
    private var stopAsked = false

    /// A supervision that restarts after `backoff`, gives up after `maximumStartFailures` failed starts
    /// in a row, and counts a server up for `stablePeriod` as healthy again.
    init(backoff: RetryBackoff, maximumStartFailures: Int, stablePeriod: Duration = .seconds(60)) {
        self.backoff = backoff
        self.maximumStartFailures = max(1, maximumStartFailures)
        self.stablePeriod = stablePeriod
    }

    /// Supervision begins: start the server.
    mutating func begin() -> [Action] {
        guard self.state == .idle else { return [] }
        self.state = .starting
        return [.start]
    }

    /// The server accepts connections.
    mutating func ready(at now: C.Instant) -> [Action] {
        guard self.state == .starting || self.state == .stopping else { return [] }
        self.consecutiveStartFailures = 0
        if self.stopAsked {
            self.state = .stopping
            return [.stop]
        }
        self.state = .running(since: now)
        return []
    }

    /// A start failed before the server accepted connections. `random` (0…1) is the backoff's jitter.
    mutating func startFailed(at now: C.Instant, random: Double) -> [Action] {
        switch self.state {
        case .starting:
            if self.stopAsked { return self.finish() }
            self.consecutiveStartFailures += 1
            guard self.consecutiveStartFailures < self.maximumStartFailures else {
                self.state = .failed
                return [.giveUp(failures: self.consecutiveStartFailures)]
            }
            return self.scheduleRestart(at: now, random: random)
        case .stopping:
            return self.finish()
        case .idle, .running, .waiting, .finished, .failed:
            return []
        }
    }

    /// The server exited after it was ready: `requested` when it was asked to stop.
    mutating func exited(at now: C.Instant, requested: Bool, random: Double) -> [Action] {
        switch self.state {
        case .running(let since):
            if requested || self.stopAsked { return self.finish() }
            // A server that was up for a while died: restart as after a first failure.
            if now >= since.advanced(by: self.stablePeriod) { self.restartsInARow = 0 }
            return self.scheduleRestart(at: now, random: random)
        case .stopping:
            return self.finish()
        case .idle, .starting, .waiting, .finished, .failed:
            return []
        }
    }

    /// Time passed while waiting to restart.
    mutating func delayElapsed(at now: C.Instant) -> [Action] {
        guard case .waiting(let until) = self.state else { return [] }
        guard now >= until else { return [.wait(until: until)] }
        self.state = .starting
        return [.start]
    }

    /// Graceful shutdown: stop the server (or stop waiting to restart it).
    mutating func stopRequested() -> [Action] {
        self.stopAsked = true
        switch self.state {
        case .running, .starting:
            self.state = .stopping
            return [.stop]
        case .idle, .waiting:
            return self.finish()
        case .stopping, .finished, .failed:
            return []
        }
    }

    private mutating func scheduleRestart(at now: C.Instant, random: Double) -> [Action] {
        self.restartsInARow += 1
        self.restarts += 1
        let until = now.advanced(by: self.backoff.duration(afterAttempt: self.restartsInARow, random: random))
        self.state = .waiting(until: until)
        return [.wait(until: until)]
    }

    private mutating func finish() -> [Action] {
        self.state = .finished
        return [.finish]
    }
}
