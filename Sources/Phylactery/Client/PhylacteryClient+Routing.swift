import Logging
package import PostgresNIO

extension PhylacteryClient {
    /// The current primary's pool, waiting up to ``Configuration/Options/failoverTimeout`` for a
    /// primary when none is known (after the primary was lost, until a standby is promoted). With
    /// one host, that host's pool at once. For loops that hold a connection of their own (the queue's
    /// listener, the periodic scheduler's lock) and must follow a failover.
    package func primaryPool(file: String = #fileID, line: Int = #line) async throws -> PostgresClient {
        guard let topology = self.topology else { return self.pools[0] }
        let deadline = ContinuousClock.now.advanced(by: self.configuration.options.failoverTimeout)
        return self.pools[try await topology.host(for: .write, deadline: deadline, file: file, line: line)]
    }

    /// Leases a connection of the server `purpose` calls for and runs `body` on it, with that host's
    /// index (`nil` with one host, whose pool is used exactly as it always was).
    ///
    /// With several hosts: when no server fits (the primary was lost and none is promoted yet) the
    /// lease waits until one does or `deadline` (default: now plus ``Configuration/Options/failoverTimeout``)
    /// passes; a lease that fails before `body` runs is retried on the host the topology names next.
    /// A failure of `body` that ends its session, or a write refused as read-only (25006), is
    /// reported so the host is probed at once; the error itself is rethrown — `body` may have done
    /// something, so it is never run again here.
    func withRoutedConnection<Result>(
        _ purpose: TopologyStateMachine<ContinuousClock>.Purpose,
        deadline: ContinuousClock.Instant? = nil,
        isolation: isolated (any Actor)? = #isolation,
        file: String,
        line: Int,
        _ body: (PostgresConnection, Int?) async throws -> sending Result
    ) async throws -> sending Result {
        guard let topology = self.topology else {
            return try await self.pools[0].withConnection(isolation: isolation) { connection in
                try await body(connection, nil)
            }
        }
        let deadline = deadline ?? ContinuousClock.now.advanced(by: self.configuration.options.failoverTimeout)
        while true {
            let host = try await topology.host(for: purpose, deadline: deadline, file: file, line: line)
            // A read on a standby does not wait long for a connection: the primary can serve it.
            let patience = purpose == .read && host != topology.currentPrimary
                ? max(.seconds(1), self.configuration.options.topologyCheckInterval) : nil
            do {
                return try await topology.withConnection(host: host, patience: patience, isolation: isolation) { connection in
                    do {
                        return try await body(connection, host)
                    } catch {
                        self.noteFailure(error, on: host, purpose: purpose)
                        throw error
                    }
                }
            } catch let failed as ClientTopology.LeaseFailed {
                topology.connectionFailed(failed.host)
                self.logger.debug("no connection to \(topology.hosts[failed.host].endpoint); asking for a server again", metadata: ["error": "\(failed.error)"])
                if ContinuousClock.now >= deadline {
                    throw PhylacteryError.connecting(
                        failed.error, target: topology.hosts[failed.host].endpointDescription, url: topology.hosts[failed.host], file: file, line: line)
                }
            }
        }
    }

    /// Tells the topology about a failure of an operation on `host` that says something about the
    /// host: a session that ended, or a write refused because the server is read-only.
    func noteFailure(_ error: any Error, on host: Int, purpose: TopologyStateMachine<ContinuousClock>.Purpose) {
        guard let topology = self.topology else { return }
        if let dead = error as? DeadConnectionAtBegin {
            if PhylacteryError.endsSession(dead.error) || !(dead.error is PhylacteryError) { topology.connectionFailed(host) }
        } else if PhylacteryError.endsSession(error) {
            topology.connectionFailed(host)
        } else if purpose == .write, FailureClass.sqlState(of: error) == "25006" {
            topology.connectionFailed(host, refusedWrite: true)
        }
    }

    /// ``query(_:file:line:)`` with several hosts: PostgresNIO's own `query` on the primary's pool
    /// (which keeps the connection until the rows are read), retried on the next primary when the
    /// connection could not be had.
    func routedQuery(_ query: PostgresQuery, file: String, line: Int) async throws -> PostgresRowSequence {
        guard let topology = self.topology else {
            return try await self.pools[0].query(query, logger: self.logger, file: file, line: line)
        }
        let deadline = ContinuousClock.now.advanced(by: self.configuration.options.failoverTimeout)
        while true {
            let host = try await topology.host(for: .write, deadline: deadline, file: file, line: line)
            do {
                return try await topology.query(query, host: host, logger: self.logger, file: file, line: line)
            } catch let failed as ClientTopology.LeaseFailed {
                topology.connectionFailed(failed.host)
                if ContinuousClock.now >= deadline {
                    throw PhylacteryError.connecting(
                        failed.error, target: topology.hosts[failed.host].endpointDescription, url: topology.hosts[failed.host], file: file, line: line)
                }
            } catch {
                self.noteFailure(error, on: host, purpose: .write)
                throw error
            }
        }
    }
}

extension ClientTopology {
    /// Runs `query` through `host`'s pool (PostgresNIO's `query`, which holds the connection until
    /// the rows are read). While the lease waits, the host may be given up: the wait is cancelled
    /// and ``LeaseFailed`` thrown. A statement already sent is never abandoned.
    func query(_ query: PostgresQuery, host: Int, logger: Logger, file: String, line: Int) async throws -> PostgresRowSequence {
        let pool = self.pools[host]
        let (guardID, abandoned) = self.guardLease(on: host)
        let running = Task {
            try await pool.query(query, logger: logger, file: file, line: line)
        }
        let watcher = Task {
            await abandoned.wait()
            running.cancel()
        }
        defer {
            self.releaseGuard(guardID, on: host)
            abandoned.fulfil(())
            watcher.cancel()
        }
        do {
            return try await withTaskCancellationHandler {
                try await running.value
            } onCancel: {
                running.cancel()
            }
        } catch {
            // A pool error (the request cancelled while it waited, the circuit breaker of a pool that
            // cannot connect) means nothing was sent.
            if !Task.isCancelled, Self.isPoolError(error) { throw LeaseFailed(host: host, error: error) }
            throw error
        }
    }

    /// Whether `error` comes from PostgresNIO's pool itself (no connection was handed out).
    static func isPoolError(_ error: any Error) -> Bool {
        String(reflecting: type(of: error)).contains("ConnectionPoolError")
    }

    /// One direct connection to the primary, with its description for messages. While the client
    /// runs, to the primary it knows (waiting for one up to `failoverTimeout`); before, to the first
    /// host in the URL's order that takes writes, as libpq's `target_session_attrs` does.
    func directConnectionToPrimary(file: String, line: Int) async throws -> (PostgresConnection, String) {
        if self.isRunning {
            let deadline = ContinuousClock.now.advanced(by: self.options.failoverTimeout)
            let host = try await self.host(for: .write, deadline: deadline, file: file, line: line)
            let url = self.hosts[host]
            do {
                let connection = try await PostgresConnection.connect(
                    configuration: try url.connectionConfiguration(options: self.options), id: 0, logger: self.logger)
                return (connection, url.endpointDescription)
            } catch {
                self.connectionFailed(host)
                throw PhylacteryError.connecting(error, target: url.endpointDescription, url: url, file: file, line: line)
            }
        }
        var findings: [String] = []
        var firstError: (any Error, DatabaseURL)?
        for url in self.hosts {
            let connection: PostgresConnection
            do {
                connection = try await PostgresConnection.connect(
                    configuration: try url.connectionConfiguration(options: self.options), id: 0, logger: self.logger)
            } catch {
                findings.append("\(url.endpointDescription): \(Self.reason(error))")
                if firstError == nil { firstError = (error, url) }
                continue
            }
            do {
                let observation = try await Self.observe(on: connection, timeout: self.options.connectTimeout, logger: self.logger)
                if Machine.takesWrites(observation, target: self.target) { return (connection, url.endpointDescription) }
                findings.append("\(url.endpointDescription): \(observation.inRecovery ? "a standby" : "read-only")")
            } catch {
                findings.append("\(url.endpointDescription): \(Self.reason(error))")
            }
            await connection.closeBounded()
        }
        if self.hosts.count == 1, let (error, url) = firstError {
            throw PhylacteryError.connecting(error, target: url.endpointDescription, url: url, file: file, line: line)
        }
        throw PhylacteryError(
            .connectionFailed,
            "Connecting to PostgreSQL failed: no host takes writes (target_session_attrs=\(self.target.rawValue)). \(findings.joined(separator: "; ")). Start the primary, or promote a standby (`phylactery db promote`).",
            file: file, line: line)
    }
}
