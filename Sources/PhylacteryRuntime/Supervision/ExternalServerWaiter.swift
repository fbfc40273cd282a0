import Foundation
import Logging
import Phylactery
import PostgresNIO

/// Waits for an external server: the I/O shell of ``ReadinessStateMachine``. Each probe opens one
/// connection and runs `SELECT 1`; what failed is classified (``ProbeOutcome``), and the machine
/// says when to probe again, what to log, and when to give up.
struct ExternalServerWaiter<C: Clock>: Sendable where C.Duration == Duration, C.Instant: Sendable {
    /// One attempt: the outcome, and the error behind it (already free of secrets).
    typealias Probe = @Sendable () async -> (ProbeOutcome, PhylacteryError?)

    let url: DatabaseURL
    let timeout: Duration
    let clock: C
    let logger: Logger
    let probe: Probe

    /// Returns once the server answers; throws ``PhylacteryError`` — `.authenticationFailed`,
    /// `.databaseNotFound`, `.connectionFailed` — with the fix when it does not.
    func wait() async throws {
        var machine = ReadinessStateMachine<C>(timeout: self.timeout)
        let target = self.url.endpointDescription
        var action = machine.begin(at: self.clock.now)
        var lastError: PhylacteryError?
        while true {
            switch action {
            case .probe, .probeAgain:
                if case .probeAgain(let at, let log) = action {
                    if let log { self.log(log, target: target) }
                    try await self.clock.sleep(until: at, tolerance: nil)
                }
                let (outcome, error) = await self.probe()
                lastError = error
                action = machine.probed(outcome, at: self.clock.now, random: Double.random(in: 0...1))
            case .ready(let log):
                if let log { self.log(log, target: target) }
                return
            case .fail(let failure):
                throw self.error(failure, target: target, underlying: lastError)
            }
        }
    }

    private func log(_ event: ReadinessStateMachine<C>.LogEvent, target: String) {
        switch event {
        case .changed(let outcome):
            self.logger.notice("waiting for PostgreSQL at \(target): it \(outcome.phrase)", metadata: ["timeout": "\(ConfigurationValues.render(self.timeout))"])
        case .stillWaiting(let outcome, let waited):
            self.logger.notice("still waiting for PostgreSQL at \(target) after \(ConfigurationValues.render(waited)): it \(outcome.phrase)")
        case .readyAfter(let waited):
            self.logger.notice("PostgreSQL at \(target) accepts connections", metadata: waited.map { ["waited": "\(ConfigurationValues.render($0))"] } ?? [:])
        }
    }

    private func error(_ failure: ReadinessStateMachine<C>.Failure, target: String, underlying: PhylacteryError?) -> PhylacteryError {
        let cause = underlying.map { ": \($0.message)" } ?? ""
        switch failure {
        case .fatal(.authenticationFailed):
            return PhylacteryError(
                .authenticationFailed,
                "PostgreSQL at \(target) refused user '\(self.url.username)'\(cause). Check the user and password: database.url, database.password or their files (\(ConfigurationKey.databaseURL.environmentVariable), \(ConfigurationKey.databasePasswordFile.environmentVariable)). Not retried: the same credentials would be refused again.",
                sqlState: underlying?.sqlState, underlying: underlying)
        case .timedOut(.databaseMissing, let waited):
            return PhylacteryError(
                .databaseNotFound,
                "PostgreSQL at \(target) still has no database '\(self.url.database)' after \(ConfigurationValues.render(waited)) (database.waitTimeout)\(cause). Create it (CREATE DATABASE \(SQLIdentifier.quote(self.url.database));) or fix the database in database.url.",
                sqlState: underlying?.sqlState, underlying: underlying)
        case .fatal(let outcome):
            return PhylacteryError(.connectionFailed, "PostgreSQL at \(target) \(outcome.phrase)\(cause). Check sslmode in database.url.", underlying: underlying)
        case .timedOut(let last, let waited):
            return PhylacteryError(
                .connectionFailed,
                "PostgreSQL at \(target) did not accept connections within \(ConfigurationValues.render(waited)) (database.waitTimeout); it \(last.phrase)\(cause).",
                sqlState: underlying?.sqlState, underlying: underlying)
        }
    }
}

extension ExternalServerWaiter {
    /// The real probe: one direct connection and `SELECT 1`. With several hosts, each in turn until
    /// one answers (the client finds the primary among them itself); when none does, a failure
    /// waiting cannot fix (a refused password) is reported before the first host's.
    static func connecting(to url: DatabaseURL, options: PhylacteryClient.Configuration.Options, logger: Logger) -> Probe {
        return {
            var outcomes: [(ProbeOutcome, PhylacteryError?)] = []
            for host in url.endpoints.indices {
                let outcome = await Self.probe(url.host(host), options: options, logger: logger)
                if outcome.0 == .ready { return outcome }
                outcomes.append(outcome)
            }
            return outcomes.first { $0.0.isFatal } ?? outcomes[0]
        }
    }

    private static func probe(_ url: DatabaseURL, options: PhylacteryClient.Configuration.Options, logger: Logger) async -> (ProbeOutcome, PhylacteryError?) {
        do {
            let connection = try await PostgresConnection.connect(
                configuration: try url.connectionConfiguration(options: options), id: 0, logger: logger)
            do {
                _ = try await connection.query("SELECT 1", logger: logger).collect()
                try? await connection.close()
                return (.ready, nil)
            } catch {
                try? await connection.close()
                return Self.classified(error)
            }
        } catch {
            return Self.classified(error)
        }
    }

    static func classified(_ error: any Error) -> (ProbeOutcome, PhylacteryError?) {
        let wrapped = PhylacteryError.wrapping(error, doing: "Connecting")
        var connectionFailure: String?
        var message: String?
        if let psql = error as? PSQLError {
            message = psql.serverInfo?[.message]
            if psql.serverInfo == nil {
                switch psql.code {
                case .authMechanismRequiresPassword, .saslError, .unsupportedAuthMechanism: connectionFailure = "authentication"
                case .sslUnsupported: connectionFailure = "tls"
                default: connectionFailure = psql.underlying.map { "\($0)" } ?? "\(psql.code)"
                }
            }
        } else {
            connectionFailure = "\(error)"
        }
        return (ProbeOutcome.classify(sqlState: wrapped.sqlState, message: message, connectionFailure: connectionFailure), wrapped)
    }
}
