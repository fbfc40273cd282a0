import Foundation
import HTTPTypes
import HummingbirdTesting
import Logging
import NIOCore
import Phylactery
import PhylacteryConsole
import PhylacteryTestSupport
import PostgresNIO
import Testing
import Tracing

@Suite struct ConsolePageTests {
    /// Four jobs in four states, one with two failed attempts.
    struct Seeded { var waiting: UUID; var running: UUID; var discarded: UUID; var completed: UUID }

    static func seed(_ client: PhylacteryClient) async throws -> Seeded {
        let waiting = try await client.enqueue(Mail(to: "w@example.org", subject: "waiting")).id
        let running = try await client.enqueue(Mail(to: "r@example.org", subject: "running")).id
        let discarded = try await client.enqueue(Report(day: 7)).id
        let completed = try await client.enqueue(Mail(to: "c@example.org", subject: "done <b>")).id
        try await ConsoleFixture.setState(client, running, .running)
        try await ConsoleFixture.setState(client, discarded, .available, error: "smtp timeout after 30 s")
        try await ConsoleFixture.setState(client, discarded, .discarded, error: "relay refused <script>")
        try await ConsoleFixture.setState(client, completed, .completed)
        return Seeded(waiting: waiting, running: running, discarded: discarded, completed: completed)
    }

    @Test func queuePageListsTheJobsWithTheirStates() async throws {
        try await ConsoleFixture.withConsole("console_queue_page") { client, _, http in
            let seeded = try await Self.seed(client)
            let page = try await http.execute(uri: "/queue", method: .get, headers: ConsoleFixture.bearer)
            #expect(page.status == .ok)
            let html = page.text
            #expect(html.contains("<main id=\"page-queue\""))
            for (id, state) in [(seeded.waiting, "available"), (seeded.running, "running"), (seeded.discarded, "discarded"), (seeded.completed, "completed")] {
                #expect(html.contains("<tr class=\"job-row\" data-job-id=\"\(id.uuidString.lowercased())\" data-state=\"\(state)\">"), "row of the \(state) job")
            }
            // Counts by queue and state, and the charts, are on the page; text is escaped.
            #expect(html.contains("<td>reports</td>"))
            #expect(html.contains("<svg class=\"chart\""))
            #expect(html.contains("relay refused &lt;script&gt;"))
            #expect(!html.contains("<script>"))
            #expect(html.contains("<link rel=\"stylesheet\" href=\"/assets/console.css\">"))
            #expect(html.contains("<a href=\"/queue\" class=\"active\" aria-current=\"page\">Queue</a>"))
            // Filters: by state, by queue, by error text.
            let discardedOnly = try await http.execute(uri: "/queue?state=discarded", method: .get, headers: ConsoleFixture.bearer).text
            #expect(discardedOnly.components(separatedBy: "class=\"job-row\"").count - 1 == 1)
            #expect(discardedOnly.contains("<option value=\"discarded\" selected>"))
            let reports = try await http.execute(uri: "/api/v1/jobs?queue=reports", method: .get, headers: ConsoleFixture.bearer).text
            #expect(reports.contains(seeded.discarded.uuidString.lowercased()) && !reports.contains(seeded.waiting.uuidString.lowercased()))
            let byError = try await http.execute(uri: "/api/v1/jobs?error=SMTP%20TIMEOUT", method: .get, headers: ConsoleFixture.bearer).text
            #expect(byError.contains(seeded.discarded.uuidString.lowercased()))
            #expect(byError.components(separatedBy: "\"kind\"").count - 1 == 1)
            let stats = try await http.execute(uri: "/api/v1/queue", method: .get, headers: ConsoleFixture.bearer).text
            #expect(stats.contains("\"queue\":\"reports\",\"state\":\"discarded\""))
            #expect(stats.contains("\"series\":["))
        }
    }

    @Test func jobPageShowsEverythingAndTheActions() async throws {
        try await ConsoleFixture.withConsole("console_job_page") { client, console, http in
            let seeded = try await Self.seed(client)
            let html = try await http.execute(uri: "/jobs/\(seeded.discarded)", method: .get, headers: ConsoleFixture.bearer).text
            #expect(html.contains("<main id=\"page-job\""))
            #expect(html.contains("<span id=\"job-state\" class=\"state state-discarded\">discarded</span>"))
            #expect(html.contains("<input type=\"hidden\" name=\"csrf\" value=\"\(console.access.csrfToken)\">"))
            for action in ["retry", "cancel", "discard", "run-now"] {
                #expect(html.contains("<button name=\"action\" value=\"\(action)\">"))
            }
            #expect(html.contains("<form method=\"post\" action=\"/jobs/\(seeded.discarded.uuidString.lowercased())\""))
            // Pretty-printed arguments, every error with its attempt and reason.
            #expect(html.contains("&quot;day&quot; : 7"))
            #expect(html.contains("smtp timeout after 30 s"))
            #expect(html.contains("relay refused &lt;script&gt;"))
            #expect(html.contains("<td>error</td>"))
            #expect(html.contains("none recorded"))
            let json = try await http.execute(uri: "/api/v1/jobs/\(seeded.discarded)", method: .get, headers: ConsoleFixture.bearer).text
            #expect(json.contains("\"state\":\"discarded\""))
            #expect(json.contains("\"reason\":\"error\""))
        }
    }

    @Test func overviewShowsHealthAndQueueTotals() async throws {
        try await ConsoleFixture.withConsole("console_overview") { client, _, http in
            _ = try await Self.seed(client)
            let html = try await http.execute(uri: "/", method: .get, headers: ConsoleFixture.bearer).text
            #expect(html.contains("<main id=\"page-overview\""))
            #expect(html.contains("server version: PostgreSQL"))
            #expect(html.contains("pgvector"))
            #expect(html.contains("<span class=\"state state-discarded\">discarded</span> 1"))
            #expect(html.contains("<svg class=\"chart\""))
            #expect(html.contains("aria-label=\"spans recorded per minute over the last hour\""))
            #expect(html.contains("<td>queue</td>"))           // size by chamber
            #expect(html.contains("<td>queue.jobs</td>"))      // autovacuum on the busiest tables
            #expect(html.contains("archive_mode"))
            #expect(html.contains("<p id=\"backup-state\">not configured"))
            #expect(html.contains("<span id=\"database-size\">"))
            let json = try await http.execute(uri: "/api/v1/overview", method: .get, headers: ConsoleFixture.bearer).text
            #expect(json.contains("\"state\":\"available\""))
            #expect(json.contains("\"serverVersionNumber\":"))
            #expect(json.contains("\"backups\":{\"configured\":false"))
        }
    }

    @Test func anUnmigratedDatabaseSaysHowToMigrate() async throws {
        try await TestDatabase.withFreshDatabase("console_unmigrated") { client in
            let console = try PhylacteryConsole(client: client, configuration: .init(home: try ConsoleFixture.home()), access: ConsoleFixture.access)
            try await console.application().test(.router) { http in
                for path in ["/", "/queue", "/api/v1/jobs"] {
                    let response = try await http.execute(uri: path, method: .get, headers: ConsoleFixture.bearer)
                    #expect(response.status == .serviceUnavailable, "\(path)")
                    #expect(response.text.contains("phylactery migrate auto"), "\(path): \(response.text)")
                }
            }
        }
    }

    @Test func tracesListAndWaterfallLinkToTheJob() async throws {
        try await ConsoleFixture.withConsole("console_traces") { client, _, http in
            let job = try await client.enqueue(Mail(to: "t@example.org", subject: "traced")).id
            var logger = Logger(label: "console.tests")
            logger.logLevel = .critical
            let tracer = PhylacteryTracer(client: client, configuration: .init(service: "console-tests"), logger: logger)
            let traceID = await tracer.withSpan("job.run", ofKind: .consumer) { root -> TraceID in
                root.attributes["phylactery.job.id"] = job.uuidString
                await tracer.withSpan("handler") { span in
                    span.addEvent(SpanEvent(name: "cache miss", attributes: ["key": "user:1"]))
                    span.setStatus(SpanStatus(code: .error, message: "boom"))
                }
                return root.spanContext.traceID
            }
            let other = tracer.startSpan("housekeeping")
            other.end()
            #expect(try await tracer.flush() == 3)
            let list = try await http.execute(uri: "/traces", method: .get, headers: ConsoleFixture.bearer).text
            #expect(list.contains("<main id=\"page-traces\""))
            #expect(list.contains("data-trace-id=\"\(traceID)\""))
            // Keyset pages: one trace per page, the next link carries the cursor.
            let first = try await http.execute(uri: "/traces?limit=1", method: .get, headers: ConsoleFixture.bearer).text
            #expect(first.components(separatedBy: "class=\"trace-row\"").count - 1 == 1)
            let next = try #require(first.range(of: "href=\"/traces?limit=1&amp;after=").map { first[$0.lowerBound...].dropFirst(6).prefix { $0 != "\"" } })
            let second = try await http.execute(uri: String(next).replacingOccurrences(of: "&amp;", with: "&"), method: .get, headers: ConsoleFixture.bearer).text
            #expect(second.components(separatedBy: "class=\"trace-row\"").count - 1 == 1)
            #expect(first.contains("job.run") != second.contains("job.run"))
            #expect(second.contains("housekeeping") || first.contains("housekeeping"))
            let healthy = try await http.execute(uri: "/traces?status=ok", method: .get, headers: ConsoleFixture.bearer).text
            #expect(!healthy.contains("data-trace-id=\"\(traceID)\"") && healthy.contains("housekeeping"))
            #expect(try await http.execute(uri: "/traces?name=job.run&since_minutes=10", method: .get, headers: ConsoleFixture.bearer).text.contains("data-trace-id=\"\(traceID)\""))
            let waterfall = try await http.execute(uri: "/traces/\(traceID)", method: .get, headers: ConsoleFixture.bearer).text
            #expect(waterfall.contains("<main id=\"page-trace\""))
            #expect(waterfall.contains("<a id=\"trace-job\" href=\"/jobs/\(job.uuidString.lowercased())\""))
            #expect(waterfall.contains("<span class=\"span-name depth-1\">handler</span>"))
            #expect(waterfall.contains("cache miss"))
            #expect(waterfall.contains("class=\"span-row status-error\""))
            // And back: the job's page lists the traces of its runs.
            let jobPage = try await http.execute(uri: "/jobs/\(job)", method: .get, headers: ConsoleFixture.bearer).text
            #expect(jobPage.contains("<a class=\"job-trace\" href=\"/traces/\(traceID)\">job.run"))
            let json = try await http.execute(uri: "/api/v1/traces/\(traceID)", method: .get, headers: ConsoleFixture.bearer).text
            #expect(json.contains("\"depth\":1"))
            #expect(json.contains("\"jobID\":\"\(job.uuidString.lowercased())\""))
        }
    }

    @Test func theEventStreamTellsPagesToRefreshThenEnds() async throws {
        try await TestDatabase.withFreshDatabase("console_events") { client in
            let configuration = ConsoleConfiguration(home: try ConsoleFixture.home(), refreshInterval: .milliseconds(100), streamLifetime: .milliseconds(450))
            let console = try PhylacteryConsole(client: client, configuration: configuration, access: ConsoleFixture.access)
            try await console.application().test(.router) { http in
                let response = try await http.execute(uri: "/events", method: .get, headers: ConsoleFixture.bearer)
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "text/event-stream")
                let events = response.text.components(separatedBy: "event: refresh\n").count - 1
                #expect(response.text.hasPrefix("retry: 1000\n\n"))
                // At least one (the loop sleeps, then always writes), at most 450 / 100 (each comes a full interval after the last); the response ending at all shows the stream closes.
                #expect((1...4).contains(events), "\(events) refresh events in a 450 ms stream at 100 ms")
            }
        }
    }

    @Test func assetsAndTheEventStream() async throws {
        try await ConsoleFixture.withConsole("console_assets") { _, _, http in
            let css = try await http.execute(uri: "/assets/console.css", method: .get, headers: ConsoleFixture.bearer)
            #expect(css.headers[.contentType] == "text/css; charset=utf-8")
            let script = try await http.execute(uri: "/assets/console.js", method: .get, headers: ConsoleFixture.bearer)
            #expect(script.text.contains("new EventSource('/events')"))
        }
    }
}
