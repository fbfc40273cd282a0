import Phylactery

/// What one attempt to reach the server found.
enum ProbeOutcome: Equatable, Sendable {
    /// It answered a query.
    case ready
    /// Nothing listens there (connection refused, no socket file).
    case refused
    /// The host or the network does not answer (timeout, unreachable).
    case unreachable
    /// PostgreSQL is starting up (SQLSTATE 57P03).
    case startingUp
    /// PostgreSQL is in crash recovery, or restoring, and not yet consistent (57P03).
    case recovering
    /// PostgreSQL is shutting down (57P03, 57P01).
    case shuttingDown
    /// Every connection slot is taken (53300).
    case tooManyConnections
    /// The user or password was refused (class 28): waiting will not help.
    case authenticationFailed
    /// The database does not exist (3D000) — yet: a server that has just come up may be creating it.
    case databaseMissing
    /// The client and server cannot agree on the connection (TLS required but not offered): waiting will not help.
    case misconfigured
    /// Something else; retried until the deadline.
    case other

    /// Waiting cannot fix it.
    var isFatal: Bool {
        switch self {
        case .authenticationFailed, .misconfigured: true
        default: false
        }
    }

    /// For the log: what the server is doing.
    var phrase: String {
        switch self {
        case .ready: "accepts connections"
        case .refused: "refuses connections (nothing listens there yet)"
        case .unreachable: "does not answer (host or network unreachable, or the connection timed out)"
        case .startingUp: "is starting up"
        case .recovering: "is recovering and does not accept connections yet"
        case .shuttingDown: "is shutting down"
        case .tooManyConnections: "has no free connection slot"
        case .authenticationFailed: "refused the user name or password"
        case .databaseMissing: "has no such database"
        case .misconfigured: "cannot agree with the client on the connection (TLS)"
        case .other: "failed the attempt"
        }
    }

    /// Classifies a failed attempt from what the server or the connection said.
    ///
    /// - Parameters:
    ///   - sqlState: the server's SQLSTATE, when the server answered with an error.
    ///   - message: the server's message (for 57P03, which covers starting up, recovery and shutdown).
    ///   - connectionFailure: what the connection itself failed with (`connection refused`, …) when no server answered.
    static func classify(sqlState: String?, message: String?, connectionFailure: String?) -> ProbeOutcome {
        if let sqlState {
            let text = (message ?? "").lowercased()
            switch sqlState {
            case "57P03":
                if text.contains("shutting down") { return .shuttingDown }
                if text.contains("recovery") || text.contains("not yet accepting") || text.contains("consistent") { return .recovering }
                return .startingUp
            case "57P01", "57P02": return .shuttingDown
            case "53300": return .tooManyConnections
            case "3D000": return .databaseMissing
            case let state where state.hasPrefix("28"): return .authenticationFailed
            case let state where state.hasPrefix("08"): return .refused
            default: return .other
            }
        }
        let text = (connectionFailure ?? "").lowercased()
        if text.contains("refused") || text.contains("no such file") || text.contains("enoent") || text.contains("econnrefused") { return .refused }
        if text.contains("unreachable") || text.contains("timed out") || text.contains("timeout") || text.contains("no route") { return .unreachable }
        if text.contains("password") || text.contains("authentication") { return .authenticationFailed }
        if text.contains("tls") || text.contains("ssl") { return .misconfigured }
        return .other
    }
}

/// Waiting for an external server, as a value type over an injected clock: each probe's outcome in,
/// the next step out (probe again at an instant, ready, or fail), with what to log. No I/O, no
/// sleeping; ``ExternalServerWaiter`` runs it.
///
/// The wait is bounded (`timeout`); probes back off (``RetryBackoff``, 100 ms doubling to 2 s); the
/// log gets one line when the server's state changes and a reminder every `reminderInterval`, never a
/// line per probe. A wrong password or a TLS mismatch fail at once: retrying them would only hammer
/// the server with the same refusal. A missing database is waited for (a server that has just come
/// up may be creating it), and named in the error at the deadline.
struct ReadinessStateMachine<C: Clock>: Sendable where C.Duration == Duration, C.Instant: Sendable {
    /// What to tell the log.
    enum LogEvent: Equatable, Sendable {
        /// The server's state is new: say what it is.
        case changed(ProbeOutcome)
        /// Still the same after this long.
        case stillWaiting(ProbeOutcome, waited: Duration)
        /// Ready after waiting this long (nil: at the first attempt).
        case readyAfter(Duration?)
    }

    /// Why waiting ended without a server.
    enum Failure: Equatable, Sendable {
        /// Waiting cannot help.
        case fatal(ProbeOutcome)
        /// The deadline passed; the last outcome says why.
        case timedOut(last: ProbeOutcome, waited: Duration)
    }

    enum Action: Equatable, Sendable {
        /// Probe now.
        case probe
        /// Probe again at this instant.
        case probeAgain(at: C.Instant, log: LogEvent?)
        /// The server is ready.
        case ready(log: LogEvent?)
        /// Give up.
        case fail(Failure)
    }

    let timeout: Duration
    let backoff: RetryBackoff
    let reminderInterval: Duration
    private(set) var started: C.Instant?
    private(set) var attempts = 0
    private(set) var last: ProbeOutcome?
    private var lastLogged: C.Instant?

    init(timeout: Duration, backoff: RetryBackoff = RetryBackoff(initial: .milliseconds(100), multiplier: 2, maximum: .seconds(2), jitter: 0.2),
         reminderInterval: Duration = .seconds(10)) {
        self.timeout = timeout
        self.backoff = backoff
        self.reminderInterval = reminderInterval
    }

    /// Waiting begins.
    mutating func begin(at now: C.Instant) -> Action {
        self.started = now
        return .probe
    }

    /// A probe came back with `outcome`; `random` (0…1) is the backoff's jitter.
    mutating func probed(_ outcome: ProbeOutcome, at now: C.Instant, random: Double) -> Action {
        let started = self.started ?? now
        self.attempts += 1
        defer { self.last = outcome }
        let waited = started.duration(to: now)
        if outcome == .ready {
            return .ready(log: self.attempts > 1 ? .readyAfter(waited) : nil)
        }
        if outcome.isFatal { return .fail(.fatal(outcome)) }
        guard waited < self.timeout else { return .fail(.timedOut(last: outcome, waited: waited)) }
        var log: LogEvent?
        if outcome != self.last {
            log = .changed(outcome)
            self.lastLogged = now
        } else if let lastLogged = self.lastLogged, now >= lastLogged.advanced(by: self.reminderInterval) {
            log = .stillWaiting(outcome, waited: waited)
            self.lastLogged = now
        }
        // Never past the deadline: the last probe comes at it.
        let next = min(now.advanced(by: self.backoff.duration(afterAttempt: self.attempts, random: random)), started.advanced(by: self.timeout))
        return .probeAgain(at: next, log: log)
    }
}
