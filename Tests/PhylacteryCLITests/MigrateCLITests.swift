import Foundation
import Phylactery
import PhylacteryEmbedded
import PhylacteryTestSupport
import Testing

/// `phylactery migrate` end to end, as separate processes against a fresh database.
@Suite struct MigrateCLITests {
    static func phylactery(_ arguments: [String], environment: [String: String]) throws -> PhylacteryProcess {
        try PhylacteryProcess.run(arguments, environment: environment)
    }

    /// Runs the command on its own thread, so two can run at once.
    static func phylacteryInBackground(_ arguments: [String], environment: [String: String]) async throws -> PhylacteryProcess {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(with: Result { try phylactery(arguments, environment: environment) })
            }
        }
    }

    @Test func generateCheckAndTwoProcessesRunningUpAtOnce() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("phyl-cli-migrations-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await TestDatabase.withFreshDatabase("cli_migrate") { client in
            let environment = ["PHYLACTERY_DATABASE_URL": client.configuration.url.unredacted, "PHYLACTERY_MIGRATIONS": directory]

            let check = try Self.phylactery(["migrate", "check"], environment: environment)
            #expect(check.status == 1, "\(check.output)")
            #expect(check.output.contains("create table public.notebook_pages [notebook]"))

            let plan = try Self.phylactery(["migrate", "plan"], environment: environment)
            #expect(plan.status == 0)
            #expect(plan.output.contains("CREATE TABLE \"public\".\"tasks_items\""), "\(plan.output)")

            let generate = try Self.phylactery(["migrate", "generate", "-m", "federation"], environment: environment)
            #expect(generate.status == 0, "\(generate.output)")
            let files = try FileManager.default.contentsOfDirectory(atPath: directory)
            #expect(files.count == 1 && files[0].hasSuffix("_federation.sql"), "\(files)")

            // Two processes at once: one applies, the other waits for the lock and finds nothing to do.
            async let first = Self.phylacteryInBackground(["migrate", "up"], environment: environment)
            async let second = Self.phylacteryInBackground(["migrate", "up"], environment: environment)
            let runs = try await [first, second]
            #expect(runs.allSatisfy { $0.status == 0 }, "\(runs.map(\.output))")
            #expect(runs.filter { $0.output.contains("Applied ") }.count == 1, "\(runs.map(\.output))")
            #expect(runs.filter { $0.output.contains("Nothing to apply.") }.count == 1, "\(runs.map(\.output))")

            let history = try Self.phylactery(["migrate", "history"], environment: environment)
            #expect(history.output.split(separator: "\n").count == 1, "\(history.output)")
            #expect(history.output.contains("federation"))
            #expect(try Self.phylactery(["migrate", "check"], environment: environment).status == 0)

            let status = try Self.phylactery(["migrate", "status"], environment: environment)
            #expect(status.output.contains("tasks 1.0.0  TaskItem → public.tasks_items"), "\(status.output)")
            #expect(status.output.contains("Models: the database matches."))

            // Undoing drops the tables: refused without consent, done with it.
            let refused = try Self.phylactery(["migrate", "down"], environment: environment)
            #expect(refused.status == 1)
            #expect(refused.output.contains("--allow-destructive"), "\(refused.output)")
            let down = try Self.phylactery(["migrate", "down", "1", "--allow-destructive"], environment: environment)
            #expect(down.status == 0, "\(down.output)")
            #expect(try Self.phylactery(["migrate", "check"], environment: environment).status == 1)
        }
    }

    @Test func autoAppliesAdditivePlansAndPlanTwiceIsEmpty() async throws {
        try await TestDatabase.withFreshDatabase("cli_auto") { client in
            let environment = ["PHYLACTERY_DATABASE_URL": client.configuration.url.unredacted]
            let auto = try Self.phylactery(["migrate", "auto"], environment: environment)
            #expect(auto.status == 0, "\(auto.output)")
            #expect(auto.output.contains("Applied "))
            let again = try Self.phylactery(["migrate", "auto"], environment: environment)
            #expect(again.output.contains("Nothing to apply"), "\(again.output)")
            let plan = try Self.phylactery(["migrate", "plan"], environment: environment)
            #expect(plan.output.hasPrefix("-- The database matches the models"), "\(plan.output)")
        }
    }
}
