/// What the client found out, when it prepared, about the sessions it gets from the server.
///
/// A transaction pooler (PgBouncer with `pool_mode = transaction`, and the poolers of several managed
/// PostgreSQL offers) hands each transaction to whichever server session is free, so state that lives
/// in a session — LISTEN, session advisory locks, `SET` without `LOCAL`, named prepared statements —
/// cannot be kept between transactions. Phylactery never uses named prepared statements (PostgresNIO
/// sends every query as the unnamed statement, which transaction pooling allows); the three others go
/// through ``PhylacteryClient/Configuration/Options/sessionURL`` when it is set, and otherwise fall
/// back as ``fallbacks`` says.
///
/// **The probe.** On one client connection the client asks the server for its backend's process id
/// (`pg_backend_pid()`), asks again from a second client connection, then once more on the first. A
/// direct connection, or a pooler in session mode, keeps one backend per client connection for its
/// whole life: the first and third answers are equal and the second differs. A transaction pooler
/// releases the backend after each statement: the second connection is handed the backend the first
/// just released (PgBouncer reuses the most recently released one), or the first connection gets
/// another one back. Either shows it, with three statements and no guess about ports or addresses. A
/// pooler configured to rotate its backends (`server_round_robin = 1`) with a single idle backend can
/// look like a direct connection; set ``PhylacteryClient/Configuration/Options/sessionURL`` there
/// anyway, since with it set the session features never depend on the probe.
public struct SessionFeatures: Sendable, Hashable, CustomStringConvertible {
    /// Whether the probe found a transaction pooler between the client and the server.
    public var transactionPooler: Bool
    /// Whether ``PhylacteryClient/Configuration/Options/sessionURL`` is set: session features use it.
    public var usesSessionURL: Bool

    public init(transactionPooler: Bool, usesSessionURL: Bool) {
        self.transactionPooler = transactionPooler
        self.usesSessionURL = usesSessionURL
    }

    /// Whether a connection whose session state lasts is at hand: the session URL, or the pool when no
    /// transaction pooler is in the way.
    public var sessionAvailable: Bool { self.usesSessionURL || !self.transactionPooler }

    /// What runs differently because no session is at hand, one sentence each; empty when
    /// ``sessionAvailable``.
    public var fallbacks: [String] {
        guard !self.sessionAvailable else { return [] }
        return Self.fallbackDescriptions
    }

    /// The fallbacks without a session, in the order the warning and `phylactery doctor` print them.
    static let fallbackDescriptions = [
        "queue workers poll for new jobs (every pollInterval) instead of LISTENing for enqueues and cancellations",
        "periodic jobs have no single leader: every process proposes each fire, which is enqueued once under a transaction-scoped advisory lock and its unique key",
        "migrations hold their lock as a transaction-scoped advisory lock in an open transaction, and statements outside the migration's transaction (concurrent index builds) run without the migration's lock_timeout and statement_timeout, since a session SET would leak to other clients of the pooler",
    ]

    public var description: String {
        if !self.transactionPooler {
            return self.usesSessionURL ? "no transaction pooler detected; session features use the session URL" : "no transaction pooler detected; sessions are direct"
        }
        if self.usesSessionURL { return "transaction pooler detected; session features use the session URL" }
        return "transaction pooler detected and no session URL: " + self.fallbacks.joined(separator: "; ")
    }
}
