import Foundation
import PostgresNIO

/// The result of ``PhylacteryClient/healthReport()``: one line per check, each with a fix when it fails.
public struct HealthReport: Sendable, CustomStringConvertible {
    /// One check's outcome.
    public struct Check: Sendable {
        public enum Status: String, Sendable { case ok, warning, failed }
        /// What was checked: `connection`, `hosts` (with several hosts in the URL: each one's role
        /// and a standby's replay lag), `server version`, `pgvector`, `chambers`, `facts`, `sessions`
        /// (a transaction pooler in the way, and what falls back), `replication role` (only when sessions
        /// start as `replica`), `pool`.
        public var name: String
        public var status: Status
        /// What was found.
        public var detail: String
        /// What to do about it, when something is wrong.
        public var fix: String?

        /// A check's outcome (for checks made outside the client, such as WAL archiving).
        public init(name: String, status: Status, detail: String, fix: String? = nil) {
            self.name = name
            self.status = status
            self.detail = detail
            self.fix = fix
        }
    }

    public var checks: [Check]

    /// A report of `checks`.
    public init(checks: [Check]) {
        self.checks = checks
    }

    /// True when no check failed (warnings allowed).
    public var isHealthy: Bool { !self.checks.contains { $0.status == .failed } }

    public var description: String {
        self.checks.map { check in
            let mark = switch check.status { case .ok: "ok  "; case .warning: "warn"; case .failed: "FAIL" }
            var line = "[\(mark)] \(check.name): \(check.detail)"
            if let fix = check.fix { line += "\n       fix: \(fix)" }
            return line
        }.joined(separator: "\n")
    }
}

extension PhylacteryClient {
    /// The lowest server version Phylactery supports.
    public static let minimumServerVersion = 150000

    /// Checks the server version, pgvector, the chambers, the protection of facts and the pool (and,
    /// with several hosts, what each host is now), without changing anything.
    ///
    /// Unlike other operations it does not create missing chambers, so it reports the database as it is.
    /// The `facts` check fails while `verbatim.facts` is not protected: an immutability trigger
    /// missing, disabled, changed, or not enabled `ALWAYS` (then a session that sets
    /// `session_replication_role = replica` could change facts).
    public func healthReport() async -> HealthReport {
        var checks: [HealthReport.Check] = []
        let url = self.configuration.url
        // With several hosts, each one's role and lag: asked first, so the report has them also when
        // no primary answers below.
        var hosts: HealthReport.Check?
        if let topology = self.topology {
            hosts = Self.hostsCheck(
                await self.probeHosts(topology), target: topology.target, maximumReplicaLag: self.configuration.options.maximumReplicaLag)
        }
        do {
            let (version, versionText, vectorAvailable, vectorInstalled, schemas, replicationRole, facts, sessions) = try await self.withDirectConnection { connection in
                let version = try await connection.query("SELECT current_setting('server_version_num')::int, current_setting('server_version')", logger: self.logger)
                    .collect().first!.decode((Int, String).self)
                let available = try await connection.query("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'", logger: self.logger)
                    .collect().first.map { try $0.decode(String.self) }
                let installed = try await connection.query("SELECT extversion FROM pg_extension WHERE extname = 'vector'", logger: self.logger)
                    .collect().first.map { try $0.decode(String.self) }
                let schemas = try await connection.query("SELECT nspname FROM pg_namespace", logger: self.logger)
                    .collect().map { try $0.decode(String.self) }
                // The role's or database's default, which every session of this client starts with.
                let role = try await connection.query("SELECT current_setting('session_replication_role')", logger: self.logger)
                    .collect().first?.decode(String.self) ?? "origin"
                let facts = schemas.contains(FactStore.table.schema)
                    ? try await CatalogReader.read(schemas: [FactStore.table.schema], on: connection, logger: self.logger).shape[FactStore.table]
                    : nil
                let sessions = try await self.sessionsCheck(on: connection)
                return (version.0, version.1, available, installed, Set(schemas), role, facts, sessions)
            }
            checks.append(.init(name: "connection", status: .ok, detail: "\(url.username)@\(url.endpointDescription), database \(url.database)"))
            if let hosts { checks.append(hosts) }
            if version >= Self.minimumServerVersion {
                checks.append(.init(name: "server version", status: .ok, detail: "PostgreSQL \(versionText)"))
            } else {
                checks.append(.init(name: "server version", status: .failed, detail: "PostgreSQL \(versionText) is older than 15",
                                    fix: "Use PostgreSQL 15 or newer; `phylactery db start` runs 18 locally."))
            }
            switch (vectorAvailable, vectorInstalled) {
            case (_, .some(let installed)):
                checks.append(.init(name: "pgvector", status: .ok, detail: "vector \(installed) installed"))
            case (.some(let available), nil):
                checks.append(.init(name: "pgvector", status: .warning, detail: "vector \(available) available but not created in this database",
                                    fix: "It is created on first use; or run: CREATE EXTENSION vector;"))
            case (nil, nil):
                checks.append(.init(name: "pgvector", status: .failed, detail: "the server has no pgvector extension",
                                    fix: "Install pgvector on the server, or use the embedded server (`phylactery db start`)."))
            }
            let missing = Chamber.allCases.filter { !schemas.contains($0.schema) }.map(\.schema)
            if missing.isEmpty {
                checks.append(.init(name: "chambers", status: .ok, detail: Chamber.allCases.map(\.schema).joined(separator: ", ")))
            } else {
                checks.append(.init(name: "chambers", status: .warning, detail: "missing: \(missing.joined(separator: ", "))",
                                    fix: "They are created on first use (`phylactery demo`, or any transaction)."))
            }
            if let facts {
                let problems = FactStore.protectionProblems(in: facts)
                if problems.isEmpty {
                    checks.append(.init(name: "facts", status: .ok, detail: "\(FactStore.table): UPDATE, DELETE and TRUNCATE refused by triggers that fire in every session"))
                } else {
                    checks.append(.init(name: "facts", status: .failed, detail: "\(FactStore.table) is not protected: " + problems.joined(separator: "; "),
                                        fix: "Run `phylactery migrate auto` (or start the daemon, which migrates): it restores the triggers; `migrate plan` shows the statements."))
                }
            } else {
                checks.append(.init(name: "facts", status: .ok, detail: "\(FactStore.table) not created yet (the first migration creates it with its triggers)"))
            }
            checks.append(sessions)
            if replicationRole == "replica" {
                checks.append(.init(name: "replication role", status: .warning,
                                    detail: "sessions start with session_replication_role = replica (a role or database setting): foreign keys and ordinary triggers do not fire in them",
                                    fix: "ALTER ROLE … RESET session_replication_role, or ALTER DATABASE … RESET session_replication_role, unless this database is a logical replica."))
            }
        } catch {
            checks.append(.init(name: "connection", status: .failed, detail: String(describing: error),
                                fix: "Check PHYLACTERY_DATABASE_URL, or start the local server with `phylactery db start`."))
            if let hosts { checks.append(hosts) }
            return HealthReport(checks: checks)
        }
        let start = ContinuousClock.now
        do {
            // The pool check goes through PostgresClient (needs run()), unlike the direct checks above.
            let one = try await self.postgres.withConnection { connection in
                try await connection.query("SELECT 1", logger: self.logger).collect().first?.decode(Int.self)
            }
            let elapsed = ContinuousClock.now - start
            let ms = Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1000
            checks.append(.init(name: "pool", status: one == 1 ? .ok : .failed,
                                detail: String(format: "round trip %.1f ms, up to %d connections", ms, self.configuration.options.maximumConnections)))
        } catch {
            checks.append(.init(name: "pool", status: .failed, detail: String(describing: PhylacteryError.wrapping(error, doing: "A pooled query")),
                                fix: "Make sure PhylacteryClient.run() is running (in a ServiceGroup)."))
        }
        return HealthReport(checks: checks)
    }
}
