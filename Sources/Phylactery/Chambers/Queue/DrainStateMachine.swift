import Foundation

/// The ghouls' shutdown, as a value type over an injected clock: events in (shutdown requested, the
/// running handlers and the time, outcomes written), actions out. No I/O, no sleeping: ``Ghouls``
/// runs the actions and tests drive every transition with a clock of their own.
///
/// ```
/// running ──shutdown──▶ grace ──all handlers ended──────────────▶ flushing ──written──▶ finished
///                         │                                          ▲  ▲
///                         └─grace over: cancel──▶ cancelling ─ended──┘  │
///                                                    └─abandonAfter over: abandon the rest
/// ```
///
/// Shutdown therefore ends within `gracePeriod + abandonAfter + flushTimeout`, whatever handlers
/// do: an abandoned handler's job is given back (or, if the handler still holds its row, left to the
/// rescuer), and the outcome writer gives up at its deadline.
struct DrainStateMachine<C: Clock> where C.Duration == Duration {
    enum State: Equatable {
        case running
        /// Handlers may finish until then.
        case grace(until: C.Instant)
        /// Handlers were cancelled; those still running then are abandoned.
        case cancelling(until: C.Instant)
        /// Every handler has ended or was abandoned; outcomes are being written.
        case flushing
        case finished
    }

    enum Action: Equatable {
        /// Claim nothing more.
        case stopClaiming
        /// Cancel these handlers; their jobs go back to the queue.
        case cancel(Set<UUID>)
        /// Stop waiting for these handlers (they ignored cancellation); give their jobs back without them.
        case abandon(Set<UUID>)
        /// Write every waiting outcome, giving up after the duration.
        case flushOutcomes(within: Duration)
        /// The drain is over.
        case finish
    }

    let gracePeriod: Duration
    let abandonAfter: Duration
    let flushTimeout: Duration
    private(set) var state: State = .running

    init(gracePeriod: Duration, abandonAfter: Duration, flushTimeout: Duration) {
        self.gracePeriod = gracePeriod
        self.abandonAfter = abandonAfter
        self.flushTimeout = flushTimeout
    }

    /// When ``tick(at:running:)`` must be called next even if no handler ends.
    var deadline: C.Instant? {
        switch self.state {
        case .grace(let until), .cancelling(let until): until
        case .running, .flushing, .finished: nil
        }
    }

    /// Graceful shutdown was asked for (SIGTERM through the service group).
    mutating func shutdownRequested(at now: C.Instant, running: Set<UUID>) -> [Action] {
        guard self.state == .running else { return [] }
        self.state = .grace(until: now.advanced(by: self.gracePeriod))
        return [.stopClaiming] + self.tick(at: now, running: running)
    }

    /// A handler ended, or the deadline passed: `running` are the handlers still running.
    mutating func tick(at now: C.Instant, running: Set<UUID>) -> [Action] {
        switch self.state {
        case .grace(let until):
            if running.isEmpty { return self.flush() }
            guard now >= until else { return [] }
            self.state = .cancelling(until: now.advanced(by: self.abandonAfter))
            return [.cancel(running)] + self.tick(at: now, running: running)
        case .cancelling(let until):
            if running.isEmpty { return self.flush() }
            guard now >= until else { return [] }
            return [.abandon(running)] + self.flush()
        case .running, .flushing, .finished:
            return []
        }
    }

    /// The outcome writer has written everything (or gave up at its deadline).
    mutating func outcomesFlushed() -> [Action] {
        guard self.state == .flushing else { return [] }
        self.state = .finished
        return [.finish]
    }

    private mutating func flush() -> [Action] {
        self.state = .flushing
        return [.flushOutcomes(within: self.flushTimeout)]
    }
}
