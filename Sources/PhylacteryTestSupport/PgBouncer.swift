import Foundation
#if canImport(Glibc)
import Glibc
#endif
public import Phylactery
import PhylacteryEmbedded

/// A private PgBouncer (Debian's `pgbouncer`) in front of the test server, for tests and test passes
/// that run through a connection pooler.
///
/// It listens on a free port of 127.0.0.1 only, in `pool_mode = transaction` unless told otherwise,
/// with a wildcard database entry: every database of the server is reachable through it under the
/// same name, so each test's own database goes through it too. It logs in to the server as the
/// client does (the URL's user and password; clients authenticate to it with the same password, or
/// without one when the URL has none, as the embedded server's superuser on its socket). As root it
/// runs as the embedded server's unprivileged user, since PgBouncer refuses to run as root.
///
/// Its files (configuration, user list, pid file, log) live in ``home``; ``stop()`` ends it by the pid
/// in its pid file and removes the home.
public final class PgBouncer: Sendable {
    /// The directory of its configuration, pid file and log.
    public let home: String
    /// The TCP port it listens on, on 127.0.0.1.
    public let port: Int
    /// The server it pools connections to.
    public let server: DatabaseURL
    /// `transaction` or `session`.
    public let poolMode: String

    private init(home: String, port: Int, server: DatabaseURL, poolMode: String) {
        self.home = home
        self.port = port
        self.server = server
        self.poolMode = poolMode
    }

    /// The server's URL, through the pooler: same user, password and database.
    public var url: DatabaseURL {
        DatabaseURL(endpoint: .tcp(host: "127.0.0.1", port: self.port), username: self.server.username, password: self.server.password,
                    database: self.server.database, tlsMode: .disable)
    }

    /// The program: `PHYLACTERY_PGBOUNCER`, else `pgbouncer` on `PATH`, else Debian's `/usr/sbin/pgbouncer`.
    public static func executable() throws -> String {
        if let named = ProcessInfo.processInfo.environment["PHYLACTERY_PGBOUNCER"], !named.isEmpty { return named }
        if let found = Subprocess.which("pgbouncer") { return found }
        if FileManager.default.isExecutableFile(atPath: "/usr/sbin/pgbouncer") { return "/usr/sbin/pgbouncer" }
        throw EmbeddedServerError(.notInstalled, "Tests through a connection pooler need PgBouncer: install Debian's pgbouncer (apt-get install pgbouncer; scripts/test does it), or set PHYLACTERY_PGBOUNCER to the program.")
    }

    /// Starts a PgBouncer in front of `server` (default: the test server, ``TestDatabase/serverURL()``)
    /// in a new home named after `label`, and waits until it accepts connections.
    public static func start(_ label: String, server: DatabaseURL? = nil, poolMode: String = "transaction") async throws -> PgBouncer {
        let server = try server ?? TestDatabase.serverURL()
        let program = try executable()
        let home = try TestDatabase.temporaryHome("pgb-\(label)")
        let user: ServerUser? = ServerUser.isRoot ? try ServerUser.ensure(EmbeddedServer.Configuration.fromEnvironment().serverUser) : nil
        if let user { chown(home, user.uid, user.gid) }
        var lastFailure = ""
        // A free port can be taken by someone else between our look and PgBouncer's bind: try a few.
        for _ in 0..<5 {
            let port = try TestDatabase.freePort()
            let bouncer = PgBouncer(home: home, port: port, server: server, poolMode: poolMode)
            try bouncer.writeFiles(owner: user)
            let outcome = try await ChildProcess.run(program, ["-d", "-q", bouncer.home + "/pgbouncer.ini"], as: user)
            if outcome.succeeded, await bouncer.waitUntilAccepting(timeout: .seconds(15)) { return bouncer }
            lastFailure = [outcome.output, bouncer.log].joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
            await bouncer.terminate()
        }
        try? FileManager.default.removeItem(atPath: home)
        throw EmbeddedServerError(.startFailed, "PgBouncer did not start in front of \(server.endpointDescription): \(lastFailure.suffix(2000))")
    }

    /// Stops it (SIGTERM by its pid file, then SIGKILL if it is still there after 10 s) and removes its home.
    public func stop() async {
        await Self.stop(home: self.home)
    }

    /// Stops the PgBouncer whose home is `home` (one started by another process, such as the test
    /// command's pass through a pooler) and removes the home.
    public static func stop(home: String) async {
        await Self.terminate(home: home)
        try? FileManager.default.removeItem(atPath: home)
    }

    /// What it logged, for failure messages.
    public var log: String { (try? String(contentsOfFile: self.home + "/pgbouncer.log", encoding: .utf8)) ?? "" }

    /// The pid in the pid file in `home`, when that process runs.
    static func pid(home: String) -> pid_t? {
        guard let text = try? String(contentsOfFile: home + "/pgbouncer.pid", encoding: .utf8),
              let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 1 else { return nil }
        return kill(pid, 0) == 0 ? pid : nil
    }

    private func terminate() async { await Self.terminate(home: self.home) }

    private static func terminate(home: String) async {
        guard let pid = Self.pid(home: home) else { return }
        kill(pid, SIGTERM)
        let deadline = ContinuousClock.now + .seconds(10)
        while kill(pid, 0) == 0, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
        }
        if kill(pid, 0) == 0 { kill(pid, SIGKILL) }
    }

    /// The configuration: the wildcard database entry pointing at the server, and the user list.
    private func writeFiles(owner: ServerUser?) throws {
        let target: String
        switch self.server.endpoint {
        case .tcp(let host, let port): target = "host=\(host) port=\(port)"
        case .unixSocket(let directory, let port): target = "host=\(directory) port=\(port)"
        }
        let configuration = """
            ; Written by PhylacteryTestSupport's PgBouncer for one test run; removed when it stops.
            [databases]
            * = \(target)

            [pgbouncer]
            listen_addr = 127.0.0.1
            listen_port = \(self.port)
            unix_socket_dir =
            pool_mode = \(self.poolMode)
            auth_type = \(self.server.password == nil ? "trust" : "scram-sha-256")
            auth_file = \(self.home)/userlist.txt
            logfile = \(self.home)/pgbouncer.log
            pidfile = \(self.home)/pgbouncer.pid
            max_client_conn = 2000
            default_pool_size = 20
            max_db_connections = 40
            server_idle_timeout = 10
            server_lifetime = 600
            server_tls_sslmode = disable
            client_tls_sslmode = disable
            ; PostgresNIO sends application_name only; other drivers' extra_float_digits is harmless.
            ignore_startup_parameters = extra_float_digits

            """
        func quoted(_ text: String) -> String { "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
        let users = "\(quoted(self.server.username)) \(quoted(self.server.password ?? ""))\n"
        for (name, text, mode) in [("pgbouncer.ini", configuration, 0o600), ("userlist.txt", users, 0o600)] {
            let path = self.home + "/" + name
            try text.write(toFile: path, atomically: false, encoding: .utf8)
            chmod(path, mode_t(mode))
            if let owner { chown(path, owner.uid, owner.gid) }
        }
    }

    /// Waits until a TCP connection to its port succeeds, or it has exited, or `timeout` passed.
    private func waitUntilAccepting(timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if Self.accepts(port: self.port) { return true }
            if Self.pid(home: self.home) == nil, self.log.contains("FATAL") { return false }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    private static func accepts(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}
