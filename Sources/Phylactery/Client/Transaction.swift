import Logging
public import PostgresNIO
import Synchronization

/// An open database transaction, handed to the body of ``PhylacteryClient/transaction(options:isolation:file:line:_:)``.
///
/// Everything run through one `Transaction` commits or rolls back together. Call
/// ``transaction(isolation:file:line:_:)`` on it to open a savepoint: a nested unit that can fail and
/// roll back on its own while the outer transaction goes on.
///
/// A transaction owns one connection, which runs one statement at a time: use it from one task at a
/// time and never let it escape the body.
public struct Transaction: Sendable {
    /// The connection the transaction runs on. Statements sent on it directly are part of the transaction.
    public let connection: PostgresConnection
    /// Which attempt of the surrounding transaction this is (1 on the first run, 2 after one retry, …).
    public let attempt: Int
    /// The label of facts and memories written in this transaction without one: the client's
    /// ``PhylacteryClient/Configuration/Options/defaultSensitivity``.
    public let defaultSensitivity: Sensitivity
    let state: TransactionState
    let logger: Logger

    init(connection: PostgresConnection, attempt: Int, defaultSensitivity: Sensitivity, logger: Logger) {
        self.connection = connection
        self.attempt = attempt
        self.defaultSensitivity = defaultSensitivity
        self.state = TransactionState()
        self.logger = logger
    }

    /// Runs one statement in the transaction and returns its rows.
    ///
    /// Values interpolated into `query` are bind parameters. A failing statement aborts the transaction:
    /// rethrow the error (the transaction rolls back), or run the statement inside a savepoint when
    /// failure is expected and the outer work should continue.
    @discardableResult
    public func query(_ query: PostgresQuery, file: String = #fileID, line: Int = #line) async throws -> PostgresRowSequence {
        try self.checkSession(file: file, line: line)
        do {
            return try await self.connection.query(query, logger: self.logger, file: file, line: line)
        } catch {
            throw self.aborting(error, doing: "Running a query in a transaction", file: file, line: line)
        }
    }

    /// Runs one statement in the transaction and discards its rows.
    public func execute(_ query: PostgresQuery, file: String = #fileID, line: Int = #line) async throws {
        let rows = try await self.query(query, file: file, line: line)
        do {
            for try await _ in rows {}
        } catch {
            throw self.aborting(error, doing: "Running a query in a transaction", file: file, line: line)
        }
    }

    /// Runs one statement in the transaction and returns all its rows. A failure while they stream
    /// aborts the transaction like a failed statement; decoding them afterwards does not.
    package func rows(_ query: PostgresQuery, doing what: String, file: String = #fileID, line: Int = #line) async throws -> [PostgresRow] {
        let rows = try await self.query(query, file: file, line: line)
        do {
            return try await rows.collect()
        } catch {
            throw self.aborting(error, doing: what, file: file, line: line)
        }
    }

    /// `error`, wrapped, after marking the transaction aborted (and its session lost when the error
    /// ended it): what a failed statement does, also used when its rows fail while they stream.
    ///
    /// A lost session (the server ended it or the connection broke: a restart, a failover) makes the
    /// error ``PhylacteryError/Code/connectionFailed`` whatever the server said, with a message that
    /// says nothing of the transaction was committed and it is safe to run again.
    func aborting(_ error: any Error, doing what: String, file: String, line: Int) -> PhylacteryError {
        self.state.markAborted()
        var wrapped = PhylacteryError.wrapping(error, doing: what, phase: .body, file: file, line: line)
        if PhylacteryError.endsSession(error) {
            self.state.markSessionLost()
            if wrapped.code != .connectionFailed || !wrapped.message.hasSuffix(Self.nothingCommitted) {
                wrapped.code = .connectionFailed
                wrapped.message += Self.nothingCommitted
            }
        }
        return wrapped
    }

    /// The end of every message of a transaction that lost its session before COMMIT.
    static let nothingCommitted = "; the session ended, so nothing of the transaction was committed and it is safe to run it again"

    /// Sends COMMIT. When the connection dies while COMMIT is in flight, the outcome is unknown:
    /// ``PhylacteryError/Code/commitOutcomeUnknown``. A COMMIT that could not be sent at all (the
    /// session was already gone) committed nothing: ``PhylacteryError/Code/connectionFailed``.
    func commit(file: String, line: Int) async throws {
        try self.checkSession(file: file, line: line)
        do {
            _ = try await self.connection.query("COMMIT", logger: self.logger, file: file, line: line).collect()
        } catch {
            if PhylacteryError.endsSession(error) || self.state.isSessionLost || self.connection.isClosed {
                self.state.markSessionLost()
                throw PhylacteryError(
                    .commitOutcomeUnknown,
                    "The connection to the server was lost while COMMIT was in flight: the transaction may or may not have committed. Check whether its changes are there before running it again.",
                    sqlState: FailureClass.sqlState(of: error), phase: .commit, underlying: error, sql: "COMMIT", file: file, line: line)
            }
            throw PhylacteryError.wrapping(error, doing: "COMMIT", phase: .commit, file: file, line: line)
        }
    }

    /// Runs `body` inside a savepoint: its statements are kept when it returns and undone when it throws,
    /// while the outer transaction stays usable either way. The body's error is rethrown unchanged.
    public func transaction<Result: Sendable>(
        isolation: isolated (any Actor)? = #isolation,
        file: String = #fileID,
        line: Int = #line,
        _ body: (Transaction) async throws -> Result
    ) async throws -> Result {
        let name = "phylactery_sp_\(self.state.nextSavepoint())"
        try await self.control("SAVEPOINT \(name)", phase: .savepoint, file: file, line: line)
        let result: Result
        do {
            result = try await body(self)
        } catch {
            try await self.control("ROLLBACK TO SAVEPOINT \(name)", phase: .rollback, file: file, line: line)
            self.state.clearAborted()
            try await self.control("RELEASE SAVEPOINT \(name)", phase: .savepoint, file: file, line: line)
            throw error
        }
        if self.state.isAborted {
            // The body caught a failed statement and returned normally: the savepoint cannot be kept.
            try await self.control("ROLLBACK TO SAVEPOINT \(name)", phase: .rollback, file: file, line: line)
            self.state.clearAborted()
            try await self.control("RELEASE SAVEPOINT \(name)", phase: .savepoint, file: file, line: line)
            throw PhylacteryError(
                .transactionFailed,
                "A statement inside the savepoint failed and the body returned normally; the savepoint was rolled back. Let the error propagate, or catch it outside the savepoint.",
                phase: .savepoint, file: file, line: line)
        }
        try await self.control("RELEASE SAVEPOINT \(name)", phase: .savepoint, file: file, line: line)
        return result
    }

    /// Runs a transaction-control statement (fixed SQL, no user values).
    func control(_ sql: String, phase: PhylacteryError.TransactionPhase, file: String, line: Int) async throws {
        try self.checkSession(file: file, line: line)
        do {
            _ = try await self.connection.query(PostgresQuery(unsafeSQL: sql), logger: self.logger, file: file, line: line).collect()
        } catch {
            if PhylacteryError.endsSession(error) { self.state.markSessionLost() }
            throw PhylacteryError.wrapping(error, doing: "\(sql)", phase: phase, file: file, line: line)
        }
    }

    /// Refuses to send anything on a connection whose session has ended.
    func checkSession(file: String, line: Int) throws {
        if self.state.isSessionLost || self.connection.isClosed {
            self.state.markSessionLost()
            throw PhylacteryError(.connectionFailed, "The connection to the server was lost during the transaction" + Self.nothingCommitted, phase: .body, file: file, line: line)
        }
    }
}

/// The mutable bits of a transaction: the savepoint counter and whether a statement failed.
final class TransactionState: Sendable {
    private struct Inner {
        var savepoints = 0
        var aborted = false
        var sessionLost = false
    }
    private let inner = Mutex(Inner())

    func nextSavepoint() -> Int { self.inner.withLock { $0.savepoints += 1; return $0.savepoints } }
    func markAborted() { self.inner.withLock { $0.aborted = true } }
    func clearAborted() { self.inner.withLock { $0.aborted = false } }
    var isAborted: Bool { self.inner.withLock { $0.aborted } }
    /// A statement failed in a way that ends the session: nothing more may be sent (see ``PhylacteryError/endsSession(_:)``).
    func markSessionLost() { self.inner.withLock { $0.sessionLost = true; $0.aborted = true } }
    var isSessionLost: Bool { self.inner.withLock { $0.sessionLost } }
}

/// How a top-level transaction begins.
public struct TransactionOptions: Sendable, Hashable {
    /// The SQL isolation level.
    public enum IsolationLevel: String, Sendable, Hashable {
        case readCommitted = "READ COMMITTED"
        case repeatableRead = "REPEATABLE READ"
        case serializable = "SERIALIZABLE"
    }

    /// Isolation level; `nil` uses the server's default (normally READ COMMITTED).
    public var isolationLevel: IsolationLevel?
    /// Begin the transaction READ ONLY.
    public var readOnly: Bool
    /// Retry policy; `nil` uses the client's ``PhylacteryClient/Configuration/Options/retry``.
    public var retry: PhylacteryClient.RetryPolicy?
    /// A bound on each attempt: an attempt still unfinished after it has its connection closed, which
    /// fails the statement in flight and commits nothing (the error is
    /// ``PhylacteryError/Code/connectionFailed``). For background writers, so a connection whose server
    /// vanished without the client noticing cannot hold them; `nil` (the default) waits as long as the
    /// server takes. A timeout that strikes while COMMIT is in flight leaves its outcome unknown.
    public var timeout: Duration?

    public init(isolationLevel: IsolationLevel? = nil, readOnly: Bool = false, retry: PhylacteryClient.RetryPolicy? = nil, timeout: Duration? = nil) {
        self.isolationLevel = isolationLevel
        self.readOnly = readOnly
        self.retry = retry
        self.timeout = timeout
    }

    /// The defaults: server isolation level, read-write, the client's retry policy.
    public static let `default` = TransactionOptions()
    /// SERIALIZABLE, retried on serialization failures.
    public static let serializable = TransactionOptions(isolationLevel: .serializable)

    var beginSQL: String {
        var sql = "BEGIN"
        if let isolationLevel { sql += " ISOLATION LEVEL \(isolationLevel.rawValue)" }
        if readOnly { sql += " READ ONLY" }
        return sql
    }
}

/// The transaction the current task is inside, so a nested `client.transaction { }` becomes a savepoint.
enum CurrentTransaction {
    struct Context: Sendable {
        let client: ObjectIdentifier
        /// The task that opened the transaction. Child tasks inherit task-locals, but must not share
        /// the connection, so only this very task nests into it.
        let task: Int
        let transaction: Transaction
    }

    @TaskLocal static var context: Context?

    /// An identity for the running task (0 outside any task).
    static var currentTask: Int {
        withUnsafeCurrentTask { $0?.hashValue ?? 0 }
    }
}

extension PhylacteryClient {
    /// Runs `body` in a transaction: commits when it returns, rolls back when it throws.
    ///
    /// - Serialization failures (40001) and deadlocks (40P01) roll back and run `body` again, up to the
    ///   retry policy's attempts, with exponential backoff and jitter. `body` must therefore be safe to
    ///   run more than once (keep side effects outside the database until it returns).
    /// - Called inside another transaction of the same client on the same task, it opens a savepoint
    ///   of the outer transaction instead (options are then ignored). A child task started inside the
    ///   body gets a transaction of its own on another connection, since a connection runs one
    ///   statement at a time.
    /// - Errors thrown by `body` are rethrown unchanged after the rollback. Failures of the transaction
    ///   itself are ``PhylacteryError``s whose ``PhylacteryError/phase`` says which step failed; when the
    ///   retries run out the code is ``PhylacteryError/Code/retriesExhausted``.
    public func transaction<Result: Sendable>(
        options: TransactionOptions = .default,
        isolation: isolated (any Actor)? = #isolation,
        file: String = #fileID,
        line: Int = #line,
        _ body: (Transaction) async throws -> Result
    ) async throws -> Result {
        try await self.transaction(routing: .write, options: options, isolation: isolation, file: file, line: line, body)
    }

    /// Runs `body` in a READ ONLY transaction on a standby whose replay lag is within
    /// ``Configuration/Options/maximumReplicaLag``, else on the primary.
    ///
    /// With one host it is ``transaction(options:isolation:file:line:_:)`` with `readOnly` set. With
    /// several, the client picks a standby it probed (round robin among those within the bound) and
    /// falls back to the primary when none is: a standby further behind, paused, stopped, or not
    /// streaming from a primary is not read from. A standby serves a snapshot that may lag the
    /// primary by up to the bound: a write just committed on the primary may not be visible yet
    /// (with synchronous replication in `remote_apply` mode it is).
    ///
    /// Called inside a transaction of this client on the same task, it runs as a savepoint of that
    /// transaction (on its server). Retries, errors and `options` are those of
    /// ``transaction(options:isolation:file:line:_:)``; `options.readOnly` is always set.
    public func readTransaction<Result: Sendable>(
        options: TransactionOptions = .default,
        isolation: isolated (any Actor)? = #isolation,
        file: String = #fileID,
        line: Int = #line,
        _ body: (Transaction) async throws -> Result
    ) async throws -> Result {
        var options = options
        options.readOnly = true
        return try await self.transaction(routing: .read, options: options, isolation: isolation, file: file, line: line, body)
    }

    private func transaction<Result: Sendable>(
        routing purpose: TopologyStateMachine<ContinuousClock>.Purpose,
        options: TransactionOptions,
        isolation: isolated (any Actor)?,
        file: String,
        line: Int,
        _ body: (Transaction) async throws -> Result
    ) async throws -> Result {
        if let outer = CurrentTransaction.context, outer.client == ObjectIdentifier(self), outer.task == CurrentTransaction.currentTask {
            return try await outer.transaction.transaction(isolation: isolation, file: file, line: line, body)
        }
        try await self.prepare(file: file, line: line)
        let policy = options.retry ?? self.configuration.options.retry
        var attempt = 1
        var deadConnections = 0
        // With several hosts, how long this transaction waits for a server across failed leases and
        // writes refused by a server that is no longer the primary.
        let deadline = ContinuousClock.now.advanced(by: self.configuration.options.failoverTimeout)
        var lastHost: Int?
        while true {
            do {
                return try await self.withRoutedConnection(purpose, deadline: deadline, isolation: isolation, file: file, line: line) { connection, host in
                    lastHost = host
                    return try await self.runTransaction(on: connection, attempt: attempt, options: options, file: file, line: line, body)
                }
            } catch let dead as DeadConnectionAtBegin {
                // The pool can hand out a connection whose session the server has just ended (a
                // terminated backend, a restart) before it notices the close. Nothing of the body ran,
                // so another connection is tried at once, without spending an attempt. Each dead one is
                // closed, so the pool drops it; at most every pooled connection can be dead at once.
                deadConnections += 1
                guard deadConnections <= self.configuration.options.maximumConnections * self.pools.count else { throw dead.error }
                self.logger.debug("BEGIN found a dead connection; trying another", metadata: ["error": "\(dead.error)"])
            } catch {
                if let topology = self.topology, purpose == .write, !options.readOnly, let failed = lastHost,
                   FailureClass.sqlState(of: error) == "25006", ContinuousClock.now < deadline,
                   try await topology.host(for: .write, deadline: deadline, file: file, line: line) != failed {
                    // The server refused a write as read-only and the probes that followed say it is
                    // no longer the primary (a READ ONLY of the body's own is refused by the primary
                    // too, and ends up below). Nothing was committed; run it on the new primary.
                    self.logger.notice("a write was refused as read-only (25006) by a server that is no longer the primary; running the transaction again on the new one")
                    continue
                }
                guard let transient = Self.transientError(error) else {
                    throw Self.connectionLevel(error, file: file, line: line)
                }
                guard attempt < policy.maximumAttempts else {
                    throw PhylacteryError(
                        .retriesExhausted,
                        "The transaction failed with \(transient.sqlState == "40P01" ? "a deadlock" : "a serialization failure") on each of its \(attempt) attempts",
                        sqlState: transient.sqlState, phase: transient.phase, attempts: attempt,
                        underlying: error, sql: transient.sql, file: file, line: line)
                }
                let delay = policy.delay(afterAttempt: attempt, randomFraction: Double.random(in: 0...1))
                self.logger.debug("retrying transaction", metadata: [
                    "attempt": "\(attempt)", "sqlstate": "\(transient.sqlState ?? "")", "delay": "\(delay)",
                ])
                try await Task.sleep(for: delay)
                attempt += 1
            }
        }
    }

    private func runTransaction<Result: Sendable>(
        on connection: PostgresConnection,
        attempt: Int,
        options: TransactionOptions,
        file: String,
        line: Int,
        _ body: (Transaction) async throws -> Result
    ) async throws -> Result {
        let transaction = Transaction(
            connection: connection, attempt: attempt, defaultSensitivity: self.configuration.options.defaultSensitivity, logger: self.logger)
        let watchdog = options.timeout.map { timeout in
            Task { [logger = self.logger] in
                do { try await Task.sleep(for: timeout) } catch { return }
                logger.warning("a transaction did not finish within \(timeout); closing its connection")
                transaction.state.markSessionLost()
                try? await connection.close()
            }
        }
        defer { watchdog?.cancel() }
        do {
            try await transaction.control(options.beginSQL, phase: .begin, file: file, line: line)
        } catch {
            if transaction.state.isSessionLost {
                try? await connection.close()
                throw DeadConnectionAtBegin(error: error)
            }
            throw error
        }
        let result: Result
        do {
            result = try await CurrentTransaction.$context.withValue(.init(client: ObjectIdentifier(self), task: CurrentTransaction.currentTask, transaction: transaction)) {
                try await body(transaction)
            }
        } catch {
            try await self.rollback(transaction, after: error, file: file, line: line)
            throw error
        }
        if transaction.state.isAborted {
            try await self.rollback(transaction, after: nil, file: file, line: line)
            throw PhylacteryError(
                .transactionFailed,
                "A statement in the transaction failed and the body returned normally; nothing was committed. Let the error propagate, or run the statement in a savepoint (tx.transaction { … }).",
                phase: .commit, attempts: attempt, file: file, line: line)
        }
        do {
            try await transaction.commit(file: file, line: line)
        } catch var error as PhylacteryError {
            if transaction.state.isSessionLost { try? await transaction.connection.close() }
            error.attempts = attempt
            throw error
        }
        return result
    }

    /// Rolls back after a failed body. If even ROLLBACK fails, the connection is closed so the pool never
    /// hands out a connection stuck inside a transaction.
    private func rollback(_ transaction: Transaction, after bodyError: (any Error)?, file: String, line: Int) async throws {
        if transaction.state.isSessionLost || transaction.connection.isClosed || bodyError.map(PhylacteryError.endsSession) == true {
            // The server already ended the session, and with it the transaction. Sending ROLLBACK
            // could wait forever behind the failed statement; closing makes the pool drop the connection.
            try? await transaction.connection.close()
            return
        }
        do {
            try await transaction.control("ROLLBACK", phase: .rollback, file: file, line: line)
        } catch {
            try? await transaction.connection.close()
            if var rollbackError = error as? PhylacteryError {
                rollbackError.message += bodyError.map { " (after the body failed with: \(String(describing: $0)))" } ?? ""
                throw rollbackError
            }
            throw error
        }
    }

    /// BEGIN failed because the connection's session had already ended: safe to retry elsewhere.
    struct DeadConnectionAtBegin: Error {
        let error: any Error
    }

    /// The ``PhylacteryError`` when `error` is a serialization failure or deadlock, else `nil`.
    static func transientError(_ error: any Error) -> PhylacteryError? {
        if let error = error as? PhylacteryError {
            return error.isTransient ? error : nil
        }
        if let psql = error as? PSQLError, let state = psql.serverInfo?[.sqlState], state == "40001" || state == "40P01" {
            return PhylacteryError.wrapping(psql, doing: "Running a query in a transaction", phase: .body)
        }
        return nil
    }

    /// Errors from leasing a connection become ``PhylacteryError``; the body's own errors pass through.
    static func connectionLevel(_ error: any Error, file: String, line: Int) -> any Error {
        if error is PhylacteryError { return error }
        let typeName = String(reflecting: type(of: error))
        if error is PSQLError || typeName.contains("ConnectionPoolError") {
            return PhylacteryError.wrapping(error, doing: "Getting a connection from the pool", file: file, line: line)
        }
        return error
    }
}
