import Foundation
import Phylactery
import PhylacteryEmbedded
import PhylacteryTestSupport
import Testing

/// `phylactery traces …` and the demo's traced job, as separate processes against a fresh database.
@Suite struct TracesCLITests {
    @Test func malformedTraceIDIsAClearError() throws {
        for bad in ["not-a-trace", "4bf92f3577b34da6a3ce929d0e0e47", String(repeating: "0", count: 32)] {
            let run = try PhylacteryProcess.run(["traces", "show", bad])
            #expect(run.status == 64, "\(run.output)")
            #expect(run.output.contains("'\(bad)' is not a trace id"), "\(run.output)")
            #expect(run.output.contains("Usage: phylactery traces show"), "\(run.output)")
        }
        let duration = try PhylacteryProcess.run(["traces", "prune", "--older-than", "soon"])
        #expect(duration.status == 64)
        #expect(duration.output.contains("--older-than takes a duration such as 250ms, 30s, 6h or 7d, not 'soon'"), "\(duration.output)")
    }

    @Test func demoTracesAJobThatListAndShowRead() async throws {
        try await TestDatabase.withFreshDatabase("cli_traces") { client in
            let environment = ["PHYLACTERY_DATABASE_URL": client.configuration.url.unredacted]
            let demo = try PhylacteryProcess.run(["demo"], environment: environment)
            #expect(demo.status == 0, "\(demo.output)")
            #expect(demo.output.contains("10. Traces: the ghouls ran under the tracer;"), "\(demo.output)")
            #expect(demo.output.contains("├─ queue.claim") && demo.output.contains("├─ queue.handler") && demo.output.contains("└─ queue.complete"), "\(demo.output)")
            let line = try #require(demo.output.split(separator: "\n").first { $0.contains("phylactery traces show ") })
            let traceID = String(line.split(separator: " ").last!)

            let list = try PhylacteryProcess.run(["traces", "list", "--status", "error"], environment: environment)
            #expect(list.status == 0, "\(list.output)")
            // The failed attempts' traces carry errors; the last (successful) attempt of demo.flaky does not.
            #expect(list.output.contains("job demo.doomed [phylactery-demo]"), "\(list.output)")
            #expect(!list.output.contains(traceID), "\(list.output)")
            let ok = try PhylacteryProcess.run(["traces", "list", "--name", "job demo.flaky", "--status", "ok"], environment: environment)
            #expect(ok.output.contains(traceID), "\(ok.output)")
            let none = try PhylacteryProcess.run(["traces", "list", "--name", "no.such.job"], environment: environment)
            #expect(none.output == "No traces match.\n", "\(none.output)")

            let show = try PhylacteryProcess.run(["traces", "show", traceID, "--details"], environment: environment)
            #expect(show.status == 0, "\(show.output)")
            #expect(show.output.hasPrefix("trace \(traceID) · job demo.flaky · 4 spans"), "\(show.output)")
            #expect(show.output.contains("· phylactery.job.queue = demo"), "\(show.output)")
            #expect(show.output.contains("· phylactery.job.attempt = 2"), "\(show.output)")

            let unknown = try PhylacteryProcess.run(["traces", "show", "4bf92f3577b34da6a3ce929d0e0e4736"], environment: environment)
            #expect(unknown.status == 1)
            #expect(unknown.output.contains("no spans are stored for trace 4bf92f3577b34da6a3ce929d0e0e4736"), "\(unknown.output)")

            let prune = try PhylacteryProcess.run(["traces", "prune", "--older-than", "30d"], environment: environment)
            #expect(prune.status == 0, "\(prune.output)")
            #expect(prune.output.hasPrefix("Nothing to drop"), "\(prune.output)")
        }
    }
}
