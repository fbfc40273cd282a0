import Foundation
import Phylactery
import PhylacteryTestSupport
import PostgresNIO
import Testing

/// The tour as a newcomer meets it: it leaves no table behind that no model declares, prints no
/// password, and points at `phylactery db psql`, which works.
@Suite struct TourCLITests {
    @Test func theTourLeavesOnlyModelsAndNoPasswordAndPsqlWorks() async throws {
        try await TestDatabase.withFreshDatabase("cli_tour") { client in
            // A password in the URL must never be printed: the role's own (the test command's owner
            // role needs it), or else a made-up one, which the superuser's socket trust rule ignores.
            var url = client.configuration.url
            let secret = url.password ?? "tour-secret-\(UInt32.random(in: 100_000...999_999))"
            url.password = secret
            let environment = ["PHYLACTERY_DATABASE_URL": url.unredacted]

            for round in 1...2 {
                let demo = try PhylacteryProcess.run(["demo"], environment: environment)
                #expect(demo.status == 0, "round \(round): \(demo.output)")
                #expect(!demo.output.contains(secret), "round \(round) printed the password: \(demo.output)")
                #expect(demo.output.contains("Look around with: phylactery db psql"), "\(demo.output)")
                #expect(!demo.output.contains("psql '"), "\(demo.output)")
            }
            let handMade = try await client.query("""
                SELECT count(*) FROM pg_tables WHERE tablename IN ('demo_visits', 'demo_events', 'demo_snapshots')
                """).collect().first?.decode(Int64.self)
            #expect(handMade == 0)
            let plan = try PhylacteryProcess.run(["migrate", "plan"], environment: environment)
            #expect(plan.status == 0, "\(plan.output)")
            #expect(!plan.output.contains("unknown table"), "\(plan.output)")
            #expect(!plan.output.contains(secret), "\(plan.output)")

            let psql = try PhylacteryProcess.run(["db", "psql", "--", "-X", "-A", "-t", "-c", "SELECT 40 + 2, current_database()"], environment: environment)
            #expect(psql.status == 0, "\(psql.output)")
            #expect(psql.output.contains("42|\(url.database)"), "\(psql.output)")
            let failing = try PhylacteryProcess.run(["db", "psql", "--", "-X", "-v", "ON_ERROR_STOP=1", "-c", "SELECT * FROM no_such_table"], environment: environment)
            #expect(failing.status != 0, "psql's own exit status comes through: \(failing.output)")
        }
    }
}
