import Foundation
public import Phylactery
import PostgresNIO

extension EmbeddedServer {
    /// What `phylactery db status` reports.
    public struct Status: Sendable {
        /// The data directory.
        public var home: String
        /// The binaries that would run, if any.
        public var installation: Installation?
        /// Whether `initdb` has run.
        public var isInitialized: Bool
        /// The server process, when running.
        public var pid: Int32?
        /// The socket file clients connect to.
        public var socketPath: String
        /// How to connect.
        public var url: DatabaseURL
        /// Bytes used by the cluster (data directory only, not the binaries).
        public var dataSize: UInt64
        /// The version the running server reports (`SELECT version()`), when it answered.
        public var serverVersion: String?
        /// pgvector's version as the running server offers it, when it answered.
        public var pgvectorVersion: String?
        /// Why the running server could not be asked, if it could not.
        public var queryError: String?

        public var isRunning: Bool { self.pid != nil }
    }

    /// Inspects the files, and asks the server itself when it runs.
    public func status() async -> Status {
        let installation = try? Installation.locate(configuration)
        var status = Status(
            home: configuration.home,
            installation: installation ?? nil,
            isInitialized: FileManager.default.fileExists(atPath: configuration.dataDirectory + "/PG_VERSION"),
            pid: nil,
            socketPath: configuration.socketPath,
            url: self.url,
            dataSize: FileSystem.size(of: configuration.dataDirectory))
        guard case .running(let pid, _) = self.pidFileState() else { return status }
        status.pid = pid
        do {
            let connection = try await PostgresConnection.connect(
                configuration: try self.url.with(database: "postgres").connectionConfiguration(options: .init()), id: 0, logger: logger)
            do {
                status.serverVersion = try await connection.query("SELECT current_setting('server_version')", logger: logger)
                    .collect().first?.decode(String.self)
                status.pgvectorVersion = try await connection.query("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'", logger: logger)
                    .collect().first?.decode(String.self)
            } catch {
                status.queryError = String(describing: PhylacteryError.wrapping(error, doing: "Asking the server"))
            }
            try? await connection.close()
        } catch {
            status.queryError = String(describing: PhylacteryError.wrapping(error, doing: "Connecting"))
        }
        return status
    }

    /// The database URL a process should use: `PHYLACTERY_DATABASE_URL` when set, else this embedded
    /// server's (which must be running).
    ///
    /// - Throws: ``PhylacteryError`` for a malformed environment URL; ``EmbeddedServerError`` with the
    ///   fix when neither an external URL nor a running embedded server exists.
    public static func resolveDatabaseURL(
        environment: [String: String]? = nil
    ) throws -> DatabaseURL {
        if let external = try PhylacteryClient.Configuration.fromEnvironment(environment) {
            return external.url
        }
        let server = EmbeddedServer(configuration: .fromEnvironment(environment))
        guard case .running = server.pidFileState() else {
            throw EmbeddedServerError(.startFailed, "No database: PHYLACTERY_DATABASE_URL is not set and the local server in \(server.configuration.home) is not running. Start it with `phylactery db start`, or set PHYLACTERY_DATABASE_URL.")
        }
        return server.url
    }
}
