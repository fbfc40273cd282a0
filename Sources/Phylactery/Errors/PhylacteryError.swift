import PostgresNIO

/// The error every Phylactery database operation throws.
///
/// ``description`` is a sentence meant for a person: what failed, and what to do about it. It never
/// contains bound values (facts, vectors and trace payloads can hold user data); the SQL text, the
/// server's detail line and the underlying error are in ``debugDescription`` only.
public struct PhylacteryError: Error, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// What kind of failure this is. Compare with the static members; new kinds may be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        enum Base: String, Hashable, Sendable {
            case invalidConfiguration
            case connectionFailed
            case authenticationFailed
            case databaseNotFound
            case queryFailed
            case transactionFailed
            case retriesExhausted
            case extensionUnavailable
            case invalidModel
            case decodingFailed
            case federationConflict
            case migrationRefused
            case migrationFailed
            case notFound
            case invalidArgument
            case leaseLost
            case invalidVector
            case dimensionMismatch
            case incompleteCoverage
            case immutableFact
            case factExists
            case staleFact
            case factRetracted
            case unstorableValue
            case lockNotAvailable
            case staleRow
            case commitOutcomeUnknown
            case sessionUnavailable
        }

        let base: Base
        private init(_ base: Base) { self.base = base }

        /// The connection URL or another setting is malformed; nothing was sent to a server.
        public static let invalidConfiguration = Self(.invalidConfiguration)
        /// No connection could be made: no server listening, socket missing, network unreachable, TLS refused.
        public static let connectionFailed = Self(.connectionFailed)
        /// The server refused the credentials (SQLSTATE class 28).
        public static let authenticationFailed = Self(.authenticationFailed)
        /// The server is up but the named database does not exist (SQLSTATE 3D000).
        public static let databaseNotFound = Self(.databaseNotFound)
        /// The server rejected a statement; ``PhylacteryError/sqlState`` says why.
        public static let queryFailed = Self(.queryFailed)
        /// BEGIN, COMMIT, ROLLBACK or a savepoint statement failed; ``PhylacteryError/phase`` says which.
        public static let transactionFailed = Self(.transactionFailed)
        /// A transaction kept failing with a serialization failure or deadlock after every allowed attempt.
        public static let retriesExhausted = Self(.retriesExhausted)
        /// A required extension (pgvector) is not installed on the server and could not be created.
        public static let extensionUnavailable = Self(.extensionUnavailable)
        /// A model's description cannot be turned into a table (bad name, missing column, name too long).
        public static let invalidModel = Self(.invalidModel)
        /// A row could not be read into a model (wrong type, unknown enum case, bad JSON).
        public static let decodingFailed = Self(.decodingFailed)
        /// Two owners claim one name, or a table lies outside its owner's namespace; nothing was changed.
        public static let federationConflict = Self(.federationConflict)
        /// A migration was not applied: a hazardous step without consent, an edited applied file, two heads.
        public static let migrationRefused = Self(.migrationRefused)
        /// A migration statement failed; its transaction was rolled back.
        public static let migrationFailed = Self(.migrationFailed)
        /// The row an operation needs does not exist (an update of an id no row has); nothing was changed.
        public static let notFound = Self(.notFound)
        /// An argument was refused before anything was sent to the server (an `orderBy` with `;`, a negative limit).
        public static let invalidArgument = Self(.invalidArgument)
        /// A job's outcome was refused because its lease had passed to another attempt (the worker
        /// was presumed dead); the other attempt's outcome stands and nothing was written.
        public static let leaseLost = Self(.leaseLost)
        /// A vector was refused before it was sent: NaN or infinite elements, none, or too many.
        public static let invalidVector = Self(.invalidVector)
        /// A vector's dimension differs from the column's or the embedding space's; the message names both.
        public static let dimensionMismatch = Self(.dimensionMismatch)
        /// An embedding space cannot become the default: memories still lack a vector in it (the message
        /// says how many). Embed them first (`phylactery memory embed`), or force the switch.
        public static let incompleteCoverage = Self(.incompleteCoverage)
        /// Something tried to change or delete a recorded fact; the database refused it. Use `supersede`.
        public static let immutableFact = Self(.immutableFact)
        /// `put` found the fact already recorded; facts are never overwritten (use `supersede`).
        public static let factExists = Self(.factExists)
        /// `supersede` was asked to replace a version that is no longer the current one.
        public static let staleFact = Self(.staleFact)
        /// The fact was retracted or erased: `supersede` has nothing to replace and `retract` nothing
        /// to withdraw. Record it again with `put`, which continues its version sequence.
        public static let factRetracted = Self(.factRetracted)
        /// A value PostgreSQL cannot store (U+0000 in text or jsonb) was refused; the message names
        /// the column, field or coding path. Nothing was sent.
        public static let unstorableValue = Self(.unstorableValue)
        /// A locking read with ``RowLock/WaitPolicy/noWait`` (or a statement under `lock_timeout`)
        /// found a row locked by another transaction (SQLSTATE 55P03). Like any failed statement it
        /// aborts the transaction; run the read in a savepoint (`tx.transaction { … }`) to go on, or
        /// use ``RowLock/WaitPolicy/skipLocked`` to leave locked rows out instead.
        public static let lockNotAvailable = Self(.lockNotAvailable)
        /// An update of a model with a version column (`@Version`) found the row at another version:
        /// someone else updated it since it was read. Nothing was written; read the row again and retry.
        public static let staleRow = Self(.staleRow)
        /// The connection died while COMMIT was in flight (the server crashed, a failover, a network
        /// cut, the transaction's timeout): the transaction may or may not have committed. Check
        /// whether its changes are there before running it again. Every other transaction whose
        /// connection is lost fails with ``connectionFailed``, having committed nothing.
        public static let commitOutcomeUnknown = Self(.commitOutcomeUnknown)
        /// A feature that needs a database session of its own (LISTEN, a session advisory lock, `SET`
        /// without `LOCAL`) was asked for, but the client reaches the server through a transaction
        /// pooler and no ``PhylacteryClient/Configuration/Options/sessionURL`` names a direct connection.
        public static let sessionUnavailable = Self(.sessionUnavailable)

        public var description: String { self.base.rawValue }
    }

    /// The step of a transaction that failed.
    public enum TransactionPhase: String, Sendable, Hashable {
        case begin, body, commit, rollback, savepoint
    }

    /// What kind of failure this is.
    public var code: Code
    /// A readable sentence without bound values.
    public var message: String
    /// The server's SQLSTATE, when the server reported the failure.
    public var sqlState: String?
    /// For transaction failures: which step failed.
    public var phase: TransactionPhase?
    /// How many times the transaction body ran before this error escaped.
    public var attempts: Int?
    /// The error this one was made from, usually a `PSQLError`.
    public var underlying: (any Error)?
    /// The SQL text, when a statement failed (never its bound values).
    public var sql: String?
    /// Where the operation was started.
    public var file: String
    public var line: Int

    public init(
        _ code: Code,
        _ message: String,
        sqlState: String? = nil,
        phase: TransactionPhase? = nil,
        attempts: Int? = nil,
        underlying: (any Error)? = nil,
        sql: String? = nil,
        file: String = #fileID,
        line: Int = #line
    ) {
        self.code = code
        self.message = message
        self.sqlState = sqlState
        self.phase = phase
        self.attempts = attempts
        self.underlying = underlying
        self.sql = sql
        self.file = file
        self.line = line
    }

    /// Whether `error` (or the error it wraps) means the session is gone: the server ended it
    /// (a FATAL error, an administrator's termination or shutdown) or the connection broke.
    ///
    /// Nothing more may be sent on such a connection: PostgresNIO 1.33 can leave a statement queued
    /// behind a query that failed with FATAL waiting forever, so callers close the connection instead.
    static func endsSession(_ error: any Error) -> Bool {
        if let error = error as? PhylacteryError {
            if error.sqlState.map({ $0.hasPrefix("57P") || $0.hasPrefix("08") }) == true { return true }
            return error.underlying.map(endsSession) ?? false
        }
        guard let psql = error as? PSQLError else { return false }
        switch psql.code {
        case .serverClosedConnection, .uncleanShutdown, .connectionError, .clientClosedConnection, .messageDecodingFailure, .unexpectedBackendMessage:
            return true
        default:
            break
        }
        if let severity = psql.serverInfo?[.severity], severity == "FATAL" || severity == "PANIC" { return true }
        if let state = psql.serverInfo?[.sqlState], state.hasPrefix("57P") || state.hasPrefix("08") { return true }
        return false
    }

    /// True for the errors a transaction retries: serialization failure (40001) and deadlock (40P01).
    public var isTransient: Bool {
        self.sqlState == "40001" || self.sqlState == "40P01"
    }

    public var description: String {
        var text = self.message
        if let sqlState = self.sqlState, !text.contains(sqlState) {
            text += " (SQLSTATE \(sqlState))"
        }
        return text
    }

    public var debugDescription: String {
        var parts = ["PhylacteryError(\(self.code)): \(self.description)"]
        if let phase { parts.append("phase: \(phase.rawValue)") }
        if let attempts { parts.append("attempts: \(attempts)") }
        if let sql { parts.append("sql: \(sql)") }
        if let underlying { parts.append("underlying: \(String(reflecting: underlying))") }
        parts.append("at: \(file):\(line)")
        return parts.joined(separator: "\n  ")
    }
}

extension PhylacteryError {
    /// Translates whatever a PostgresNIO call threw into a ``PhylacteryError``.
    ///
    /// - Parameters:
    ///   - error: the thrown error; a ``PhylacteryError`` passes through unchanged.
    ///   - doing: what was being attempted, for the message ("running a query", "connecting to …").
    package static func wrapping(
        _ error: any Error,
        doing: String,
        phase: TransactionPhase? = nil,
        file: String = #fileID,
        line: Int = #line
    ) -> PhylacteryError {
        if let error = error as? PhylacteryError { return error }
        guard let psql = error as? PSQLError else {
            return PhylacteryError(.connectionFailed, "\(doing) failed: \(error)", phase: phase, underlying: error, file: file, line: line)
        }
        let sql = psql.query?.sql
        if let info = psql.serverInfo {
            let state = info[.sqlState]
            var serverMessage = info[.message] ?? "the server reported an error"
            if state == "22P05" || (state == "22021" && serverMessage.contains("0x00")) {
                // A raw statement's own bind: the library checks its own values before sending.
                serverMessage += "; a bound value contains U+0000 (NUL), which PostgreSQL cannot store in text or jsonb. Remove it before binding"
            }
            let code: Code
            switch state {
            case .some(let s) where s.hasPrefix("28"): code = .authenticationFailed
            case "3D000": code = .databaseNotFound
            case "55P03" where phase == nil || phase == .body:
                code = .lockNotAvailable
                serverMessage += "; another transaction holds a lock on the row. The statement aborted the transaction: run it in a savepoint (tx.transaction { … }) to go on, wait for the lock (RowLock.WaitPolicy.wait), or skip locked rows (.skipLocked)"
            case .some(let s) where phase != nil && phase != .body && s.hasPrefix("25"): code = .transactionFailed
            default: code = phase.map { $0 == .body ? .queryFailed : .transactionFailed } ?? .queryFailed
            }
            return PhylacteryError(
                code, "\(doing) failed: \(serverMessage)", sqlState: state, phase: phase,
                underlying: psql, sql: sql, file: file, line: line)
        }
        let reason: String
        switch psql.code {
        case .connectionError:
            reason = psql.underlying.map { "\($0)" } ?? "the connection could not be established"
        case .serverClosedConnection, .uncleanShutdown:
            reason = "the server closed the connection"
        case .sslUnsupported:
            reason = "the server does not support TLS but the URL requires it (use sslmode=disable or prefer)"
        case .authMechanismRequiresPassword:
            return PhylacteryError(
                .authenticationFailed, "\(doing) failed: the server asks for a password and the URL has none",
                phase: phase, underlying: psql, sql: sql, file: file, line: line)
        case .saslError, .unsupportedAuthMechanism:
            return PhylacteryError(
                .authenticationFailed, "\(doing) failed: authentication did not complete",
                phase: phase, underlying: psql, sql: sql, file: file, line: line)
        case .poolClosed, .clientClosedConnection:
            reason = "the client is shut down or its connection was closed; is PhylacteryClient.run() still running?"
        case .queryCancelled:
            reason = "the query was cancelled"
        default:
            reason = psql.underlying.map { "\($0)" } ?? "\(psql.code)"
        }
        return PhylacteryError(
            .connectionFailed, "\(doing) failed: \(reason)", phase: phase, underlying: psql, sql: sql,
            file: file, line: line)
    }
}
