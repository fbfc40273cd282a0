import Foundation
import Testing

/// Numbers the CLI cannot turn into a duration (too long, not finite) are refused in one line with
/// exit code 1, before anything connects, instead of trapping.
@Suite struct BadNumbersCLITests {
    @Test(arguments: [
        (["traces", "prune", "--older-than", "1e10s"], "Error: --older-than 1e10s is longer than 100 years, the longest duration phylactery takes."),
        (["traces", "prune", "--older-than", "infd"], "Error: --older-than takes a finite number, not 'infd'."),
        (["traces", "list", "--min-duration", "1e300ms"], "Error: --min-duration 1e300ms is longer than 100 years, the longest duration phylactery takes."),
        (["traces", "list", "--since", "nanh"], "Error: --since takes a finite number, not 'nanh'."),
        (["queue", "prune", "--older-than-hours", "inf"], "Error: --older-than-hours takes a finite number, not 'inf'."),
        (["queue", "prune", "--older-than-hours", "nan"], "Error: --older-than-hours takes a finite number, not 'nan'."),
        (["queue", "prune", "--older-than-hours", "1e300"], "Error: --older-than-hours 1e+300 is longer than 100 years, the longest duration phylactery takes."),
        (["worker", "--lease", "1e300"], "Error: --lease 1e+300 is longer than 100 years, the longest duration phylactery takes."),
        (["worker", "--grace", "inf"], "Error: --grace takes a finite number, not 'inf'."),
        (["worker", "--poll", "1e10"], "Error: --poll 1e+10 is longer than 100 years, the longest duration phylactery takes."),
        (["worker", "--retention-hours", "1e300"], "Error: --retention-hours 1e+300 is longer than 100 years, the longest duration phylactery takes."),
    ])
    func isRefusedInOneLine(arguments: [String], message: String) throws {
        // No database is named: the refusal must come before any connection.
        let run = try PhylacteryProcess.run(arguments, environment: ["PHYLACTERY_DATABASE_URL": "postgres://nobody@127.0.0.1:1/none"])
        #expect(run.status == 1, "\(arguments): \(run.output)")
        #expect(run.output == message + "\n", "\(arguments)")
    }

    @Test func largeButRepresentableDurationsAndMalformedOnesKeepTheirMeaning() throws {
        // Malformed text and negative numbers stay usage errors (exit 64, with usage).
        let malformed = try PhylacteryProcess.run(["traces", "prune", "--older-than", "soon"])
        #expect(malformed.status == 64 && malformed.output.contains("Usage: phylactery traces prune"), "\(malformed.output)")
        let negative = try PhylacteryProcess.run(["queue", "prune", "--older-than-hours=-1"])
        #expect(negative.status == 64 && negative.output.contains("--older-than-hours must not be negative."), "\(negative.output)")
        let negativeLease = try PhylacteryProcess.run(["worker", "--lease=-5"])
        #expect(negativeLease.status == 64 && negativeLease.output.contains("--lease must not be negative."), "\(negativeLease.output)")
    }
}
