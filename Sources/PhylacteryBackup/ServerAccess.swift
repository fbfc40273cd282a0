import Foundation
import Logging
import Phylactery
import PhylacteryEmbedded
import PostgresNIO

/// The superuser's way into an embedded server, and the file-system steps that must respect the
/// server's own user when this process is root.
struct ServerAccess: Sendable {
    let server: EmbeddedServer
    let logger: Logger

    init(_ server: EmbeddedServer, logger: Logger) {
        self.server = server
        self.logger = logger
    }

    /// Runs `body` on one direct connection to `database` (default: the maintenance database).
    func withConnection<R: Sendable>(
        database: String = "postgres", doing: String, _ body: (PostgresConnection) async throws -> R
    ) async throws(BackupError) -> R {
        var options = PhylacteryClient.Configuration.Options()
        options.createsChambers = false
        options.applicationName = "phylactery-backup"
        let client = PhylacteryClient(configuration: .init(url: server.url.with(database: database), options: options), logger: logger)
        do {
            return try await client.withDirectConnection(body)
        } catch let error as BackupError {
            throw error
        } catch {
            throw BackupError(.database, "\(doing) failed: \(error)")
        }
    }

    /// One query's rows, on a connection of its own.
    func rows(_ query: PostgresQuery, database: String = "postgres", doing: String) async throws(BackupError) -> [PostgresRow] {
        try await withConnection(database: database, doing: doing) { connection in
            try await connection.query(query, logger: logger).collect()
        }
    }

    // MARK: - Files for the server's user

    /// The server's user when this process is root, `nil` otherwise (everything runs as one user then).
    var serverUser: ServerUser? {
        get throws(BackupError) {
            guard ServerUser.isRoot else { return nil }
            do {
                return try ServerUser.ensure(server.configuration.serverUser)
            } catch {
                throw BackupError(.fileSystem, error.message)
            }
        }
    }

    /// Creates `path` (mode 0700) if it is missing, giving it to the server's user when this process
    /// is root; an existing directory is left exactly as it is.
    func createDirectory(_ path: String, forServer: Bool) throws(BackupError) {
        guard !FileManager.default.fileExists(atPath: path) else { return }
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw BackupError(.fileSystem, "Could not create \(path): \(error). Check that its parent exists and is writable (a drive or NAS share must be mounted).")
        }
        if forServer { try self.giveToServer(path) }
    }

    /// Hands `path` (recursively) to the server's user when this process is root.
    func giveToServer(_ path: String) throws(BackupError) {
        guard let user = try serverUser else { return }
        do {
            try FileSystem.chown(path, uid: user.uid, gid: user.gid)
        } catch {
            throw BackupError(.fileSystem, error.message)
        }
    }

    /// Whether the server's user may `test -<flag>` `path` (`w`: write, `x`: run or enter, `r`: read).
    /// Always true when this process is not root (it is the server's user then).
    func serverUserCan(_ flag: String, _ path: String) -> Bool {
        guard ServerUser.isRoot else { return true }
        let outcome = try? Subprocess.run("/usr/bin/test", ["-\(flag)", path], as: server.configuration.serverUser)
        return outcome?.succeeded ?? false
    }

    /// Writes a small file the server reads (mode 0600, the server's user's when root).
    func writeForServer(_ text: String, to path: String) throws(BackupError) {
        try DurableFile.replace(path, with: Data(text.utf8))
        try giveToServer(path)
    }
}
