import Foundation
import Phylactery
import PhylacteryBackup
import PhylacteryTestSupport
import PostgresNIO
import Testing

/// Logical backups with the installed pg_dump / pg_restore, against the test server.
@Suite struct LogicalBackupTests {
    struct Greeting: Job {
        static let kind = "backup.greeting"
        var name: String
    }

    static func tools() throws -> PostgresTools {
        try PostgresTools(binDirectory: try TestDatabase.installedBinaries())
    }

    static func temporaryPath(_ label: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("phyl-\(label)-\(UUID().uuidString.prefix(8))").path
    }

    /// Every table in the chambers with its row count, `schema.table` → rows.
    static func census(_ client: PhylacteryClient) async throws -> [String: Int] {
        let tables = try await client.query("""
            SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p') AND n.nspname IN ('public', 'vectors', 'traces', 'queue', 'verbatim')
            """).collect().map { try $0.decode((String, String).self) }
        var counts: [String: Int] = [:]
        for (schema, table) in tables {
            counts["\(schema).\(table)"] = try await client.query(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \"\(schema)\".\"\(table)\"")).collect().first?.decode(Int.self)
        }
        return counts
    }

    /// Rows in every chamber, written through the library.
    static func populate(_ client: PhylacteryClient) async throws -> (workspace: Workspace, memory: UUID) {
        let migrator = Migrator(client: client, federation: try Federation(core: Federation.coreModels))
        _ = try await migrator.auto()
        try await client.traces.createPartitions(days: 2)
        let space = EmbeddingSpace(model: "backup-test", fingerprint: "v1", dimensions: 3)
        return try await client.transaction { tx in
            let workspace = try await tx.insert(Workspace(name: "home\twith tab", settings: ["path": "C:\\new\nline", "ünï": "cödé"]))
            try await tx.facts.put("network", key: "gateway.ip", value: "10.0.0.1", source: "operator")
            try await tx.facts.supersede("network", key: "gateway.ip", value: "10.0.0.2", source: "operator")
            let memory = try await tx.memory.remember(Memory(content: "the dns is 192.168.1.53", embedding: try Vector([0.25, -1.5, 3]), space: space, owner: "core", source: "chat"))
            try await tx.memory.consecrate(memory.id, by: "operator")
            try await tx.enqueue(Greeting(name: "world"), options: .init(queue: "mail", priority: 3))
            return (workspace, memory.id)
        }
    }

    @Test func backupAndRestoreIntoAnEmptyDatabaseGivesBackEveryChamber() async throws {
        let directory = Self.temporaryPath("logical")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let tools = try Self.tools()
        let (expected, workspace, memory, source) = try await TestDatabase.withFreshDatabase("logical_source") { client in
            let (workspace, memory) = try await Self.populate(client)
            let manifest = try await LogicalBackup(client: client, tools: tools).backup(to: directory)
            #expect(manifest.chambers.map(\.chamber) == ["public", "vectors", "traces", "queue", "verbatim"])
            #expect(manifest.pgDumpVersion == tools.version)
            #expect(manifest.chambers.first { $0.chamber == "public" }?.tables.contains("public.phylactery_registry") == true)
            #expect(manifest.chambers.first { $0.chamber == "traces" }?.tables.count ?? 0 >= 3, "the spans table and its day partitions")
            return (try await Self.census(client), workspace, memory, client.configuration.url.database)
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        #expect(files == ["manifest.json", "public.dump", "queue.dump", "traces.dump", "vectors.dump", "verbatim.dump"])
        let mode = (try FileManager.default.attributesOfItem(atPath: directory)[.posixPermissions] as? Int) ?? 0
        #expect(mode == 0o700)

        try await TestDatabase.withFreshDatabase("logical_target") { client in
            // The fresh client has already created the (empty) chamber schemas and pgvector.
            let outcome = try await LogicalBackup(client: client, tools: tools).restore(from: directory)
            #expect(outcome.chambers == ["public", "vectors", "traces", "queue", "verbatim"])
            #expect(outcome.manifest.database == source)
            #expect(try await Self.census(client) == expected)
            #expect(expected["public.workspaces"] == 1 && expected["verbatim.facts"] == 2 && expected["queue.jobs"] == 1)

            let restored = try await client.find(Workspace.self, id: workspace.id)
            #expect(restored == workspace)
            try await client.transaction { tx in
                let fact = try await tx.facts.get("network", key: "gateway.ip")
                #expect(try fact?.decode(String.self) == "10.0.0.2" && fact?.version == 2)
                let entry = try await tx.find(Memory.self, id: memory)
                #expect(entry?.status == .consecrated)
                let space = try #require(try await tx.memory.spaces().first?.space)
                #expect(try await tx.memory.embedding(of: memory, in: space) == (try Vector([0.25, -1.5, 3])))
            }
            // The facts' triggers came back with them, after the rows.
            await #expect(throws: PhylacteryError.self) { try await client.execute("DELETE FROM verbatim.facts") }
            // The ledger and registry came back: the models match without migrating again.
            let plan = try await Migrator(client: client, federation: try Federation(core: Federation.coreModels)).plan()
            #expect(plan.isEmpty, "\(plan.steps.map(\.summary))")
        }
    }

    @Test func restoreRefusesADatabaseThatIsNotEmptyAndADamagedBackup() async throws {
        let directory = Self.temporaryPath("logical-refusals")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let tools = try Self.tools()
        try await TestDatabase.withFreshDatabase("logical_refusals") { client in
            _ = try await Self.populate(client)
            let backup = LogicalBackup(client: client, tools: tools)
            try await backup.backup(to: directory)

            let before = try await Self.census(client)
            let error = await #expect(throws: BackupError.self) { try await backup.restore(from: directory) }
            #expect(error?.code == .targetNotEmpty)
            #expect(error?.message.contains("public.") == true, "\(error?.message ?? "")")
            #expect(try await Self.census(client) == before)

            // A second backup into the same directory is refused before anything is written.
            let again = await #expect(throws: BackupError.self) { try await backup.backup(to: directory) }
            #expect(again?.code == .targetNotEmpty)

            // One changed byte in an archive: verification names it, and nothing is restored.
            let archive = directory + "/verbatim.dump"
            var bytes = try Data(contentsOf: URL(fileURLWithPath: archive))
            bytes[bytes.count / 2] ^= 0xFF
            try bytes.write(to: URL(fileURLWithPath: archive))
            let damaged = await #expect(throws: BackupError.self) { try await LogicalBackup.verify(directory, tools: tools) }
            #expect(damaged?.code == .invalidArchive)
            #expect(damaged?.message.contains("verbatim.dump") == true)
        }
    }

    @Test func aPasswordReachesPgDumpThroughAPassfileAndARoleWithoutSuperuser() async throws {
        let directory = Self.temporaryPath("logical-password")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let tools = try Self.tools()
        let role = "t_backup_\(UInt32.random(in: .min ... .max))"
        let password = "se:cr\\et 'pw"
        // Roles, databases owned by another role and pgvector are the administrator's (the admin URL).
        let server = try TestDatabase.adminURL()
        try await TestDatabase.withFreshDatabase("logical_admin") { fresh in
          try await TestDatabase.withAdminClient(database: fresh.configuration.url.database) { admin in
            let source = "\(role)_a", target = "\(role)_b"
            try await admin.execute(PostgresQuery(unsafeSQL: "CREATE ROLE \(role) LOGIN PASSWORD '\(password.replacingOccurrences(of: "'", with: "''"))'"))
            for database in [source, target] {
                try await admin.execute(PostgresQuery(unsafeSQL: "CREATE DATABASE \(database) OWNER \(role)"))
            }
            do {
                // pgvector is not a trusted extension: the superuser creates it, the role owns everything else.
                var options = PhylacteryClient.Configuration.Options()
                options.createsChambers = false
                for database in [source, target] {
                    try await PhylacteryClient.withClient(configuration: .init(url: server.with(database: database), options: options)) { superuser in
                        try await superuser.execute("CREATE EXTENSION IF NOT EXISTS vector")
                    }
                }
                var url = server.with(database: source)
                url.username = role
                url.password = password
                let expected = try await PhylacteryClient.withClient(configuration: .init(url: url)) { client in
                    _ = try await Self.populate(client)
                    try await LogicalBackup(client: client, tools: tools).backup(to: directory)
                    return try await Self.census(client)
                }
                let environment = PostgresTools.connectionEnvironment(url)
                #expect(environment["PGPASSWORD"] == nil && !environment.values.contains { $0.contains(password) })
                try await PhylacteryClient.withClient(configuration: .init(url: url.with(database: target))) { client in
                    try await LogicalBackup(client: client, tools: tools).restore(from: directory)
                    #expect(try await Self.census(client) == expected)
                }
                // Without the password the role cannot connect: pg_dump really needed the passfile.
                var withoutPassword = url
                withoutPassword.password = nil
                let refused = await #expect(throws: (any Error).self) {
                    _ = try await tools.run("pg_dump", ["--schema-only", "--no-password"], connectingTo: withoutPassword, doing: "Dumping without a password")
                }
                #expect("\(refused.map { String(describing: $0) } ?? "")".contains("password"))
            } catch {
                try? await Self.dropRole(role, databases: [source, target], admin: admin)
                throw error
            }
            try await Self.dropRole(role, databases: [source, target], admin: admin)
          }
        }
    }

    static func dropRole(_ role: String, databases: [String], admin: PhylacteryClient) async throws {
        for database in databases {
            try await admin.execute(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(database) WITH (FORCE)"))
        }
        try await admin.execute(PostgresQuery(unsafeSQL: "DROP ROLE IF EXISTS \(role)"))
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/lib/postgresql/15/bin/pg_dump"), "needs PostgreSQL 15's pg_dump (Debian's postgresql-15)"))
    func aPgDumpOlderThanTheServerIsRefusedWithTheReason() async throws {
        let directory = Self.temporaryPath("logical-old")
        let old = try PostgresTools(binDirectory: "/usr/lib/postgresql/15/bin")
        #expect(old.majorVersion == 15)
        try await TestDatabase.withFreshDatabase("logical_old_pgdump") { client in
            let error = await #expect(throws: BackupError.self) { try await LogicalBackup(client: client, tools: old).backup(to: directory) }
            #expect(error?.code == .toolTooOld)
            #expect(error?.message.contains("older than the server") == true, "\(error?.message ?? "")")
            #expect(!FileManager.default.fileExists(atPath: directory))
        }
    }
}
