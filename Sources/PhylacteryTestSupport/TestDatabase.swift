import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Logging
public import Phylactery
import PhylacteryEmbedded
import PostgresNIO

/// A fresh database for one test or suite, on the server the test command provides.
///
/// The server is found the way the README says: `PHYLACTERY_DATABASE_URL`, else the running embedded
/// server of `PHYLACTERY_HOME`. When neither answers, ``withFreshDatabase(_:options:_:)`` throws with the
/// fix, so a test can never pass without a database.
///
/// Each call creates its own database (`t_<label>_<random>`) and drops it afterwards, so tests that
/// run in parallel never see each other's tables.
public enum TestDatabase {
    /// The server's URL (database part aside), or a readable error.
    public static func serverURL() throws -> DatabaseURL {
        do {
            return try EmbeddedServer.resolveDatabaseURL()
        } catch {
            throw PhylacteryError(.invalidConfiguration, "Tests need PostgreSQL with pgvector: \(error) The test command `scripts/test` provides one.")
        }
    }

    /// Whether the tests run through a transaction pooler (`PHYLACTERY_TEST_POOLER=transaction`, set by the
    /// test command's pass through PgBouncer): tests that watch LISTEN or a session lock themselves are
    /// skipped then, since the client falls back without them (see `SessionFeatures`).
    public static var throughTransactionPooler: Bool {
        ProcessInfo.processInfo.environment["PHYLACTERY_TEST_POOLER"] == "transaction"
    }

    /// The variable naming a role that may administer the test server: `PHYLACTERY_ADMIN_DATABASE_URL`.
    public static let adminEnvironmentVariable = "PHYLACTERY_ADMIN_DATABASE_URL"

    /// A superuser's URL for the few tests that administer the server (create roles, read a table's
    /// files, checkpoint): `PHYLACTERY_ADMIN_DATABASE_URL` when set — the test command sets it, since it
    /// runs the tests as a non-superuser owner role — else ``serverURL()``. Everything else runs as the
    /// role of ``serverURL()``, as on a managed server.
    public static func adminURL() throws -> DatabaseURL {
        guard let text = ProcessInfo.processInfo.environment[adminEnvironmentVariable], !text.isEmpty else { return try serverURL() }
        do {
            return try DatabaseURL(parsing: text)
        } catch {
            throw PhylacteryError(.invalidConfiguration, "\(adminEnvironmentVariable): \(error.message)")
        }
    }

    /// Runs `body` with a client of ``adminURL()`` on `database`, outside any suite's own client.
    public static func withAdminClient<Result: Sendable>(database: String, _ body: (PhylacteryClient) async throws -> Result) async throws -> Result {
        var options = adminOptions
        options.maximumConnections = 2
        return try await PhylacteryClient.withClient(configuration: .init(url: try adminURL().with(database: database), options: options), logger: logger, body)
    }

    /// Creates a database named after `label`, runs a client on it for `body`, then drops it.
    public static func withFreshDatabase<Result: Sendable>(
        _ label: String,
        options: PhylacteryClient.Configuration.Options = TestDatabase.defaultOptions,
        _ body: (PhylacteryClient) async throws -> Result
    ) async throws -> Result {
        try await withFreshDatabaseURL(label) { url in
            try await PhylacteryClient.withClient(configuration: .init(url: url, options: options), logger: logger, body)
        }
    }

    /// Creates a database named after `label`, hands `body` its URL (for what connects by itself: a
    /// runtime, another process), then drops it — also when `body` throws.
    public static func withFreshDatabaseURL<Result: Sendable>(_ label: String, _ body: (DatabaseURL) async throws -> Result) async throws -> Result {
        let server = try serverURL()
        let name = databaseName(for: label)
        let creator = PhylacteryClient(configuration: .init(url: server, options: adminOptions))
        try await creator.withDirectConnection { connection in
            _ = try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(SQLIdentifier.quote(name))"), logger: logger).collect()
        }
        // Dropped by the administrator when there is one: WITH (FORCE) ends every session still in the
        // database, and an owner that is not a superuser may not end other roles' sessions (a role a
        // test made, a superuser's), which fails the drop.
        let admin = PhylacteryClient(configuration: .init(url: try adminURL(), options: adminOptions))
        do {
            let result = try await body(server.with(database: name))
            try await drop(name, admin: admin)
            return result
        } catch {
            try? await drop(name, admin: admin)
            throw error
        }
    }

    /// Pool settings for tests: small pools, since many tests run at once on one server.
    public static var defaultOptions: PhylacteryClient.Configuration.Options {
        var options = PhylacteryClient.Configuration.Options()
        options.maximumConnections = 4
        options.connectTimeout = .seconds(10)
        return options
    }

    static var adminOptions: PhylacteryClient.Configuration.Options {
        var options = defaultOptions
        options.createsChambers = false
        return options
    }

    static let logger: Logger = {
        var logger = Logger(label: "phylactery.tests")
        logger.logLevel = ProcessInfo.processInfo.environment["PHYLACTERY_VERBOSE"] == nil ? .warning : .debug
        return logger
    }()

    /// `t_<label>_<8 hex>`, lower-case, within PostgreSQL's 63-byte limit.
    static func databaseName(for label: String) -> String {
        let cleaned = label.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "_" }
        let stem = String(String(cleaned).prefix(40))
        let suffix = String(UInt32.random(in: .min ... .max), radix: 16)
        return "t_\(stem)_\(suffix)"
    }

    static func drop(_ name: String, admin: PhylacteryClient) async throws {
        try await admin.withDirectConnection { connection in
            _ = try await connection.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(SQLIdentifier.quote(name)) WITH (FORCE)"), logger: logger).collect()
        }
    }
}

extension TestDatabase {
    /// PostgreSQL binaries for tests that run their own servers: `PHYLACTERY_PG_BIN`, else the ones
    /// installed in `PHYLACTERY_HOME` (the test command installs them), else a system PostgreSQL with pgvector.
    public static func installedBinaries() throws -> String {
        let configuration = EmbeddedServer.Configuration.fromEnvironment()
        guard let installation = try Installation.locate(configuration) else {
            throw EmbeddedServerError(.notInstalled, "Tests that run their own server need PostgreSQL binaries: run `phylactery db install` (the test command `scripts/test` does), or set PHYLACTERY_PG_BIN.")
        }
        return installation.binDirectory
    }

    /// A new, empty directory under the system's temporary directory, for a throw-away server.
    /// Kept short: the Unix socket path inside it must stay under 107 bytes.
    public static func temporaryHome(_ label: String) throws -> String {
        let path = "/tmp/phyl-\(label.prefix(12))-\(String(UInt32.random(in: .min ... .max), radix: 16))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        chmod(path, 0o755)
        return path
    }
}
