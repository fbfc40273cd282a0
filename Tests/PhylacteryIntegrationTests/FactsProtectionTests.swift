import Foundation
import Logging
@testable import Phylactery
import PhylacteryTestSupport
import PostgresNIO
import Testing

/// The facts' immutability triggers fire in every session, and anything that weakens them — a
/// disabled trigger, one switched to fire only in some sessions — is a difference for `plan` and
/// `check`, and a failure for `doctor`.
@Suite struct FactsProtectionTests {
    static let logger = Logger(label: "facts-protection-tests")

    static func migrated<R: Sendable>(_ label: String, _ body: (PhylacteryClient, Migrator) async throws -> R) async throws -> R {
        try await TestDatabase.withFreshDatabase(label) { client in
            let migrator = Migrator(client: client, federation: try Federation(core: Federation.coreModels))
            _ = try await migrator.auto()
            #expect(try await migrator.plan().isEmpty)
            return try await body(client, migrator)
        }
    }

    static func enabled(_ client: PhylacteryClient) async throws -> [String: String] {
        let rows = try await client.query("""
            SELECT tgname::text, tgenabled::text FROM pg_trigger WHERE tgrelid = 'verbatim.facts'::regclass AND NOT tgisinternal
            """).collect()
        return Dictionary(uniqueKeysWithValues: try rows.map { try $0.decode((String, String).self) })
    }

    /// Runs `sql` in a transaction whose session says it is a replica, and returns the SQLSTATE it failed with (nil: it succeeded).
    static func asReplica(_ client: PhylacteryClient, _ sql: String) async throws -> String? {
        try await FactsForgettingTests.failure(client, sql, setup: ["SET LOCAL session_replication_role = replica"])
    }

    @Test func theTriggersFireEvenInASessionThatSaysItIsAReplica() async throws {
        try await Self.migrated("facts_always") { client, _ in
            #expect(try await Self.enabled(client) == ["facts_immutable": "A", "facts_immutable_truncate": "A"])
            _ = try await client.transaction { tx in try await tx.facts.put("net", key: "gw", value: "10.0.0.1", source: "test") }
            #expect(try await Self.asReplica(client, "DELETE FROM verbatim.facts") == FactStore.immutableSQLState)
            #expect(try await Self.asReplica(client, "UPDATE verbatim.facts SET source = 'forged'") == FactStore.immutableSQLState)
            #expect(try await Self.asReplica(client, "TRUNCATE verbatim.facts") == FactStore.immutableSQLState)
            #expect(try await client.transaction { tx in try await tx.facts.get("net", key: "gw") }?.source == "test")
            let report = await client.healthReport()
            #expect(report.isHealthy, "\(report)")
            #expect(report.checks.first { $0.name == "facts" }?.status == .ok, "\(report)")
        }
    }

    @Test func aDisabledTriggerIsADifferenceAndDoctorFails() async throws {
        try await Self.migrated("facts_disabled") { client, migrator in
            try await client.execute("ALTER TABLE verbatim.facts DISABLE TRIGGER facts_immutable")
            let plan = try await migrator.plan()
            #expect(plan.steps.map(\.summary) == ["enable trigger facts_immutable on verbatim.facts: disabled → always"], "\(plan.steps.map(\.summary))")
            #expect(!plan.isEmpty, "`migrate check` fails on a plan that is not empty")
            #expect(plan.upStatements.map(\.sql) == ["ALTER TABLE \"verbatim\".\"facts\" ENABLE ALWAYS TRIGGER \"facts_immutable\""])

            let report = await client.healthReport()
            #expect(!report.isHealthy, "\(report)")
            let facts = try #require(report.checks.first { $0.name == "facts" })
            #expect(facts.status == .failed)
            #expect(facts.detail.contains("trigger facts_immutable on verbatim.facts is disabled"), "\(facts.detail)")
            #expect(facts.fix?.contains("migrate auto") == true)

            // `auto` (what a daemon runs at start-up) puts it back.
            _ = try await migrator.auto()
            #expect(try await migrator.plan().isEmpty)
            #expect(await client.healthReport().isHealthy)
            #expect(try await Self.enabled(client)["facts_immutable"] == "A")
        }
    }

    @Test func aTriggerThatAReplicaSessionSkipsIsADifferenceAndDoctorFails() async throws {
        try await Self.migrated("facts_origin") { client, migrator in
            // ENABLE TRIGGER (PostgreSQL's default) fires in ordinary sessions only: a superuser's
            // session that sets session_replication_role = replica walks past it. ENABLE REPLICA
            // TRIGGER is the reverse: every ordinary session walks past it.
            try await client.execute("ALTER TABLE verbatim.facts ENABLE TRIGGER facts_immutable")
            try await client.execute("ALTER TABLE verbatim.facts ENABLE REPLICA TRIGGER facts_immutable_truncate")
            _ = try await client.transaction { tx in try await tx.facts.put("net", key: "gw", value: "10.0.0.1", source: "test") }
            #expect(try await Self.asReplica(client, "DELETE FROM verbatim.facts") == nil, "the trick works while the trigger fires in origin sessions only")

            let plan = try await migrator.plan()
            #expect(plan.steps.map(\.summary).sorted() == [
                "enable trigger facts_immutable on verbatim.facts: origin → always",
                "enable trigger facts_immutable_truncate on verbatim.facts: replica → always",
            ], "\(plan.steps.map(\.summary))")
            let facts = try #require(await client.healthReport().checks.first { $0.name == "facts" })
            #expect(facts.status == .failed)
            #expect(facts.detail.contains("facts_immutable on verbatim.facts fires only while session_replication_role is origin or local"), "\(facts.detail)")
            #expect(facts.detail.contains("facts_immutable_truncate on verbatim.facts fires only in sessions with session_replication_role = replica"), "\(facts.detail)")

            _ = try await migrator.auto()
            #expect(await client.healthReport().isHealthy)
            #expect(try await Self.asReplica(client, "DELETE FROM verbatim.facts") == FactStore.immutableSQLState)
            #expect(try await Self.asReplica(client, "TRUNCATE verbatim.facts") == FactStore.immutableSQLState)
        }
    }

    @Test(.disabled(if: TestDatabase.throughTransactionPooler, "needs new server sessions to start with a database setting; a transaction pooler reuses old ones")) func aMissingOrChangedTriggerFailsDoctorAndADatabaseThatStartsAsReplicaIsAWarning() async throws {
        try await Self.migrated("facts_doctor") { client, migrator in
            try await client.execute("DROP TRIGGER facts_immutable_truncate ON verbatim.facts")
            var facts = try #require(await client.healthReport().checks.first { $0.name == "facts" })
            #expect(facts.status == .failed)
            #expect(facts.detail.contains("trigger facts_immutable_truncate on verbatim.facts is missing"), "\(facts.detail)")
            _ = try await migrator.auto()

            // A database whose sessions start as replicas: facts stay protected (a warning, not a failure).
            try await client.execute(PostgresQuery(unsafeSQL: "ALTER DATABASE \(SQLIdentifier.quote(client.configuration.url.database)) SET session_replication_role = replica"))
            let report = try await PhylacteryClient.withClient(configuration: client.configuration) { fresh in await fresh.healthReport() }
            facts = try #require(report.checks.first { $0.name == "facts" })
            #expect(facts.status == .ok, "\(report)")
            let role = try #require(report.checks.first { $0.name == "replication role" }, "\(report)")
            #expect(role.status == .warning)
            #expect(report.isHealthy)
        }
    }
}
