import Foundation
import Logging
import Phylactery
import PhylacteryEmbedded
import PostgresNIO

/// What a restored cluster must pass before it is swapped in: promoted (out of recovery), the
/// chambers there, the migration ledger whole (each revision's parent the one before) with its
/// registry readable, the facts' immutability triggers present and enabled, and `pg_amcheck`
/// clean on every table and B-tree index of the chambers.
struct RestoreChecks {
    let server: EmbeddedServer
    let tools: PostgresTools
    let logger: Logger
    let progress: BackupProgress

    struct Result {
        var lines: [String]
        var migrationHead: String?
    }

    /// The schema pg_amcheck's functions are installed in for the check (and dropped after).
    static let amcheckSchema = "phylactery_amcheck"

    func run() async throws(BackupError) -> Result {
        progress(.step("Checking the restored cluster (chambers, migration ledger, facts' triggers, pg_amcheck)"))
        let access = ServerAccess(server, logger: logger)
        let database = server.configuration.database
        var lines: [String] = []
        var failures: [String] = []
        let (inRecovery, chambers, ledger, registry, triggers, amcheckInstalled) = try await access.withConnection(database: database, doing: "Checking the restored cluster") { connection in
            let inRecovery = try await connection.query("SELECT pg_is_in_recovery()", logger: logger).collect().first?.decode(Bool.self) ?? true
            let chambers = try await connection.query("SELECT nspname FROM pg_namespace WHERE nspname = ANY(\(Chamber.allCases.map(\.schema)))", logger: logger)
                .collect().map { try $0.decode(String.self) }
            let hasLedger = try await connection.query("SELECT to_regclass('public.phylactery_migrations') IS NOT NULL", logger: logger).collect().first?.decode(Bool.self) ?? false
            var ledger: [(String, String?)] = []
            var registry: Int64?
            if hasLedger {
                ledger = try await connection.query("SELECT revision, parent FROM public.phylactery_migrations ORDER BY position", logger: logger)
                    .collect().map { try $0.decode((String, String?).self) }
                registry = try await connection.query("SELECT count(*) FROM public.phylactery_registry", logger: logger).collect().first?.decode(Int64.self)
            }
            let hasFacts = try await connection.query("SELECT to_regclass('verbatim.facts') IS NOT NULL", logger: logger).collect().first?.decode(Bool.self) ?? false
            var triggers: [String: String]?
            if hasFacts {
                triggers = Dictionary(uniqueKeysWithValues: try await connection.query(
                    "SELECT tgname::text, tgenabled::text FROM pg_trigger WHERE tgrelid = 'verbatim.facts'::regclass AND NOT tgisinternal", logger: logger
                ).collect().map { try $0.decode((String, String).self) })
            }
            let amcheck = try await connection.query("SELECT count(*) FROM pg_extension WHERE extname = 'amcheck'", logger: logger).collect().first?.decode(Int64.self) ?? 0
            return (inRecovery, chambers, hasLedger ? ledger : nil, registry, triggers, amcheck > 0)
        }
        if inRecovery {
            failures.append("the cluster is still in recovery (it was not promoted)")
        } else {
            lines.append("promoted: accepts writes")
        }
        var head: String?
        if let ledger {
            let missing = Chamber.allCases.map(\.schema).filter { !chambers.contains($0) }
            if missing.isEmpty {
                lines.append("chambers: \(Chamber.allCases.map(\.schema).joined(separator: ", "))")
            } else {
                failures.append("chambers missing: \(missing.joined(separator: ", "))")
            }
            var previous: String?
            for (revision, parent) in ledger {
                if parent != previous { failures.append("migration ledger broken at \(revision): its parent is \(parent ?? "none"), the revision before it is \(previous ?? "none")") }
                previous = revision
            }
            head = ledger.last?.0
            lines.append("migration ledger: \(ledger.count) revision(s), head \(head ?? "none"); registry: \(registry ?? 0) model(s)")
        } else {
            lines.append("no migration ledger (the federation was never migrated in this database)")
        }
        if let triggers {
            let wanted = Fact.schema.triggers.map(\.name)
            let bad = wanted.filter { name in !["O", "A"].contains(triggers[name] ?? "") }
            if bad.isEmpty {
                lines.append("facts: immutability triggers \(wanted.joined(separator: ", ")) enabled")
            } else {
                failures.append("facts: triggers \(bad.joined(separator: ", ")) missing or disabled — facts would not be immutable")
            }
        }
        let schemas = chambers.sorted()
        let relations = try await access.rows(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ANY(\(schemas)) AND c.relkind IN ('r', 'm', 't')",
            database: database, doing: "Counting the chambers' tables")
        if (try? relations.first?.decode(Int64.self)) ?? 0 > 0 {
            lines.append(try await self.amcheck(schemas: schemas, installed: amcheckInstalled, access: access))
        } else {
            lines.append("pg_amcheck: no tables in the chambers to check")
        }
        guard failures.isEmpty else {
            throw BackupError(.checkFailed, "The restored cluster failed its checks, so it was not swapped in (the current data directory is untouched):\n" + failures.map { "  - \($0)" }.joined(separator: "\n"))
        }
        return Result(lines: lines, migrationHead: head)
    }

    /// `pg_amcheck` over the chambers' tables and B-tree indexes; amcheck is installed into its own
    /// schema for the run and removed afterwards when it was not there before.
    func amcheck(schemas: [String], installed: Bool, access: ServerAccess) async throws(BackupError) -> String {
        let database = server.configuration.database
        let schema = SQLIdentifier.quote(Self.amcheckSchema)
        if !installed {
            for statement in ["CREATE SCHEMA IF NOT EXISTS \(schema)", "CREATE EXTENSION IF NOT EXISTS amcheck SCHEMA \(schema)"] {
                _ = try await access.rows(PostgresQuery(unsafeSQL: statement), database: database, doing: "Installing amcheck for the check")
            }
        }
        var arguments = ["-h", server.configuration.socketDirectory, "-p", String(server.configuration.port), "-U", server.configuration.superuser,
                         "-d", database, "--no-strict-names", "-P"]
        for schema in schemas { arguments += ["-s", schema] }
        let output: String
        do {
            output = try await tools.runWatching("pg_amcheck", arguments, failure: "pg_amcheck found corruption in the restored cluster") { output in
                if let pages = Self.pages(in: output) { progress(.advanced(done: pages.done * 8192, total: pages.total * 8192, unit: .bytes)) }
            }
        } catch {
            throw BackupError(.checkFailed, error.message, details: error.details)
        }
        if !installed {
            for statement in ["DROP EXTENSION IF EXISTS amcheck", "DROP SCHEMA IF EXISTS \(schema)"] {
                _ = try await access.rows(PostgresQuery(unsafeSQL: statement), database: database, doing: "Removing amcheck after the check")
            }
        }
        let relations = Self.pages(in: output, unit: "relations")?.total
        return "pg_amcheck: \(relations.map { "\($0) relations" } ?? "tables and indexes") in \(schemas.joined(separator: ", ")), no corruption"
    }

    /// The last `done/total <unit>` figure of pg_amcheck's progress output.
    static func pages(in output: String, unit: String = "pages") -> (done: UInt64, total: UInt64)? {
        for line in output.split(whereSeparator: { $0 == "\n" || $0 == "\r" }).reversed() {
            guard let range = line.range(of: " \(unit)") else { continue }
            let figure = line[..<range.lowerBound].split(separator: " ").last ?? ""
            let parts = figure.split(separator: "/")
            if parts.count == 2, let done = UInt64(parts[0]), let total = UInt64(parts[1]) { return (done, total) }
        }
        return nil
    }
}
