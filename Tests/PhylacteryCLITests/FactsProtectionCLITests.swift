import Foundation
import Phylactery
import PhylacteryTestSupport
import PostgresNIO
import Testing

/// `migrate check`, `migrate plan` and `doctor` against a database whose facts trigger was disabled by hand.
@Suite struct FactsProtectionCLITests {
    @Test func checkAndDoctorFailWhileAFactsTriggerIsDisabled() async throws {
        try await TestDatabase.withFreshDatabase("cli_facts_trigger") { client in
            let environment = ["PHYLACTERY_DATABASE_URL": client.configuration.url.unredacted]
            let auto = try PhylacteryProcess.run(["migrate", "auto"], environment: environment)
            #expect(auto.status == 0, "\(auto.output)")
            let healthy = try PhylacteryProcess.run(["doctor"], environment: environment)
            #expect(healthy.status == 0, "\(healthy.output)")
            #expect(healthy.output.contains("[ok  ] facts: verbatim.facts: UPDATE, DELETE and TRUNCATE refused"), "\(healthy.output)")

            try await client.execute("ALTER TABLE verbatim.facts DISABLE TRIGGER facts_immutable")
            let check = try PhylacteryProcess.run(["migrate", "check"], environment: environment)
            #expect(check.status == 1, "\(check.output)")
            #expect(check.output.contains("enable trigger facts_immutable on verbatim.facts: disabled → always [core]"), "\(check.output)")
            let plan = try PhylacteryProcess.run(["migrate", "plan"], environment: environment)
            #expect(plan.output.contains("ALTER TABLE \"verbatim\".\"facts\" ENABLE ALWAYS TRIGGER \"facts_immutable\";"), "\(plan.output)")
            let doctor = try PhylacteryProcess.run(["doctor"], environment: environment)
            #expect(doctor.status == 1, "\(doctor.output)")
            #expect(doctor.output.contains("[FAIL] facts: verbatim.facts is not protected: trigger facts_immutable on verbatim.facts is disabled"), "\(doctor.output)")

            #expect(try PhylacteryProcess.run(["migrate", "auto"], environment: environment).status == 0)
            #expect(try PhylacteryProcess.run(["migrate", "check"], environment: environment).status == 0)
            #expect(try PhylacteryProcess.run(["doctor"], environment: environment).status == 0)
        }
    }
}
