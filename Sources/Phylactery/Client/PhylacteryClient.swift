import Foundation
import NIOCore
public import Logging
public import PostgresNIO
public import ServiceLifecycle
import Synchronization

/// The entry point to Phylactery: a pool of connections to one PostgreSQL database — or, given a
/// URL with several hosts, one pool per host, with writes sent to the current primary and
/// ``readTransaction(options:isolation:file:line:_:)`` to a standby within the replay-lag bound.
///
/// The client is a `Service`: it works only while ``run()`` is running, so a daemon adds it to its
/// `ServiceGroup` next to its other services (queue workers, trace flusher, …).
///
/// ```swift
/// let client = PhylacteryClient(configuration: try .init(url: "postgres://me@localhost/app"))
/// let group = ServiceGroup(services: [client], logger: logger)
/// // in another task, while the group runs:
/// try await client.transaction { tx in
///     try await tx.execute("INSERT INTO public.notes (body) VALUES (\(text))")
/// }
/// ```
///
/// On first use the client opens one direct connection to check that the server answers (so a wrong
/// URL, a stopped server or a wrong password is reported at once with its cause, instead of waiting
/// for the pool to give up) and creates the chambers: the schemas of ``Chamber`` and the `vector`
/// extension.
///
/// With several hosts (`postgres://u:p@db1,db2/app`), ``run()`` also probes every host
/// (`pg_is_in_recovery()`, `transaction_read_only`, a standby's replay lag) every
/// ``Configuration/Options/topologyCheckInterval`` and at once after a connection to one fails or a
/// write is refused as read-only (SQLSTATE 25006). After a promotion the client finds the new
/// primary by itself: a transaction in flight on the lost primary fails with
/// ``PhylacteryError/Code/connectionFailed`` (nothing committed, safe to run again) or, when the
/// connection died during its COMMIT, ``PhylacteryError/Code/commitOutcomeUnknown``; new work waits up
/// to ``Configuration/Options/failoverTimeout`` for the next primary.
public final class PhylacteryClient: Service, Sendable {
    /// The settings this client was made with.
    public let configuration: Configuration
    /// The PostgresNIO pool of the current primary (of the only server, with one host), for the rare
    /// call Phylactery does not wrap. With several hosts it changes after a failover: fetch it for
    /// each use rather than keeping it.
    public var postgres: PostgresClient {
        self.pools[self.topology?.currentPrimary ?? 0]
    }
    /// One pool per host, in the URL's order.
    let pools: [PostgresClient]
    /// The primary and standbys, when the URL names several hosts (or asks for a role).
    let topology: ClientTopology?
    let logger: Logger
    private let ready = Mutex<Bool>(false)
    /// What ``prepare(file:line:)`` found about sessions (see ``sessionFeatures``).
    let sessionState = Mutex<SessionFeatures?>(nil)

    /// Creates a client. Nothing connects until ``run()`` runs and the first operation is made.
    public init(configuration: Configuration, logger: Logger = Logger(label: "phylactery")) {
        self.configuration = configuration
        self.logger = logger
        if configuration.url.needsTopology {
            let topology = ClientTopology(url: configuration.url, options: configuration.options, logger: logger)
            self.topology = topology
            self.pools = topology.pools
        } else {
            self.topology = nil
            self.pools = [PostgresClient(
                configuration: configuration.url.clientConfiguration(options: configuration.options),
                backgroundLogger: logger
            )]
        }
    }

    /// Runs the connection pool (every host's, and the probes of the hosts) until the surrounding
    /// task is cancelled or the service group shuts down.
    public func run() async throws {
        guard let topology = self.topology else {
            await cancelWhenGracefulShutdown {
                await self.pools[0].run()
            }
            return
        }
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                for pool in self.pools {
                    group.addTask { await pool.run() }
                }
                group.addTask { await topology.run() }
            }
        }
    }

    /// Checks that the server answers and creates the chambers, once per client.
    ///
    /// Every operation calls this first; call it yourself to fail fast at start-up.
    public func prepare(file: String = #fileID, line: Int = #line) async throws {
        if self.ready.withLock({ $0 }) { return }
        let features = try await self.withDirectConnection(file: file, line: line) { connection in
            if self.configuration.options.createsChambers {
                try await Chamber.bootstrap(on: connection, logger: self.logger)
            }
            return try await self.probeSessions(on: connection)
        }
        self.recordSessionFeatures(features)
        self.ready.withLock { $0 = true }
    }

    /// Opens one connection outside the pool, runs `body` and closes it. Connection errors become
    /// readable ``PhylacteryError``s with their cause. With several hosts it connects to the primary:
    /// the one the running client knows (waiting for one up to `failoverTimeout`), else — before
    /// ``run()`` — the first host, in the URL's order, that takes writes, as libpq does.
    package func withDirectConnection<R: Sendable>(
        file: String = #fileID,
        line: Int = #line,
        _ body: (PostgresConnection) async throws -> R
    ) async throws -> R {
        let connection: PostgresConnection
        let target: String
        if let topology = self.topology {
            (connection, target) = try await topology.directConnectionToPrimary(file: file, line: line)
        } else {
            target = self.configuration.url.endpointDescription
            do {
                connection = try await PostgresConnection.connect(
                    configuration: try self.configuration.url.connectionConfiguration(options: self.configuration.options),
                    id: 0,
                    logger: self.logger
                )
            } catch {
                throw PhylacteryError.connecting(error, target: target, url: self.configuration.url, file: file, line: line)
            }
        }
        do {
            let result = try await body(connection)
            try? await connection.close()
            return result
        } catch {
            try? await connection.close()
            throw PhylacteryError.wrapping(error, doing: "Preparing the database at \(target)", file: file, line: line)
        }
    }

    /// Leases a pooled connection for `body`. Prefer ``transaction(options:isolation:file:line:_:)``.
    ///
    /// The connection must not escape `body`.
    public func withConnection<Result>(
        isolation: isolated (any Actor)? = #isolation,
        file: String = #fileID,
        line: Int = #line,
        _ body: (PostgresConnection) async throws -> sending Result
    ) async throws -> sending Result {
        try await self.prepare(file: file, line: line)
        return try await self.withRoutedConnection(.write, isolation: isolation, file: file, line: line) { connection, _ in
            try await body(connection)
        }
    }

    /// Runs one statement outside any explicit transaction and returns its rows.
    ///
    /// Values interpolated into `query` are sent as bind parameters, never spliced into the SQL text.
    /// Errors raised while the rows stream are PostgresNIO's `PSQLError`.
    @discardableResult
    public func query(_ query: PostgresQuery, file: String = #fileID, line: Int = #line) async throws -> PostgresRowSequence {
        try await self.prepare(file: file, line: line)
        do {
            if self.topology != nil {
                return try await self.routedQuery(query, file: file, line: line)
            }
            return try await self.postgres.query(query, logger: self.logger, file: file, line: line)
        } catch {
            throw PhylacteryError.wrapping(error, doing: "Running a query", file: file, line: line)
        }
    }

    /// Runs one statement on a pooled connection and returns all its rows.
    ///
    /// Unlike ``query(_:file:line:)`` it leases the connection itself, so when the statement fails in a
    /// way that ends the session (a server restart, an administrator's termination) the connection is
    /// closed at once and the pool never hands it out again. Long-running loops (the queue's workers)
    /// use it so a server restart cannot leave them waiting on a dead connection.
    ///
    /// A statement still unanswered after `timeout` (a dead connection the client has not noticed, a
    /// server that stopped answering), or whose task is cancelled, has its connection closed, which
    /// fails it: such a loop never waits longer than that, and a shutdown never waits on a statement.
    package func rows(_ query: PostgresQuery, timeout: Duration = .seconds(60), file: String = #fileID, line: Int = #line) async throws -> [PostgresRow] {
        try await self.prepare(file: file, line: line)
        do {
            return try await self.withLiveConnection { connection in
                try await connection.collectGuarded(query, timeout: timeout, logger: self.logger, file: file, line: line)
            }
        } catch {
            throw PhylacteryError.wrapping(error, doing: "Running a query", file: file, line: line)
        }
    }

    /// ``rows(_:timeout:file:line:)`` for a prepared statement: the same guards (a live connection, the
    /// timeout, cancellation closing the connection, errors as ``PhylacteryError``), and the statement
    /// parsed and planned once per pooled connection. PostgresNIO prepares it on a connection's first
    /// use (Parse/Describe, one extra round trip then) and afterwards sends only Bind/Execute/Sync.
    ///
    /// Named statements live in a server session, and behind a transaction pooler the next call may
    /// land on another one: there (``SessionFeatures/transactionPooler``), and when a server session
    /// turns out not to know the statement (26000: a pooler the probe missed), the same SQL goes out
    /// unnamed — parsed at each call, still one round trip.
    package func rows<Statement: PostgresPreparedStatement>(
        prepared statement: Statement, timeout: Duration = .seconds(60), file: String = #fileID, line: Int = #line
    ) async throws -> [Statement.Row] where Statement.Row: Sendable {
        try await self.prepare(file: file, line: line)
        func unnamed() async throws -> [Statement.Row] {
            let query = PostgresQuery(unsafeSQL: Statement.sql, binds: try statement.makeBindings())
            let rows = try await self.rows(query, timeout: timeout, file: file, line: line)
            do {
                return try rows.map { try statement.decodeRow($0) }
            } catch {
                throw PhylacteryError.wrapping(error, doing: "Reading a query's rows", file: file, line: line)
            }
        }
        guard self.sessionFeatures?.transactionPooler == false else { return try await unnamed() }
        do {
            return try await self.withLiveConnection { connection in
                try await connection.guarded(timeout: timeout, logger: self.logger, file: file, line: line) {
                    var rows = [Statement.Row]()
                    for try await row in try await connection.execute(statement, logger: self.logger, file: file, line: line) { rows.append(row) }
                    return rows
                }
            }
        } catch {
            let failure = PhylacteryError.wrapping(error, doing: "Running a query", file: file, line: line)
            guard failure.sqlState == "26000" else { throw failure }
            self.logger.notice("a prepared statement was unknown to the server session (a transaction pooler?); sending it unnamed", metadata: ["statement": "\(Statement.name)"])
            return try await unnamed()
        }
    }

    /// Leases a pooled connection that is not already closed: the pool can hand one out whose
    /// session just ended before it noticed. Closed ones are skipped (nothing was sent on them).
    private func withLiveConnection<Rows: Sendable>(_ body: (PostgresConnection) async throws -> Rows) async throws -> Rows {
        for _ in 0..<self.configuration.options.maximumConnections * self.pools.count {
            let outcome: Rows? = try await self.withRoutedConnection(.write, file: #fileID, line: #line) { connection, host in
                if connection.isClosed {
                    if let host { self.topology?.connectionFailed(host) }
                    return nil
                }
                return try await body(connection)
            }
            if let outcome { return outcome }
        }
        return try await self.withRoutedConnection(.write, file: #fileID, line: #line) { connection, _ in try await body(connection) }
    }

    /// Runs one statement and discards its rows.
    public func execute(_ query: PostgresQuery, file: String = #fileID, line: Int = #line) async throws {
        let rows = try await self.query(query, file: file, line: line)
        do {
            for try await _ in rows {}
        } catch {
            throw PhylacteryError.wrapping(error, doing: "Running a query", file: file, line: line)
        }
    }
}

extension PostgresConnection {
    /// Runs `query` and collects its rows, never waiting on a dead connection: nothing is sent on a
    /// connection already closed (PostgresNIO 1.33 leaves a statement sent there waiting forever — seen
    /// on a connection held across a server that was killed), nor by a task already cancelled (its
    /// connection is closed instead, which ends its session and whatever the session held). A statement
    /// still unanswered after `timeout` (a connection whose server died without the client noticing),
    /// or whose task is cancelled, is given up: its connection is closed and the wait ends at once,
    /// even if PostgresNIO never fails the statement (a statement handed to a connection while it
    /// closes). A failure that ends the session closes the connection too, so nothing more is sent on it.
    package func collectGuarded(
        _ query: PostgresQuery, timeout: Duration, logger: Logger, file: String = #fileID, line: Int = #line
    ) async throws -> [PostgresRow] {
        try await self.guarded(timeout: timeout, logger: logger, file: file, line: line) {
            try await self.query(query, logger: logger, file: file, line: line).collect()
        }
    }

    /// Runs `operation` (one statement on this connection, its rows collected) under the guards of
    /// ``collectGuarded(_:timeout:logger:file:line:)``.
    package func guarded<Rows: Sendable>(
        timeout: Duration, logger: Logger, file: String = #fileID, line: Int = #line,
        _ operation: @escaping @Sendable () async throws -> Rows
    ) async throws -> Rows {
        guard !self.isClosed else {
            throw PhylacteryError(.connectionFailed, "the connection is closed: its session ended (the server restarted or ended it)", file: file, line: line)
        }
        if Task.isCancelled {
            await self.closeBounded()
            throw CancellationError()
        }
        // Whichever comes first: the answer, the timeout, the cancellation.
        let outcome = OneShot<(rows: Result<Rows, any Error>, answered: Bool)>()
        let statement = Task {
            do {
                outcome.fulfil((.success(try await operation()), true))
            } catch {
                outcome.fulfil((.failure(error), true))
            }
        }
        let watchdog = Task {
            try await Task.sleep(for: timeout)
            if outcome.fulfil((.failure(PhylacteryError(.connectionFailed, "a statement got no answer within \(timeout); its connection was closed", file: file, line: line)), false)) {
                logger.warning("a statement got no answer within \(timeout); closing its connection")
            }
        }
        let result = await withTaskCancellationHandler {
            await outcome.wait()
        } onCancel: {
            outcome.fulfil((.failure(CancellationError()), false))
        }
        watchdog.cancel()
        switch result.rows {
        case .success(let rows):
            return rows
        case .failure(let error) where !result.answered:
            // Given up: closing the connection also fails the statement if PostgresNIO still holds it.
            statement.cancel()
            await self.closeBounded()
            throw error
        case .failure(let error):
            if PhylacteryError.endsSession(error) { try? await self.close() }
            throw error
        }
    }
}

extension PostgresConnection {
    /// Closes the connection and waits for it to be closed — up to a second, so a connection that is
    /// stuck cannot hold the caller. Waiting matters: a pooled connection goes back to the pool as soon
    /// as its lease ends, and one still closing would be handed to the next statement, which fails.
    package func closeBounded() async {
        let closed = OneShot<Void>()
        let closing: EventLoopFuture<Void> = self.close()
        closing.whenComplete { _ in _ = closed.fulfil(()) }
        let bound = Task {
            try await Task.sleep(for: .seconds(1))
            _ = closed.fulfil(())
        }
        await closed.wait()
        bound.cancel()
    }
}

extension DatabaseURL {
    /// Where the server is, for messages: `the Unix socket /dir/.s.PGSQL.5432` or `host:port`; with
    /// several hosts, all of them.
    package var endpointDescription: String {
        self.endpoints.map(\.description).joined(separator: ", ")
    }
}

extension PhylacteryError {
    /// An error from opening a connection, with the likely fix.
    static func connecting(_ error: any Error, target: String, url: DatabaseURL, file: String, line: Int) -> PhylacteryError {
        var wrapped = PhylacteryError.wrapping(error, doing: "Connecting to PostgreSQL at \(target)", file: file, line: line)
        switch wrapped.code {
        case .authenticationFailed:
            wrapped.message += ". Check the user name and password in the URL (user '\(url.username)')."
        case .databaseNotFound:
            wrapped.message += ". Create it with: CREATE DATABASE \(SQLIdentifier.quote(url.database));"
        case .connectionFailed:
            switch url.endpoint {
            case .unixSocket:
                wrapped.message += ". Is the server running? For the local server run `phylactery db start`."
            case .tcp:
                wrapped.message += ". Is a server listening there, and does the network allow it?"
            }
        default:
            break
        }
        return wrapped
    }
}
