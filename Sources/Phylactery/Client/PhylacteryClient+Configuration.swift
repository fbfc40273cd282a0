import Foundation
import NIOSSL
package import PostgresNIO

extension PhylacteryClient {
    /// Where the client connects and how it behaves.
    public struct Configuration: Sendable {
        /// The environment variable that names an external server: `PHYLACTERY_DATABASE_URL`.
        public static let environmentVariable = "PHYLACTERY_DATABASE_URL"
        /// The environment variable that names ``Options/sessionURL``: `PHYLACTERY_DATABASE_SESSION_URL`.
        public static let sessionEnvironmentVariable = "PHYLACTERY_DATABASE_SESSION_URL"

        /// The server and database to use.
        public var url: DatabaseURL
        /// Advanced knobs, with documented defaults.
        public var options: Options

        /// Advanced settings. The defaults suit a daemon on one machine.
        public struct Options: Sendable {
            /// Most connections the pool opens. Default 20.
            public var maximumConnections: Int = 20
            /// Connections the pool keeps open even when idle. Default 0.
            public var minimumConnections: Int = 0
            /// How long one connection attempt may take. Default 10 s.
            public var connectTimeout: Duration = .seconds(10)
            /// How transactions retry serialization failures and deadlocks.
            public var retry: RetryPolicy = .init()
            /// Create the chamber schemas and the `vector` extension on first use. Default `true`.
            public var createsChambers: Bool = true
            /// Reported to the server as `application_name`, visible in `pg_stat_activity`. Default `phylactery`.
            public var applicationName: String = "phylactery"
            /// The label a fact or memory gets when its write names none. Default ``Sensitivity/private``.
            public var defaultSensitivity: Sensitivity = .private
            /// With several hosts: a standby whose replay lag is beyond this is not read from
            /// (``PhylacteryClient/readTransaction(options:isolation:file:line:_:)`` goes to another
            /// standby or to the primary). Default 5 s.
            public var maximumReplicaLag: Duration = .seconds(5)
            /// With several hosts: how long a transaction, query or lease waits for a primary to
            /// appear (after the primary was lost, until a standby is promoted) before it fails with
            /// ``PhylacteryError/Code/connectionFailed``. Default 30 s.
            public var failoverTimeout: Duration = .seconds(30)
            /// With several hosts: how often every host is asked its role and replay lag; while no
            /// primary is known, four times as often. A failed connection or a write refused as
            /// read-only triggers a check at once. Default 1 s.
            public var topologyCheckInterval: Duration = .seconds(1)
            /// A direct connection to the same database, for what needs a session of its own, when
            /// ``Configuration/url`` goes through a transaction pooler (PgBouncer's `pool_mode = transaction`).
            /// Default `nil`.
            ///
            /// Through such a pooler each transaction may run on another server session, so LISTEN, session
            /// advisory locks and `SET` without `LOCAL` cannot be kept. The client detects a transaction
            /// pooler when it prepares (see ``PhylacteryClient/sessionFeatures``); with this URL set, the
            /// queue's listener, the periodic scheduler's leadership and the migration lock use a connection
            /// to it, and everything else still goes through ``Configuration/url``. Without it they fall
            /// back (polling instead of LISTEN, transaction-scoped locks) and the client logs one warning
            /// saying so. It must name the same database, not another pooler in transaction mode.
            public var sessionURL: DatabaseURL?

            public init() {}
        }

        public init(url: DatabaseURL, options: Options = .init()) {
            self.url = url
            self.options = options
        }

        /// Parses `url` (see ``DatabaseURL``); throws ``PhylacteryError/Code/invalidConfiguration``.
        public init(url: String, options: Options = .init()) throws {
            self.init(url: try DatabaseURL(parsing: url), options: options)
        }

        /// The configuration named by `PHYLACTERY_DATABASE_URL` (and `PHYLACTERY_DATABASE_SESSION_URL`
        /// for ``Options/sessionURL``), or `nil` when the first is unset or empty.
        /// A set but malformed value throws: a typo must never silently fall back to another server.
        public static func fromEnvironment(
            _ environment: [String: String]? = nil
        ) throws -> Configuration? {
            let environment = environment ?? ProcessInfo.processInfo.environment
            guard let text = environment[environmentVariable], !text.isEmpty else { return nil }
            do {
                var configuration = try Configuration(url: text)
                configuration.options.sessionURL = try sessionURLFromEnvironment(environment)
                return configuration
            } catch var error as PhylacteryError where error.code == .invalidConfiguration && !error.message.hasPrefix(sessionEnvironmentVariable) {
                error.message = "\(environmentVariable): " + error.message
                throw error
            }
        }

        /// ``Options/sessionURL`` as `PHYLACTERY_DATABASE_SESSION_URL` names it; `nil` when unset or empty.
        public static func sessionURLFromEnvironment(_ environment: [String: String]? = nil) throws -> DatabaseURL? {
            let environment = environment ?? ProcessInfo.processInfo.environment
            guard let text = environment[sessionEnvironmentVariable], !text.isEmpty else { return nil }
            do {
                return try DatabaseURL(parsing: text)
            } catch var error {
                error.message = "\(sessionEnvironmentVariable): " + error.message
                throw error
            }
        }
    }

    /// How a transaction retries after a serialization failure (40001) or deadlock (40P01).
    ///
    /// Attempt *n* waits a random time between half and all of `min(maximumDelay, baseDelay × 2ⁿ⁻¹)`
    /// before running the body again, so competing transactions spread out instead of colliding again.
    public struct RetryPolicy: Sendable, Hashable {
        /// How many times the body may run in total. Default 5; 1 disables retries.
        public var maximumAttempts: Int
        /// Delay before the second attempt. Default 10 ms.
        public var baseDelay: Duration
        /// Upper bound for one delay. Default 1 s.
        public var maximumDelay: Duration

        public init(maximumAttempts: Int = 5, baseDelay: Duration = .milliseconds(10), maximumDelay: Duration = .seconds(1)) {
            self.maximumAttempts = max(1, maximumAttempts)
            self.baseDelay = baseDelay
            self.maximumDelay = maximumDelay
        }

        /// The delay before attempt `attempt + 1`, given a random fraction in `0...1`.
        package func delay(afterAttempt attempt: Int, randomFraction: Double) -> Duration {
            let full = RetryBackoff(initial: self.baseDelay, multiplier: 2, maximum: self.maximumDelay, jitter: 0)
                .duration(afterAttempt: attempt, random: 0.5)
            return full * (0.5 + 0.5 * min(max(randomFraction, 0), 1))
        }
    }
}

extension DatabaseURL {
    /// A client TLS configuration for this URL's `sslmode`.
    private func tlsConfiguration() -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        // libpq's `require` encrypts without verifying the certificate; verify-* modes verify.
        if self.tlsMode == .require { tls.certificateVerification = .none }
        if self.tlsMode == .verifyFull { tls.certificateVerification = .fullVerification }
        return tls
    }

    /// The PostgresNIO pool configuration for this URL.
    package func clientConfiguration(options: PhylacteryClient.Configuration.Options) -> PostgresClient.Configuration {
        var configuration: PostgresClient.Configuration
        switch self.endpoint {
        case .tcp(let host, let port):
            let tls: PostgresClient.Configuration.TLS
            switch self.tlsMode {
            case .disable: tls = .disable
            case .prefer: tls = .prefer(self.tlsConfiguration())
            case .require, .verifyFull: tls = .require(self.tlsConfiguration())
            }
            configuration = .init(host: host, port: port, username: self.username, password: self.password, database: self.database, tls: tls)
        case .unixSocket:
            configuration = .init(unixSocketPath: self.endpoint.socketPath!, username: self.username, password: self.password, database: self.database)
        }
        configuration.options.maximumConnections = options.maximumConnections
        configuration.options.minimumConnections = options.minimumConnections
        configuration.options.connectTimeout = options.connectTimeout
        configuration.options.additionalStartupParameters = [("application_name", options.applicationName)]
        return configuration
    }

    /// The configuration for one direct connection (used to probe the server and bootstrap chambers).
    package func connectionConfiguration(options: PhylacteryClient.Configuration.Options) throws -> PostgresConnection.Configuration {
        var configuration: PostgresConnection.Configuration
        switch self.endpoint {
        case .tcp(let host, let port):
            let tls: PostgresConnection.Configuration.TLS
            switch self.tlsMode {
            case .disable: tls = .disable
            case .prefer: tls = .prefer(try NIOSSLContext(configuration: self.tlsConfiguration()))
            case .require, .verifyFull: tls = .require(try NIOSSLContext(configuration: self.tlsConfiguration()))
            }
            configuration = .init(host: host, port: port, username: self.username, password: self.password, database: self.database, tls: tls)
        case .unixSocket:
            configuration = .init(unixSocketPath: self.endpoint.socketPath!, username: self.username, password: self.password, database: self.database)
        }
        let seconds = options.connectTimeout.components.seconds
        configuration.options.connectTimeout = .milliseconds(max(1, seconds * 1000 + options.connectTimeout.components.attoseconds / 1_000_000_000_000_000))
        configuration.options.additionalStartupParameters = [("application_name", options.applicationName)]
        return configuration
    }
}
