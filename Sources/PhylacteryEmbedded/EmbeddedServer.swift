import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
public import Logging
public import Phylactery
import PostgresNIO

/// The local PostgreSQL server Phylactery runs for itself: PostgreSQL 18 with pgvector, listening only
/// on a Unix socket inside its data directory.
///
/// Every method is idempotent: starting a running server says so, stopping a stopped one too. When the
/// process runs as root the server runs as the unprivileged system user
/// ``Configuration/serverUser`` (created on first start), because PostgreSQL refuses to run as root.
public struct EmbeddedServer: Sendable {
    public let configuration: Configuration
    let logger: Logger

    public init(configuration: Configuration = .fromEnvironment(), logger: Logger = Logger(label: "phylactery.embedded")) {
        self.configuration = configuration
        self.logger = logger
    }

    /// The URL clients use: the superuser over the Unix socket, database ``Configuration/database``.
    public var url: DatabaseURL {
        DatabaseURL(
            endpoint: .unixSocket(directory: configuration.socketDirectory, port: configuration.port),
            username: configuration.superuser, database: configuration.database)
    }

    /// What ``start(installIfNeeded:)`` did.
    public struct StartOutcome: Sendable {
        /// True when a server was already running on this data directory; nothing was changed.
        public var wasAlreadyRunning: Bool
        /// The process id of the postmaster.
        public var pid: Int32
        /// How to connect.
        public var url: DatabaseURL
        /// The binaries in use.
        public var installation: Installation
        /// Things worth telling the operator: installed, initialised, stale pid file removed, …
        public var notes: [String]
    }

    // MARK: - start

    /// Starts the server, installing the pinned binaries and running `initdb` first when needed.
    public func start(installIfNeeded: Bool = true) async throws(EmbeddedServerError) -> StartOutcome {
        var notes: [String] = []
        let configuration = self.configuration
        guard configuration.socketPath.utf8.count <= 107 else {
            throw EmbeddedServerError(.pathTooLong, "The socket path \(configuration.socketPath) is longer than the 107 bytes Unix sockets allow. Choose a shorter PHYLACTERY_HOME.")
        }
        let installation: Installation
        if let found = try Installation.locate(configuration) {
            installation = found
        } else if installIfNeeded {
            switch try Installer(configuration: configuration).install() {
            case .installed(let fresh):
                notes.append("installed PostgreSQL \(fresh.version) with pgvector into \(configuration.installDirectory)")
                installation = fresh
            case .alreadyInstalled(let existing):
                installation = existing
            }
        } else {
            throw EmbeddedServerError(.notInstalled, "No PostgreSQL with pgvector is installed for \(configuration.home). Run `phylactery db install`, or pass one with --pg-bin / PHYLACTERY_PG_BIN.")
        }
        if !installation.hasPGVector {
            notes.append("warning: \(installation.binDirectory) has no pgvector; the vectors chamber will not work")
        }

        // Who runs the server, and directories it can use.
        let user: ServerUser? = ServerUser.isRoot ? try ServerUser.ensure(configuration.serverUser) : nil
        try FileSystem.createDirectory(configuration.home, mode: 0o755)
        for directory in [configuration.dataDirectory, configuration.socketDirectory] where !FileManager.default.fileExists(atPath: directory) {
            try FileSystem.createDirectory(directory, mode: 0o700)
        }
        let logDirectory = (configuration.logFile as NSString).deletingLastPathComponent
        try FileSystem.createDirectory(logDirectory, mode: 0o755)
        if let user {
            for directory in [configuration.dataDirectory, configuration.socketDirectory, logDirectory] {
                try FileSystem.chown(directory, uid: user.uid, gid: user.gid)
            }
            let opened = try FileSystem.makeAncestorsTraversable(configuration.dataDirectory)
            if !opened.isEmpty {
                notes.append("made \(opened.joined(separator: ", ")) traversable (o+x) so the '\(user.name)' user can reach the data directory")
            }
        }

        // A cluster from another major version cannot be opened by these binaries.
        let versionFile = configuration.dataDirectory + "/PG_VERSION"
        if let text = try? String(contentsOfFile: versionFile, encoding: .utf8) {
            let major = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if major != String(installation.majorVersion) {
                throw EmbeddedServerError(.versionMismatch, Self.majorMismatchPlan(dataDirectory: configuration.dataDirectory, clusterMajor: major, binaries: installation))
            }
        }

        switch self.pidFileState() {
        case .running(let pid, _):
            try await self.ensureDatabase()
            try self.recordBinaries(pid: pid, installation: installation, kind: nil)
            return StartOutcome(wasAlreadyRunning: true, pid: pid, url: self.url, installation: installation, notes: notes)
        case .stale(let pid):
            try? FileManager.default.removeItem(atPath: configuration.dataDirectory + "/postmaster.pid")
            notes.append("removed the stale pid file of a server that did not shut down cleanly (pid \(pid)); PostgreSQL recovers from its WAL")
        case .absent:
            break
        }

        self.removeStaleSocketLocks()
        var initialised = false
        if !FileManager.default.fileExists(atPath: versionFile) {
            try self.initializeCluster(installation: installation, user: user)
            notes.append("initialised a PostgreSQL \(installation.majorVersion) cluster in \(configuration.dataDirectory)")
            initialised = true
        }
        try self.writeSettings(user: user)
        if configuration.listensOnTCP {
            try Self.requirePortFree(configuration.port)
        }

        var attempt = 0
        while true {
            attempt += 1
            let logOffset = Self.fileSize(configuration.logFile)
            let outcome = try self.pgctl(installation, ["start", "-w", "-t", "60", "-D", configuration.dataDirectory, "-l", configuration.logFile], user: user)
            if outcome.succeeded { break }
            let log = Self.readLog(configuration.logFile, from: logOffset)
            let failure = self.classifyStartFailure(log: log + "\n" + outcome.output)
            // After a crash the old server's children may still hold shared memory for a moment.
            if failure.code == .socketInUse, log.contains("shared memory"), attempt < 10 {
                try? FileManager.default.removeItem(atPath: configuration.dataDirectory + "/postmaster.pid")
                try? await Task.sleep(for: .milliseconds(500))
                continue
            }
            throw failure
        }
        guard case .running(let pid, _) = self.pidFileState() else {
            throw EmbeddedServerError(.startFailed, "pg_ctl reported a start but no server is running on \(configuration.dataDirectory). See \(configuration.logFile).")
        }
        try await self.ensureDatabase()
        try self.recordBinaries(pid: pid, installation: installation, kind: initialised ? "initdb" : nil)
        return StartOutcome(wasAlreadyRunning: false, pid: pid, url: self.url, installation: installation, notes: notes)
    }

    /// Removes socket lock files whose server is gone. PostgreSQL itself keeps a lock whose pid still
    /// exists, and a killed postmaster can linger as a zombie until its parent reaps it.
    func removeStaleSocketLocks() {
        let directory = configuration.socketDirectory
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where name.hasPrefix(".s.PGSQL.") && name.hasSuffix(".lock") {
            let lock = directory + "/" + name
            let pid = (try? String(contentsOfFile: lock, encoding: .utf8))?.split(separator: "\n").first.flatMap { Int32($0.trimmingCharacters(in: .whitespaces)) } ?? 0
            if !Self.isServerProcess(pid) {
                try? FileManager.default.removeItem(atPath: lock)
                try? FileManager.default.removeItem(atPath: String(lock.dropLast(".lock".count)))
            }
        }
    }

    /// Runs `initdb` into `dataDirectory` (default the configuration's) and writes Phylactery's access rules and settings include.
    package func initializeCluster(installation: Installation, user: ServerUser?, dataDirectory: String? = nil, extraArguments: [String] = []) throws(EmbeddedServerError) {
        let data = dataDirectory ?? configuration.dataDirectory
        if let contents = try? FileManager.default.contentsOfDirectory(atPath: data), !contents.isEmpty {
            throw EmbeddedServerError(.initdbFailed, "\(data) is not empty but holds no PostgreSQL cluster (no PG_VERSION). Move it aside; Phylactery will create a new cluster there.")
        }
        let outcome = try self.run(installation.tool("initdb"), [
            "-D", data, "-U", configuration.superuser, "-E", "UTF8", "--locale=C",
            "--auth-local=trust", "--auth-host=scram-sha-256", "--no-instructions",
        ] + extraArguments, user: user)
        guard outcome.succeeded else {
            if outcome.output.contains("No space left") {
                throw EmbeddedServerError(.diskFull, "initdb ran out of disk space in \(data). Free some space, remove \(data) and start again.", details: outcome.output)
            }
            throw EmbeddedServerError(.initdbFailed, "initdb failed for \(data): \(outcome.output.split(separator: "\n").last.map(String.init) ?? "exit \(outcome.status)").", details: outcome.output)
        }
        // The superuser connects through the socket, whose directory only the server user (and root)
        // can enter; every other role and every TCP connection needs a password.
        let hba = """
            # Written by Phylactery. The socket directory is mode 0700, so only the server's own user
            # (and root) reach the socket; other roles and TCP connections need a password.
            local   all   \(configuration.superuser)   trust
            local   all   all   scram-sha-256
            host    all   all   127.0.0.1/32   scram-sha-256
            host    all   all   ::1/128        scram-sha-256

            """
        try self.write(hba, to: data + "/pg_hba.conf", user: user)
        let conf = data + "/postgresql.conf"
        let existing = (try? String(contentsOfFile: conf, encoding: .utf8)) ?? ""
        try self.write(existing + "\n# Phylactery's settings (rewritten at every start)\ninclude_if_exists = 'phylactery.conf'\n", to: conf, user: user)
    }

    /// Settings that follow the configuration: where to listen, and a few limits.
    func writeSettings(user: ServerUser?) throws(EmbeddedServerError) {
        let settings = """
            # Written by Phylactery at every start; edit postgresql.conf for your own settings.
            listen_addresses = '\(configuration.listensOnTCP ? "127.0.0.1" : "")'
            port = \(configuration.port)
            unix_socket_directories = '\(configuration.socketDirectory.replacingOccurrences(of: "'", with: "''"))'
            unix_socket_permissions = 0700
            max_connections = 500

            """
        try self.write(settings, to: configuration.dataDirectory + "/phylactery.conf", user: user)
    }

    func write(_ text: String, to path: String, user: ServerUser?) throws(EmbeddedServerError) {
        do {
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        } catch {
            throw FileSystem.failure(error, creating: path)
        }
        chmod(path, 0o600)
        if let user { try FileSystem.chown(path, uid: user.uid, gid: user.gid) }
    }

    func classifyStartFailure(log: String) -> EmbeddedServerError {
        let tail = log.split(separator: "\n").suffix(12).joined(separator: "\n")
        if log.contains("Address already in use") {
            return EmbeddedServerError(.portInUse, "Port \(configuration.port) on 127.0.0.1 is already in use by another program. Stop it, or start with another port (--port).", details: tail)
        }
        if log.contains("lock file") && log.contains(".s.PGSQL") {
            return EmbeddedServerError(.socketInUse, "Another server already listens on \(configuration.socketPath). Stop it first (`phylactery db stop`), or choose another --port.", details: tail)
        }
        if log.contains("shared memory") || log.contains("another postmaster") {
            return EmbeddedServerError(.socketInUse, "Another PostgreSQL still holds \(configuration.dataDirectory). Stop it with `phylactery db stop` and try again.", details: tail)
        }
        if log.contains("incompatible with server") {
            return EmbeddedServerError(.versionMismatch, "The data directory \(configuration.dataDirectory) was created by another PostgreSQL version than \(configuration.pgBinOverride ?? "the installed one"). Upgrade it with pg_upgrade or move it aside.", details: tail)
        }
        if log.contains("No space left") {
            return EmbeddedServerError(.diskFull, "The disk holding \(configuration.dataDirectory) is full; PostgreSQL cannot start. Free some space and start again.", details: tail)
        }
        return EmbeddedServerError(.startFailed, "PostgreSQL did not start. Its log (\(configuration.logFile)) ends with:\n\(tail)", details: tail)
    }

    /// Creates ``Configuration/database`` when it does not exist yet.
    func ensureDatabase() async throws(EmbeddedServerError) {
        let database = configuration.database
        do {
            let admin = self.url.with(database: "postgres")
            let connection = try await PostgresConnection.connect(
                configuration: try admin.connectionConfiguration(options: .init()), id: 0, logger: logger)
            do {
                let exists = try await connection.query("SELECT count(*) FROM pg_database WHERE datname = \(database)", logger: logger)
                    .collect().first?.decode(Int.self) ?? 0
                if exists == 0 {
                    _ = try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(SQLIdentifier.quote(database))"), logger: logger).collect()
                }
                try? await connection.close()
            } catch {
                try? await connection.close()
                throw error
            }
        } catch let error as PSQLError where error.serverInfo?[.sqlState] == "42P04" {
            return  // created concurrently by another start
        } catch {
            throw EmbeddedServerError(.startFailed, "The server started but the database '\(database)' could not be created: \(PhylacteryError.wrapping(error, doing: "Creating it"))")
        }
    }

    // MARK: - stop

    /// What ``stop()`` did.
    public enum StopOutcome: Sendable, Equatable {
        /// The server with this pid was stopped.
        case stopped(pid: Int32)
        /// No server was running (a stale pid file is removed).
        case notRunning
    }

    /// Stops the server started on this data directory, and only that one (`pg_ctl stop -D …`).
    public func stop() throws(EmbeddedServerError) -> StopOutcome {
        switch self.pidFileState() {
        case .absent:
            return .notRunning
        case .stale:
            try? FileManager.default.removeItem(atPath: configuration.dataDirectory + "/postmaster.pid")
            return .notRunning
        case .running(let pid, _):
            guard let installation = try Installation.locate(configuration) else {
                throw EmbeddedServerError(.stopFailed, "A server (pid \(pid)) runs on \(configuration.dataDirectory) but its binaries are gone; stop it with: kill -INT \(pid)")
            }
            let user: ServerUser? = ServerUser.isRoot ? ServerUser.lookup(configuration.serverUser) : nil
            var outcome = try self.pgctl(installation, ["stop", "-D", configuration.dataDirectory, "-m", "fast", "-w", "-t", "60"], user: user)
            if !outcome.succeeded {
                outcome = try self.pgctl(installation, ["stop", "-D", configuration.dataDirectory, "-m", "immediate", "-w", "-t", "30"], user: user)
            }
            // pg_ctl returns once the pid file is gone; make sure the process itself has exited.
            let deadline = Date().addingTimeInterval(30)
            while Self.isServerProcess(pid) && Date() < deadline {
                Thread.sleep(forTimeInterval: 0.05)
            }
            if Self.isServerProcess(pid) {
                throw EmbeddedServerError(.stopFailed, "The server (pid \(pid)) did not stop: \(outcome.output.trimmingCharacters(in: .whitespacesAndNewlines))", details: outcome.output)
            }
            return .stopped(pid: pid)
        }
    }

    // MARK: - process state

    /// What the cluster's `postmaster.pid` says.
    public enum PidFileState: Sendable, Equatable {
        /// No pid file: the server is not running.
        case absent
        /// The file names a live postgres process.
        case running(pid: Int32, port: Int?)
        /// The file names a process that is gone: the server crashed or was killed.
        case stale(pid: Int32)
    }

    /// Reads `postmaster.pid` and checks the process it names.
    public func pidFileState() -> PidFileState {
        guard let text = try? String(contentsOfFile: configuration.dataDirectory + "/postmaster.pid", encoding: .utf8) else {
            return .absent
        }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard let pid = lines.first.flatMap({ Int32($0.trimmingCharacters(in: .whitespaces)) }) else {
            return .stale(pid: 0)
        }
        let port = lines.count > 3 ? Int(lines[3].trimmingCharacters(in: .whitespaces)) : nil
        return Self.isServerProcess(pid) ? .running(pid: pid, port: port) : .stale(pid: pid)
    }

    /// True when `pid` is a live (not zombie) postgres process.
    static func isServerProcess(_ pid: Int32) -> Bool {
        guard pid > 0, kill(pid, 0) == 0 || errno == EPERM else { return false }
        // A killed postmaster can linger as a zombie until its parent reaps it; it is gone all the same.
        if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
           let close = stat.lastIndex(of: ")") {
            let state = stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first
            if state == "Z" || state == "X" { return false }
        }
        if let cmdline = try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8) {
            return cmdline.contains("postgres")
        }
        return true
    }

    static func requirePortFree(_ port: Int) throws(EmbeddedServerError) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if bound != 0 && errno == EADDRINUSE {
            throw EmbeddedServerError(.portInUse, "Port \(port) on 127.0.0.1 is already in use by another program. Stop it, or start with another port (--port).")
        }
    }

    func pgctl(_ installation: Installation, _ arguments: [String], user: ServerUser?) throws(EmbeddedServerError) -> Subprocess.Outcome {
        try self.run(installation.tool("pg_ctl"), arguments, user: user)
    }

    package func run(_ tool: String, _ arguments: [String], user: ServerUser?) throws(EmbeddedServerError) -> Subprocess.Outcome {
        do {
            // A clean locale: the server's messages are parsed for failures, so they must be in English.
            var environment = ProcessInfo.processInfo.environment
            environment["LC_ALL"] = "C"
            environment["LANG"] = "C"
            return try Subprocess.run(tool, arguments, as: user?.name, environment: environment)
        } catch {
            throw EmbeddedServerError(.startFailed, "Could not run \(tool): \(error).")
        }
    }

    static func fileSize(_ path: String) -> UInt64 {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.uint64Value ?? 0
    }

    static func readLog(_ path: String, from offset: UInt64) -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { return "" }
        defer { try? handle.close() }
        try? handle.seek(toOffset: offset)
        return String(decoding: (try? handle.readToEnd()) ?? Data(), as: UTF8.self)
    }
}
