import Foundation
import Logging
import Phylactery
import PhylacteryEmbedded
import PostgresNIO
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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

    /// Creates `path` with `mode` (0700 by default) if it is missing, giving it to the server's user
    /// when this process is root and `forServer`; an existing directory is left exactly as it is.
    ///
    /// As root, only what the server itself writes belongs to its user (the archived WAL, a restore's
    /// workspace); directories it merely passes through are root's with mode 0711, so nothing root
    /// reads or writes there can be a link the server's user placed.
    func createDirectory(_ path: String, forServer: Bool, mode: Int = 0o700) throws(BackupError) {
        guard !FileManager.default.fileExists(atPath: path) else { return }
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: mode])
        } catch {
            throw BackupError(.fileSystem, "Could not create \(path): \(error). Check that its parent exists and is writable (a drive or NAS share must be mounted).")
        }
        chmod(path, mode_t(mode))
        if forServer { try self.giveToServer(path) }
    }

    /// Hands `path` — a file or directory this process just created — to the server's user when this
    /// process is root. A directory's contents are handed over first and the directory itself last,
    /// each with `lchown` (a link is never followed), so the server's user can place nothing inside
    /// before everything in it is handed over.
    func giveToServer(_ path: String) throws(BackupError) {
        guard let user = try serverUser else { return }
        var paths: [String] = []
        if let walker = FileManager.default.enumerator(atPath: path) {
            for case let relative as String in walker { paths.append(path + "/" + relative) }
        }
        for item in paths.reversed() + [path] {
            guard lchown(item, uid_t(user.uid), gid_t(user.gid)) == 0 else {
                throw BackupError(.fileSystem, "Could not give \(item) to the server's user '\(user.name)': \(String(cString: strerror(errno))).")
            }
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
