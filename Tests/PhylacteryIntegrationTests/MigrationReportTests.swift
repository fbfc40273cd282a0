import Foundation
import Phylactery
import PhylacteryTestSupport
import PostgresNIO
import Testing

/// The migrations page's data, against a real server: owners and tables, the ledger, and the plan
/// with its hazards, before and after migrating.
@Suite struct MigrationReportTests {
    @Test func theReportShowsThePlanThenTheLedgerAndOwners() async throws {
        try await TestDatabase.withFreshDatabase("migration_report") { client in
            let migrator = Migrator(client: client, federation: try Federation(core: Federation.coreModels))
            let before = try await migrator.report()
            #expect(before.head == nil && before.ledger.isEmpty && before.owners.isEmpty && !before.isCurrent)
            #expect(before.steps.contains { $0.summary.contains("traces.spans") && $0.owner == "core" }, "\(before.steps.map(\.summary))")
            #expect(before.steps.allSatisfy { !$0.statements.isEmpty } && before.hazards.isEmpty && before.refusals.isEmpty)
            #expect(before.steps.contains { $0.runsOutsideTransaction } == before.steps.contains { step in step.statements.contains { $0.contains("CONCURRENTLY") } })

            let applied = try #require(try await migrator.auto(message: "console"))
            let after = try await migrator.report()
            #expect(after.head == applied.revision && after.ledger.map(\.revision) == [applied.revision] && after.ledger.first?.message == "console")
            #expect(after.steps.isEmpty && after.isCurrent)
            let core = try #require(after.owners.first { $0.owner == "core" })
            #expect(core.isRegistered && !core.isDormant)
            #expect(core.tables.map(\.table).contains("traces.spans") && core.tables.map(\.table).contains("queue.jobs"))
            #expect(core.tables.map(\.table) == core.tables.map(\.table).sorted())

            // Drift (a column's type changed behind the migrator's back) shows as pending again.
            try await client.execute("ALTER TABLE verbatim.facts ALTER COLUMN source TYPE varchar(500)")
            let drifted = try await migrator.report()
            #expect(!drifted.isCurrent)
            let json = try JSONEncoder().encode(drifted)
            #expect(try JSONDecoder().decode(MigrationReport.self, from: json) == drifted)
        }
    }
}
