import Logging
public import PostgresNIO
import Synchronization

extension PhylacteryClient {
    /// What ``prepare(file:line:)`` found about sessions: whether a transaction pooler stands between
    /// the client and the server, and whether session features use
    /// ``Configuration/Options/sessionURL``. `nil` until the client has prepared.
    public var sessionFeatures: SessionFeatures? { self.sessionState.withLock { $0 } }

    /// Runs `body` on a connection whose session state lasts for the whole call: LISTEN, session
    /// advisory locks and `SET` without `LOCAL` are safe on it.
    ///
    /// That is a connection to ``Configuration/Options/sessionURL`` when it is set (opened for the call
    /// and closed after it); else a pooled connection when no transaction pooler was detected; else it
    /// throws ``PhylacteryError/Code/sessionUnavailable``. Callers that can do without a session check
    /// ``SessionFeatures/sessionAvailable`` first and fall back.
    package func withSessionConnection<R>(
        isolation: isolated (any Actor)? = #isolation,
        file: String = #fileID,
        line: Int = #line,
        _ body: (PostgresConnection) async throws -> sending R
    ) async throws -> sending R {
        try await self.prepare(file: file, line: line)
        if let url = self.configuration.options.sessionURL {
            return try await self.withDirectConnection(to: url, file: file, line: line, body)
        }
        guard self.sessionFeatures?.transactionPooler != true else {
            throw PhylacteryError(
                .sessionUnavailable,
                "this needs a session of its own (LISTEN, a session advisory lock or SET without LOCAL), but \(self.configuration.url.endpointDescription) is a transaction pooler. "
                    + "Set Options.sessionURL (the runtime's database.sessionURL) to a direct connection to the same database.",
                file: file, line: line)
        }
        return try await self.postgres.withConnection(isolation: isolation, body)
    }

    /// The probe described in ``SessionFeatures``, on `connection` (to ``Configuration/url``).
    func probeSessions(on connection: PostgresConnection) async throws -> SessionFeatures {
        SessionFeatures(
            transactionPooler: try await self.isTransactionPooler(self.configuration.url, on: connection),
            usesSessionURL: self.configuration.options.sessionURL != nil)
    }

    /// Whether `url`, which `connection` is connected to, is a transaction pooler: the backend of
    /// `connection`, of a second connection to `url`, then of `connection` again (see ``SessionFeatures``).
    func isTransactionPooler(_ url: DatabaseURL, on connection: PostgresConnection) async throws -> Bool {
        func backend(_ connection: PostgresConnection) async throws -> Int32 {
            try await connection.query("SELECT pg_backend_pid()", logger: self.logger).collect().first?.decode(Int32.self) ?? 0
        }
        let first = try await backend(connection)
        let other = try await self.connectDirectly(to: url)
        let second: Int32
        do {
            second = try await backend(other)
            try? await other.close()
        } catch {
            try? await other.close()
            throw error
        }
        let third = try await backend(connection)
        return second == first || third != first
    }

    /// The `sessions` line of ``healthReport()``: whether a transaction pooler is in the way, and what
    /// falls back; with a session URL, that it answers and is not a transaction pooler itself.
    func sessionsCheck(on connection: PostgresConnection) async throws -> HealthReport.Check {
        let features = try await self.probeSessions(on: connection)
        let fix = "Set PHYLACTERY_DATABASE_SESSION_URL (Options.sessionURL, the runtime's database.sessionURL) to a direct connection to the same database."
        guard features.transactionPooler || features.usesSessionURL else {
            return .init(name: "sessions", status: .ok, detail: "no transaction pooler detected: LISTEN, session locks and SET work on the pool")
        }
        if let url = self.configuration.options.sessionURL {
            do {
                let pooled = try await self.withDirectConnection(to: url) { try await self.isTransactionPooler(url, on: $0) }
                if pooled {
                    return .init(name: "sessions", status: .failed, detail: "the session URL \(url.endpointDescription) is a transaction pooler too",
                                 fix: "Point the session URL at the server itself (or a pooler in session mode), not at a transaction pooler.")
                }
            } catch {
                return .init(name: "sessions", status: .failed, detail: "the session URL does not answer: \(error)", fix: "Check the session URL.")
            }
            let pooler = features.transactionPooler ? "transaction pooler detected at \(self.configuration.url.endpointDescription)" : "no transaction pooler detected"
            return .init(name: "sessions", status: .ok, detail: "\(pooler); LISTEN, session locks and SET use the session URL \(url.endpointDescription)")
        }
        return .init(name: "sessions", status: .warning,
                     detail: "transaction pooler detected at \(self.configuration.url.endpointDescription), no session URL; falling back: " + features.fallbacks.joined(separator: "; "),
                     fix: fix)
    }

    /// Opens one connection to `url` outside the pool; a failure is a ``PhylacteryError`` with its likely fix.
    func connectDirectly(to url: DatabaseURL, file: String = #fileID, line: Int = #line) async throws -> PostgresConnection {
        do {
            return try await PostgresConnection.connect(
                configuration: try url.connectionConfiguration(options: self.configuration.options), id: 1, logger: self.logger)
        } catch {
            let which = url == self.configuration.url ? "" : " (the session URL)"
            throw PhylacteryError.connecting(error, target: url.endpointDescription + which, url: url, file: file, line: line)
        }
    }

    /// Opens one connection to `url` outside the pool, runs `body` and closes it.
    func withDirectConnection<R>(
        to url: DatabaseURL, file: String = #fileID, line: Int = #line, _ body: (PostgresConnection) async throws -> sending R
    ) async throws -> sending R {
        let connection = try await self.connectDirectly(to: url, file: file, line: line)
        do {
            let result = try await body(connection)
            try? await connection.close()
            return result
        } catch {
            try? await connection.close()
            throw error
        }
    }

    /// Keeps what the probe found and says once, at start, what falls back.
    func recordSessionFeatures(_ features: SessionFeatures) {
        let first = self.sessionState.withLock { state -> Bool in
            defer { state = features }
            return state == nil
        }
        guard first, features.transactionPooler else { return }
        if features.usesSessionURL {
            self.logger.info("a transaction pooler is between this client and the server; session features use the session URL",
                             metadata: ["url": "\(self.configuration.url)"])
        } else {
            self.logger.warning(
                "a transaction pooler is between this client and the server and no session URL is set (Options.sessionURL); falling back",
                metadata: ["url": "\(self.configuration.url)", "fallbacks": "\(features.fallbacks.joined(separator: "; "))"])
        }
    }
}
