import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
public import Phylactery
import PostgresNIO

/// Streaming replicas on PostgreSQL's own machinery: a standby is a base backup of the primary
/// (`pg_basebackup -R -X stream -C -S <slot>`) that streams the primary's WAL through a physical
/// replication slot and answers read-only queries (`hot_standby`); `pg_promote()` makes it a primary;
/// `pg_rewind` turns a former primary into a standby of the new one.
extension EmbeddedServer {
    /// Where a standby streams from.
    public enum ReplicationSource: Sendable, CustomStringConvertible {
        /// The embedded server of another home on this machine, which must be running. The standby
        /// streams over its Unix socket as the superuser (both servers run as the same user).
        case home(Configuration)
        /// Any PostgreSQL primary by URL. Its user needs the `REPLICATION` attribute (a superuser has
        /// it), and the primary's `pg_hba.conf` a `replication` rule that lets it in. A password in the
        /// URL ends up in the standby's `postgresql.auto.conf` (`primary_conninfo`, mode 0600).
        case url(DatabaseURL)

        public var description: String {
            switch self {
            case .home(let configuration): "the server in \(configuration.home)"
            case .url(let url): "the server at \(url)"
            }
        }
    }

    /// What ``createReplica(from:slot:synchronous:installIfNeeded:)`` and
    /// ``rejoin(from:slot:synchronous:)`` did.
    public struct ReplicaOutcome: Sendable {
        /// The standby's postmaster.
        public var pid: Int32
        /// How to connect to the standby (read-only).
        public var url: DatabaseURL
        /// The replication slot on the primary, which is also the standby's `application_name`.
        public var slot: String
        /// Whether the primary now waits for this standby to apply each commit (`remote_apply`).
        public var synchronous: Bool
        /// Things worth telling the operator.
        public var notes: [String]
    }

    /// What ``promote(timeout:)`` did.
    public struct PromoteOutcome: Sendable {
        /// The timeline the server now writes on (one more than the one it replayed).
        public var timeline: Int
    }

    /// The slot (and `application_name`) a standby in `home` gets unless one is given:
    /// `phylactery_` and the home's last path component, reduced to `[a-z0-9_]`, at most 63 bytes.
    public static func defaultSlotName(forHome home: String) -> String {
        let last = (home as NSString).lastPathComponent.lowercased()
        let cleaned = String(last.map { ($0.isASCII && ($0.isLetter || $0.isNumber)) ? $0 : "_" })
        return String(("phylactery_" + cleaned).prefix(63))
    }

    /// Slot names are also written into settings (`primary_slot_name`, `synchronous_standby_names`),
    /// so only PostgreSQL's own slot alphabet is taken: lower-case letters, digits and `_`.
    static func validateSlotName(_ name: String) throws(EmbeddedServerError) {
        guard !name.isEmpty, name.utf8.count <= 63, name.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "_") }) else {
            throw EmbeddedServerError(.replicationFailed, "'\(name)' cannot name a replication slot: use 1 to 63 lower-case letters, digits and '_' (--slot).")
        }
    }

    // MARK: - create

    /// Makes this home a streaming standby of `source` and starts it.
    ///
    /// The home must hold no cluster yet. The primary gets the `replication` rules in its
    /// `pg_hba.conf` a standby needs (for a home source) and a physical replication slot `slot`, so it
    /// keeps every WAL segment the standby has not received — also while the standby is stopped,
    /// which fills the primary's disk if the standby never comes back (drop the slot then). The
    /// standby streams with `application_name` = `slot`.
    ///
    /// With `synchronous`, the primary (which must be a home on this machine) waits for this standby
    /// to apply every commit before the commit returns (`synchronous_standby_names = 'FIRST 1 (slot)'`,
    /// `synchronous_commit = remote_apply`): a read on the standby after a commit sees it, and a
    /// promotion loses nothing committed.
    ///
    /// - Warning: with `synchronous`, commits on the primary wait while the standby is down: stop the
    ///   standby only after ``setSynchronousStandby(_:)`` with `nil` on the primary.
    ///
    /// - Returns: once the standby streams (and, when `synchronous`, is the primary's synchronous standby).
    /// - Throws: ``EmbeddedServerError`` naming the fix: ``EmbeddedServerError/Code/replicaHomeNotEmpty``,
    ///   ``EmbeddedServerError/Code/replicationSourceUnavailable``, ``EmbeddedServerError/Code/replicationSlotExists``,
    ///   ``EmbeddedServerError/Code/replicationRefused``, ``EmbeddedServerError/Code/replicationFailed``.
    ///   A slot this call created is dropped again when the copy fails.
    @discardableResult
    public func createReplica(
        from source: ReplicationSource, slot: String? = nil, synchronous: Bool = false, installIfNeeded: Bool = true
    ) async throws(EmbeddedServerError) -> ReplicaOutcome {
        let slot = slot ?? Self.defaultSlotName(forHome: configuration.home)
        try Self.validateSlotName(slot)
        var notes: [String] = []
        try self.requireEmptyHome()
        guard configuration.socketPath.utf8.count <= 107 else {
            throw EmbeddedServerError(.pathTooLong, "The socket path \(configuration.socketPath) is longer than the 107 bytes Unix sockets allow. Choose a shorter --home.")
        }
        if case .home(let primary) = source, primary.home == configuration.home {
            throw EmbeddedServerError(.replicaHomeNotEmpty, "A standby needs a home of its own: \(configuration.home) is the primary's. Choose another --home.")
        }
        let resolved = try self.resolve(source, applicationName: slot)
        let probe = try await resolved.probe(slot: slot)
        if synchronous {
            guard let primary = resolved.server else {
                throw EmbeddedServerError(.replicationFailed, "A synchronous standby needs the primary's home (--from HOME): its settings are written there. For a primary given by URL, set synchronous_standby_names = 'FIRST 1 (\(slot))' and synchronous_commit = remote_apply on it yourself.")
            }
            if probe.inRecovery {
                throw EmbeddedServerError(.notPrimary, "\(primary.configuration.home) is itself a standby: only a primary waits for a synchronous standby. Make the standby from the primary, or without --synchronous.")
            }
        }
        if let active = probe.slotActive {
            throw EmbeddedServerError(.replicationSlotExists, "\(resolved.name) already has a replication slot '\(slot)'\(active ? ", in use by a standby" : ""). Choose another --slot, or, if no standby needs it any more, drop it on the primary: SELECT pg_drop_replication_slot('\(slot)');")
        }
        if probe.inRecovery { notes.append("\(resolved.name) is a standby itself: this standby cascades from it") }
        try await resolved.server?.ensureReplicationAccess()

        let user: ServerUser? = ServerUser.isRoot ? try ServerUser.ensure(configuration.serverUser) : nil
        if let user { try FileSystem.requireReachable(configuration.home, by: user) }
        let installation = try self.locateInstallation(installIfNeeded: installIfNeeded, notes: &notes)
        guard installation.majorVersion == probe.majorVersion else {
            throw EmbeddedServerError(.versionMismatch, "\(resolved.name) runs PostgreSQL \(probe.majorVersion) but the binaries for \(configuration.home) are PostgreSQL \(installation.version): a standby needs the primary's major version. Pass matching ones with --pg-bin.")
        }
        try FileSystem.createDirectory(configuration.home, mode: 0o755)
        do {
            let usage = try self.holdExclusiveUsage(for: "making a standby")
            defer { usage.release() }
            try self.prepareDirectories(user: user, notes: &notes)
            let copy = try await self.runReplicationTool(installation.tool("pg_basebackup"), [
                "-D", configuration.dataDirectory, "-d", resolved.conninfo(database: nil),
                "-R", "-X", "stream", "-C", "-S", slot, "-c", "fast", "-w",
            ], user: user, password: resolved.password)
            guard copy.succeeded else {
                // pg_basebackup removes what it copied; the slot it may have made stays on the primary.
                await resolved.dropSlotIfInactive(slot)
                self.emptyDataDirectory()
                throw Self.classifyReplicationFailure(copy.output, source: resolved.name, doing: "The base backup (pg_basebackup) from \(resolved.name)")
            }
            try self.adoptPassword(from: resolved)
        }
        let started = try await self.start(installIfNeeded: false)
        notes += started.notes
        if synchronous, let primary = resolved.server {
            try await primary.setSynchronousStandby(slot)
        }
        try await self.waitUntilStreaming(to: resolved, applicationName: slot, synchronous: synchronous)
        return ReplicaOutcome(pid: started.pid, url: self.url, slot: slot, synchronous: synchronous, notes: notes)
    }

    /// Refuses a home that already runs a server or holds a cluster or other files in its data directory.
    func requireEmptyHome() throws(EmbeddedServerError) {
        if case .running(let pid, _) = self.pidFileState() {
            throw EmbeddedServerError(.replicaHomeNotEmpty, "A server (pid \(pid)) already runs in \(configuration.home). A standby needs a new home: choose another --home.")
        }
        let data = configuration.dataDirectory
        if FileManager.default.fileExists(atPath: data + "/PG_VERSION") {
            throw EmbeddedServerError(.replicaHomeNotEmpty, "\(configuration.home) already holds a cluster. A standby needs a new home: choose another --home, or, for a former primary, `phylactery db replica rejoin`.")
        }
        if let contents = try? FileManager.default.contentsOfDirectory(atPath: data), !contents.isEmpty {
            throw EmbeddedServerError(.replicaHomeNotEmpty, "\(data) is not empty. A standby needs an empty data directory: move its contents aside or choose another --home.")
        }
    }

    /// Removes what a failed copy left in the data directory (the directory itself stays).
    func emptyDataDirectory() {
        let data = configuration.dataDirectory
        for name in (try? FileManager.default.contentsOfDirectory(atPath: data)) ?? [] {
            try? FileManager.default.removeItem(atPath: data + "/" + name)
        }
    }

    /// The primary's catalog holds the superuser's password, replayed here: a standby's TCP
    /// password is the primary's. Copied from a home source's password file, or taken from a URL
    /// whose user is this home's superuser.
    func adoptPassword(from source: ResolvedReplicationSource) throws(EmbeddedServerError) {
        let password: String?
        if let server = source.server {
            password = FileSystem.readFile(server.configuration.passwordFile, owner: UInt32(geteuid()))?.trimmingCharacters(in: .whitespacesAndNewlines)
        } else if source.url.username == configuration.superuser {
            password = source.password
        } else {
            password = nil
        }
        guard let password, !password.isEmpty else { return }
        try FileSystem.replaceFile(configuration.passwordFile, contents: password + "\n", mode: 0o600)
    }

    // MARK: - synchronous replication

    /// Makes this server (a primary) wait for the standby whose `application_name` is `standby` to
    /// apply every commit (`synchronous_standby_names = 'FIRST 1 ("standby")'`, `synchronous_commit =
    /// remote_apply`), or, with `nil`, stop waiting. The settings go into
    /// ``Configuration/synchronousReplicationSettingsFile``, which every start includes; a running
    /// server reloads them at once.
    ///
    /// - Warning: while the named standby is down or behind, every commit on this server waits.
    public func setSynchronousStandby(_ standby: String?) async throws(EmbeddedServerError) {
        let path = configuration.synchronousReplicationSettingsFile
        if let standby {
            try Self.validateSlotName(standby)
            let user: ServerUser? = ServerUser.isRoot ? try ServerUser.ensure(configuration.serverUser) : nil
            try FileSystem.createDirectory((path as NSString).deletingLastPathComponent, mode: 0o755)
            let settings = """
                # Written by Phylactery (`phylactery db replica create --synchronous`): every commit waits
                # until the standby '\(standby)' has applied it. Remove this file and reload to stop waiting.
                synchronous_standby_names = 'FIRST 1 ("\(standby)")'
                synchronous_commit = remote_apply

                """
            try self.write(settings, to: path, user: user)
        } else {
            try? FileManager.default.removeItem(atPath: path)
        }
        guard case .running = self.pidFileState() else { return }
        let wanted = standby.map { "FIRST 1 (\"\($0)\")" } ?? ""
        try await self.withReplicationConnection(to: self.url.with(database: "postgres"), doing: "Reloading the settings of \(configuration.home)") { connection in
            _ = try await connection.query("SELECT pg_reload_conf()", logger: logger).collect()
            // The postmaster applies a reload asynchronously; new sessions see it once it has.
            let deadline = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < deadline {
                let current = try await connection.query("SELECT current_setting('synchronous_standby_names')", logger: logger).collect().first?.decode(String.self)
                if current == wanted { return }
                try await Task.sleep(for: .milliseconds(50))
            }
        }
    }

    // MARK: - promote

    /// Promotes this standby to a primary (`pg_promote()`, waiting up to `timeout` until it is out of
    /// recovery) and forgets its upstream (`primary_conninfo`, `primary_slot_name` are reset).
    ///
    /// - Warning: the former primary must not accept writes any more (stopped, killed, or fenced):
    ///   two primaries diverge. Bring it back as a standby with ``rejoin(from:slot:synchronous:)``.
    /// - Throws: ``EmbeddedServerError/Code/notStandby`` when this server is already a primary.
    @discardableResult
    public func promote(timeout: Duration = .seconds(60)) async throws(EmbeddedServerError) -> PromoteOutcome {
        guard case .running = self.pidFileState() else {
            throw EmbeddedServerError(.startFailed, "No server runs in \(configuration.home). Start it (`phylactery db start`) before promoting it.")
        }
        let seconds = max(1, Int(timeout.seconds.rounded(.up)))
        enum Result: Sendable { case alreadyPrimary, timedOut, promoted(timeline: Int) }
        let result = try await self.withReplicationConnection(to: self.url.with(database: "postgres"), doing: "Promoting the standby in \(configuration.home)") { connection -> Result in
            let inRecovery = try await connection.query("SELECT pg_is_in_recovery()", logger: logger).collect().first?.decode(Bool.self) ?? false
            guard inRecovery else { return .alreadyPrimary }
            let promoted = try await connection.query("SELECT pg_promote(true, \(seconds)::int)", logger: logger).collect().first?.decode(Bool.self) ?? false
            guard promoted else { return .timedOut }
            // A primary has no upstream; left in place, a later `pg_rewind -R` copy would inherit it.
            _ = try await connection.query("ALTER SYSTEM RESET primary_conninfo", logger: logger).collect()
            _ = try await connection.query("ALTER SYSTEM RESET primary_slot_name", logger: logger).collect()
            _ = try await connection.query("SELECT pg_reload_conf()", logger: logger).collect()
            let file = try await connection.query("SELECT pg_walfile_name(pg_current_wal_lsn())", logger: logger).collect().first?.decode(String.self) ?? ""
            return .promoted(timeline: Int(file.prefix(8), radix: 16) ?? 0)
        }
        switch result {
        case .alreadyPrimary:
            throw EmbeddedServerError(.notStandby, "The server in \(configuration.home) is already a primary (not in recovery); there is nothing to promote.")
        case .timedOut:
            throw EmbeddedServerError(.replicationFailed, "The standby in \(configuration.home) did not finish its promotion within \(seconds) s. See \(configuration.logFile); `phylactery db replica status` shows whether it has since.")
        case .promoted(let timeline):
            return PromoteOutcome(timeline: timeline)
        }
    }

    // MARK: - rejoin

    /// Turns this home's cluster — a former primary whose standby was promoted — into a standby of
    /// `source` (the new primary): stops it if it runs, creates the slot `slot` on the source (an
    /// inactive one of that name is reused), rewinds the data directory to where the timelines
    /// forked (`pg_rewind`, which needs data checksums — PostgreSQL 18's default — or `wal_log_hints`),
    /// writes the standby settings and starts it. Transactions the former primary committed after the
    /// fork (never replicated) are discarded by the rewind.
    ///
    /// - Parameter synchronous: make the source wait for this standby (a home source only).
    /// - Throws: ``EmbeddedServerError`` naming the fix: ``EmbeddedServerError/Code/notPrimary`` (the
    ///   source was not promoted), ``EmbeddedServerError/Code/rewindUnsupported``,
    ///   ``EmbeddedServerError/Code/timelineMismatch``, ``EmbeddedServerError/Code/rewindFailed``,
    ///   ``EmbeddedServerError/Code/replicationSlotExists`` (the slot is in use), ….
    @discardableResult
    public func rejoin(from source: ReplicationSource, slot: String? = nil, synchronous: Bool = false) async throws(EmbeddedServerError) -> ReplicaOutcome {
        let slot = slot ?? Self.defaultSlotName(forHome: configuration.home)
        try Self.validateSlotName(slot)
        var notes: [String] = []
        guard FileManager.default.fileExists(atPath: configuration.dataDirectory + "/PG_VERSION") else {
            throw EmbeddedServerError(.replicationFailed, "\(configuration.home) holds no cluster to rejoin with. Make a new standby there with `phylactery db replica create`.")
        }
        if case .home(let primary) = source, primary.home == configuration.home {
            throw EmbeddedServerError(.replicationFailed, "A server cannot rejoin as a standby of itself: --from must name the new primary's home or URL.")
        }
        let resolved = try self.resolve(source, applicationName: slot)
        let probe = try await resolved.probe(slot: slot)
        guard !probe.inRecovery else {
            throw EmbeddedServerError(.notPrimary, "\(resolved.name) is still a standby. Promote it first (`phylactery db promote`), then rejoin.")
        }
        if synchronous && resolved.server == nil {
            throw EmbeddedServerError(.replicationFailed, "A synchronous standby needs the primary's home (--from HOME): its settings are written there.")
        }
        if probe.slotActive == true {
            throw EmbeddedServerError(.replicationSlotExists, "\(resolved.name) has a replication slot '\(slot)' that a standby is using. Choose another --slot.")
        }
        let user: ServerUser? = ServerUser.isRoot ? try ServerUser.ensure(configuration.serverUser) : nil
        let installation = try self.locateInstallation(installIfNeeded: false, notes: &notes)
        guard installation.majorVersion == probe.majorVersion else {
            throw EmbeddedServerError(.versionMismatch, "\(resolved.name) runs PostgreSQL \(probe.majorVersion) but \(configuration.home) runs on PostgreSQL \(installation.version): a standby needs the primary's major version.")
        }
        do {
            let usage = try self.holdExclusiveUsage(for: "rejoining as a standby")
            defer { usage.release() }
            if case .stopped(let pid) = try self.stop() {
                notes.append("stopped the server (pid \(pid)) that ran in \(configuration.home)")
            }
            try await resolved.server?.ensureReplicationAccess()
            // The slot first: it keeps the WAL from here on until this standby streams.
            let created = try await resolved.createSlot(slot, exists: probe.slotActive != nil)
            if !created { notes.append("reused the inactive replication slot '\(slot)' on \(resolved.name)") }
            let rewind = try await self.runReplicationTool(installation.tool("pg_rewind"), [
                "--target-pgdata", configuration.dataDirectory, "--source-server", resolved.conninfo(database: resolved.url.database), "--write-recovery-conf",
            ], user: user, password: resolved.password)
            guard rewind.succeeded else {
                if created { await resolved.dropSlotIfInactive(slot) }
                throw self.classifyRewindFailure(rewind.output, source: resolved.name)
            }
            if rewind.output.contains("no rewind required") { notes.append("no rewind was needed: this cluster had not diverged from \(resolved.name)") }
            // pg_rewind -R writes primary_conninfo and standby.signal; the slot is ours to name (the
            // last setting in postgresql.auto.conf wins).
            let autoConf = configuration.dataDirectory + "/postgresql.auto.conf"
            let existing = FileSystem.readFile(autoConf, owner: user?.uid ?? UInt32(geteuid())) ?? ""
            try self.write(existing + "primary_slot_name = '\(slot)'\n", to: autoConf, user: user)
            // A standby waits for no one; left in place, a later promotion would wait for a standby that is gone.
            if FileManager.default.fileExists(atPath: configuration.synchronousReplicationSettingsFile) {
                try? FileManager.default.removeItem(atPath: configuration.synchronousReplicationSettingsFile)
                notes.append("removed this home's synchronous-replication settings: it is a standby now")
            }
            try self.adoptPassword(from: resolved)
        }
        let started = try await self.start(installIfNeeded: false)
        notes += started.notes
        // pg_rewind leaves the slots this cluster kept as a primary (pg_replslot is not copied). Their
        // standbys followed the old timeline and must be made again; left in place, the slots would
        // hold this standby's WAL for ever.
        let dropped = try await self.withReplicationConnection(to: self.url.with(database: "postgres"), doing: "Dropping the former primary's replication slots in \(configuration.home)") { connection -> [String] in
            var names: [String] = []
            for try await row in try await connection.query(
                "SELECT slot_name::text FROM pg_replication_slots WHERE slot_type = 'physical' AND NOT active", logger: logger) {
                names.append(try row.decode(String.self))
            }
            for name in names {
                _ = try await connection.query("SELECT pg_drop_replication_slot(\(name))", logger: logger).collect()
            }
            return names
        }
        for name in dropped {
            notes.append("dropped the replication slot '\(name)' this cluster kept as a primary (a standby that used it must be made again)")
        }
        if synchronous, let primary = resolved.server {
            try await primary.setSynchronousStandby(slot)
        }
        try await self.waitUntilStreaming(to: resolved, applicationName: slot, synchronous: synchronous)
        return ReplicaOutcome(pid: started.pid, url: self.url, slot: slot, synchronous: synchronous, notes: notes)
    }

    // MARK: - the primary's access rules

    /// Makes sure the superuser may open replication connections: `local replication <superuser>
    /// trust` (the socket directory is the server user's alone) and `host replication <superuser>
    /// 127.0.0.1/32 scram-sha-256` (a standby or pg_basebackup over TCP), appended to `pg_hba.conf`
    /// when missing, then reloaded. The server must be running.
    public func ensureReplicationAccess() async throws(EmbeddedServerError) {
        let superuser = configuration.superuser
        let counts = try await self.withReplicationConnection(to: self.url.with(database: "postgres"), doing: "Reading the access rules of \(configuration.home)") { connection -> [Int64] in
            let row = try await connection.query("""
                SELECT count(*) FILTER (WHERE type = 'local' AND auth_method IN ('trust', 'peer')),
                       count(*) FILTER (WHERE type = 'host' AND address = '127.0.0.1')
                FROM pg_hba_file_rules
                WHERE 'replication' = ANY(database) AND (\(superuser) = ANY(user_name) OR 'all' = ANY(user_name)) AND error IS NULL
                """, logger: logger).collect().first
            guard let row else { return [0, 0] }
            let (local, host) = try row.decode((Int64, Int64).self)
            return [local, host]
        }
        let (local, host) = (counts[0], counts[1])
        guard local == 0 || host == 0 else { return }
        // Read and replaced without following a link (the server's user can write in the data
        // directory): the rules are appended to a new file renamed over the old one.
        let user: ServerUser? = ServerUser.isRoot ? try ServerUser.ensure(configuration.serverUser) : nil
        let path = configuration.dataDirectory + "/pg_hba.conf"
        guard let existing = FileSystem.readFile(path, owner: user?.uid ?? UInt32(geteuid())) else {
            throw EmbeddedServerError(.fileSystem, "Could not read \(path) to let standbys and base backups connect; add these lines yourself: local replication \(superuser) trust / host replication \(superuser) 127.0.0.1/32 scram-sha-256")
        }
        var added = "\n# Added by Phylactery: replication connections for base backups and standbys.\n"
        if local == 0 { added += "local   replication   \(superuser)   trust\n" }
        if host == 0 { added += "host    replication   \(superuser)   127.0.0.1/32   scram-sha-256\n" }
        try self.write(existing + added, to: path, user: user)
        try await self.withReplicationConnection(to: self.url.with(database: "postgres"), doing: "Reloading the access rules of \(configuration.home)") { connection in
            _ = try await connection.query("SELECT pg_reload_conf()", logger: logger).collect()
        }
    }

    // MARK: - shared steps

    /// One direct connection to `url` for `body`; any failure becomes an ``EmbeddedServerError``.
    func withReplicationConnection<R: Sendable>(
        to url: DatabaseURL, doing: String, failure: EmbeddedServerError.Code = .replicationFailed,
        _ body: (PostgresConnection) async throws -> R
    ) async throws(EmbeddedServerError) -> R {
        try await Self.withReplicationConnection(to: url, logger: logger, doing: doing, failure: failure, body)
    }

    /// The connection of ``withReplicationConnection(to:doing:failure:_:)``, for a caller without a server.
    static func withReplicationConnection<R: Sendable>(
        to url: DatabaseURL, logger: Logger, doing: String, failure: EmbeddedServerError.Code,
        _ body: (PostgresConnection) async throws -> R
    ) async throws(EmbeddedServerError) -> R {
        var options = PhylacteryClient.Configuration.Options()
        options.createsChambers = false
        options.applicationName = "phylactery-replication"
        let client = PhylacteryClient(configuration: .init(url: url, options: options), logger: logger)
        do {
            return try await client.withDirectConnection(body)
        } catch let error as EmbeddedServerError {
            throw error
        } catch {
            throw EmbeddedServerError(failure, "\(doing) failed: \(error)")
        }
    }

    /// Runs `pg_basebackup` or `pg_rewind` (as the server's user when root), the source's password in
    /// `PGPASSWORD` (never on the command line), with a connect timeout.
    func runReplicationTool(_ tool: String, _ arguments: [String], user: ServerUser?, password: String?) async throws(EmbeddedServerError) -> ChildProcess.Outcome {
        var environment = Self.serverEnvironment
        environment["PGPASSWORD"] = password
        environment["PGCONNECT_TIMEOUT"] = "10"
        do {
            return try await ChildProcess.run(tool, arguments, as: user, environment: environment)
        } catch {
            throw EmbeddedServerError(.replicationFailed, "Could not run \(tool): \(error).")
        }
    }

    /// Waits (up to `timeout`) until the source lists this standby as streaming — and as its
    /// synchronous standby when `synchronous`; else throws with the standby's log.
    func waitUntilStreaming(to source: ResolvedReplicationSource, applicationName: String, synchronous: Bool, timeout: Duration = .seconds(90)) async throws(EmbeddedServerError) {
        // Only the end of the log matters (the start of this standby, its attempts to connect).
        let logSize = Self.fileSize(configuration.logFile)
        let logOffset: UInt64 = logSize > 65_536 ? logSize - 65_536 : 0
        let deadline = ContinuousClock.now + timeout
        var last = "not connected"
        while ContinuousClock.now < deadline {
            let row = try? await source.withConnection(doing: "Watching the standby") { connection in
                try await connection.query("SELECT state, sync_state FROM pg_stat_replication WHERE application_name = \(applicationName)", logger: logger)
                    .collect().first?.decode((String, String).self)
            }
            if let (state, syncState) = row ?? nil {
                last = "\(state), \(syncState)"
                if state == "streaming" && (!synchronous || syncState == "sync") { return }
            }
            if case .stale = self.pidFileState() { break }
            try? await Task.sleep(for: .milliseconds(100))
        }
        let log = Self.readLog(configuration.logFile, from: logOffset).split(separator: "\n").suffix(12).joined(separator: "\n")
        if log.contains("timeline") || log.contains("not a child of") {
            throw EmbeddedServerError(.timelineMismatch, "The standby in \(configuration.home) cannot follow \(source.name): their timelines do not join. Make a new standby with `phylactery db replica create` instead. Its log ends with:\n\(log)", details: log)
        }
        throw EmbeddedServerError(.replicationFailed, "The standby in \(configuration.home) did not start streaming from \(source.name) within \(Int(timeout.seconds)) s (last seen: \(last)). Its log (\(configuration.logFile)) ends with:\n\(log)", details: log)
    }

    static func classifyReplicationFailure(_ output: String, source: String, doing: String) -> EmbeddedServerError {
        let tail = output.split(separator: "\n").suffix(8).joined(separator: "\n")
        if output.contains("already exists") && output.contains("slot") {
            return EmbeddedServerError(.replicationSlotExists, "\(source) already has that replication slot. Choose another --slot, or drop the old one on the primary (SELECT pg_drop_replication_slot('…')).", details: tail)
        }
        if output.contains("pg_hba.conf") || output.contains("password authentication failed") || output.contains("no password supplied") {
            return EmbeddedServerError(.replicationRefused, "\(source) refused the replication connection. Its pg_hba.conf needs a rule such as `host replication USER 127.0.0.1/32 scram-sha-256` for the URL's user, which needs the REPLICATION attribute and its password in the URL. It said:\n\(tail)", details: tail)
        }
        if output.contains("Connection refused") || output.contains("No such file or directory") && output.contains("socket") || output.contains("could not connect") {
            return EmbeddedServerError(.replicationSourceUnavailable, "\(source) does not accept connections. Start it first. It said:\n\(tail)", details: tail)
        }
        if output.contains("No space left") {
            return EmbeddedServerError(.diskFull, "The disk ran out of space while copying from \(source). Free some space and try again.", details: tail)
        }
        return EmbeddedServerError(.replicationFailed, "\(doing) failed:\n\(tail)", details: output)
    }

    func classifyRewindFailure(_ output: String, source: String) -> EmbeddedServerError {
        let tail = output.split(separator: "\n").suffix(8).joined(separator: "\n")
        if output.contains("wal_log_hints") || output.contains("data checksums") {
            return EmbeddedServerError(.rewindUnsupported, "pg_rewind cannot rewind \(configuration.dataDirectory): the cluster has neither data checksums nor wal_log_hints = on. Make a new standby instead (move the home aside, then `phylactery db replica create`), and set wal_log_hints = on in postgresql.conf of clusters that may need rejoining.", details: tail)
        }
        if output.contains("different systems") || output.contains("common ancestor") || output.contains("timeline") {
            return EmbeddedServerError(.timelineMismatch, "\(configuration.home) and \(source) do not share a history pg_rewind can follow. Make a new standby instead: move \(configuration.home) aside and run `phylactery db replica create --from …`. pg_rewind said:\n\(tail)", details: tail)
        }
        if output.contains("could not connect") || output.contains("Connection refused") {
            return EmbeddedServerError(.replicationSourceUnavailable, "\(source) does not accept connections. Start it first. pg_rewind said:\n\(tail)", details: tail)
        }
        return EmbeddedServerError(.rewindFailed, "pg_rewind of \(configuration.dataDirectory) from \(source) failed; the data directory may be half rewound: run the rejoin again once the cause is fixed, or make a new standby. pg_rewind said:\n\(tail)", details: output)
    }

    /// A ``ReplicationSource`` made concrete: how to query it and how replication tools reach it.
    func resolve(_ source: ReplicationSource, applicationName: String) throws(EmbeddedServerError) -> ResolvedReplicationSource {
        switch source {
        case .home(var primary):
            let probe = EmbeddedServer(configuration: primary, logger: logger)
            guard case .running(_, let port) = probe.pidFileState() else {
                throw EmbeddedServerError(.replicationSourceUnavailable, "No server runs in \(primary.home). Start it first (`phylactery db start --home \(primary.home)`).")
            }
            // The port it runs on (its pid file says), whatever the caller's configuration guessed.
            if let port { primary.port = port }
            let server = EmbeddedServer(configuration: primary, logger: logger)
            return ResolvedReplicationSource(
                name: "the server in \(primary.home)", url: server.url.with(database: "postgres"), password: nil,
                applicationName: applicationName, server: server, logger: logger)
        case .url(let url):
            return ResolvedReplicationSource(name: "the server at \(url)", url: url, password: url.password, applicationName: applicationName, server: nil, logger: logger)
        }
    }
}

/// The primary a standby is made from or rejoins, made concrete by ``EmbeddedServer/resolve(_:applicationName:)``.
struct ResolvedReplicationSource: Sendable {
    /// For messages: "the server in /home/…".
    var name: String
    /// For queries (a home's: the superuser over its socket, the maintenance database).
    var url: DatabaseURL
    var password: String?
    /// The standby's `application_name` (its slot).
    var applicationName: String
    /// A home source's server.
    var server: EmbeddedServer?
    var logger: Logger

    /// What a standby needs to know of its source before anything is changed.
    struct Probe {
        var inRecovery: Bool
        var majorVersion: Int
        /// `nil`: no slot of that name; else whether a standby uses it.
        var slotActive: Bool?
    }

    /// A libpq connection string for the replication tools (`primary_conninfo` is derived from it).
    func conninfo(database: String?) -> String {
        func quoted(_ value: String) -> String {
            "'" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
        }
        var pairs: [(String, String)] = []
        switch url.endpoint {
        case .tcp(let host, let port): pairs += [("host", host), ("port", String(port))]
        case .unixSocket(let directory, let port): pairs += [("host", directory), ("port", String(port))]
        }
        pairs.append(("user", url.username))
        if let database { pairs.append(("dbname", database)) }
        if case .tcp = url.endpoint {
            pairs.append(("sslmode", url.tlsMode == .verifyFull ? "verify-full" : url.tlsMode.rawValue))
        }
        pairs.append(("application_name", applicationName))
        return pairs.map { "\($0.0)=\(quoted($0.1))" }.joined(separator: " ")
    }

    func withConnection<R: Sendable>(doing: String, _ body: (PostgresConnection) async throws -> R) async throws(EmbeddedServerError) -> R {
        try await EmbeddedServer.withReplicationConnection(to: url, logger: logger, doing: "\(doing) on \(name)", failure: .replicationSourceUnavailable, body)
    }

    func probe(slot: String) async throws(EmbeddedServerError) -> Probe {
        try await self.withConnection(doing: "Connecting to the primary") { connection in
            let row = try await connection.query("""
                SELECT pg_is_in_recovery(), current_setting('server_version_num')::int / 10000,
                       (SELECT active FROM pg_replication_slots WHERE slot_name = \(slot))
                """, logger: logger).collect().first
            guard let row else { throw EmbeddedServerError(.replicationSourceUnavailable, "\(name) returned nothing when asked for its state.") }
            let (inRecovery, major, active) = try row.decode((Bool, Int, Bool?).self)
            return Probe(inRecovery: inRecovery, majorVersion: major, slotActive: active)
        }
    }

    /// Creates the physical slot `slot`, reserving WAL from now on; `false` when it `exists` already.
    func createSlot(_ slot: String, exists: Bool) async throws(EmbeddedServerError) -> Bool {
        guard !exists else { return false }
        try await self.withConnection(doing: "Creating the replication slot '\(slot)'") { connection in
            _ = try await connection.query("SELECT pg_create_physical_replication_slot(\(slot), true)", logger: logger).collect()
        }
        return true
    }

    /// Drops `slot` when no standby uses it (the clean-up after a failed copy or rewind).
    func dropSlotIfInactive(_ slot: String) async {
        _ = try? await self.withConnection(doing: "Dropping the replication slot '\(slot)'") { connection in
            _ = try await connection.query(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = \(slot) AND NOT active", logger: logger).collect()
        }
    }
}
