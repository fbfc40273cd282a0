import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Phylactery
import PhylacteryConsole
import PhylacteryTestSupport
import PostgresNIO
import Testing

@Suite struct ConsoleActionTests {
    static func post(_ http: any TestClientProtocol, _ console: PhylacteryConsole, job: UUID, action: String) async throws -> TestResponse {
        try await http.execute(uri: "/jobs/\(job)", method: .post, headers: formHeaders, body: formBody([("csrf", console.access.csrfToken), ("action", action)]))
    }

    @Test func eachActionChangesTheJob() async throws {
        try await ConsoleFixture.withConsole("console_actions") { client, console, http in
            // Retry a discarded job: back to available, due now, one more attempt allowed.
            let discarded = try await client.enqueue(Mail(to: "d@example.org", subject: "retry me"), options: JobOptions(maxAttempts: 1)).id
            try await ConsoleFixture.setState(client, discarded, .discarded, error: "failed")
            let retried = try await Self.post(http, console, job: discarded, action: "retry")
            #expect(retried.status == .seeOther)
            #expect(retried.headers[.location] == "/jobs/\(discarded.uuidString.lowercased())?notice=retry.done")
            let record = try await client.jobs.job(discarded)
            #expect(record.state == .available && record.finalizedAt == nil && record.maxAttempts == 2)
            let notice = try await http.execute(uri: retried.headers[.location]!, method: .get, headers: ConsoleFixture.bearer).text
            #expect(notice.contains("<p class=\"notice\">retry: done.</p>"))

            // Cancel a waiting job.
            let waiting = try await client.enqueue(Mail(to: "c@example.org", subject: "cancel me")).id
            #expect(try await Self.post(http, console, job: waiting, action: "cancel").status == .seeOther)
            #expect(try await ConsoleFixture.state(client, waiting) == .cancelled)

            // Cancel a running job: its worker is asked.
            let running = try await client.enqueue(Mail(to: "r@example.org", subject: "running")).id
            try await ConsoleFixture.setState(client, running, .running)
            let requested = try await Self.post(http, console, job: running, action: "cancel")
            #expect(requested.headers[.location]?.hasSuffix("notice=cancel.requested") == true)
            #expect(try await client.jobs.job(running).cancelRequested)

            // Discard a waiting job; discarding a finished one changes nothing.
            let doomed = try await client.enqueue(Mail(to: "x@example.org", subject: "discard me")).id
            #expect(try await Self.post(http, console, job: doomed, action: "discard").status == .seeOther)
            let gone = try await client.jobs.job(doomed)
            #expect(gone.state == .discarded)
            #expect(gone.errors.last?.message == "discarded by the operator")
            let again = try await Self.post(http, console, job: doomed, action: "discard")
            #expect(again.headers[.location]?.hasSuffix("notice=discard.not_applicable") == true)

            // Run a scheduled job now.
            let later = try await client.enqueue(Mail(to: "l@example.org", subject: "later"), options: JobOptions(scheduledAt: Date().addingTimeInterval(3600))).id
            #expect(try await Self.post(http, console, job: later, action: "run-now").status == .seeOther)
            #expect(try await client.jobs.job(later).scheduledAt <= Date().addingTimeInterval(5))

            // An unknown action is refused and changes nothing.
            let unknown = try await Self.post(http, console, job: later, action: "explode")
            #expect(unknown.status == .badRequest)
        }
    }

    @Test func bulkActionConfirmsTheCountThenApplies() async throws {
        try await ConsoleFixture.withConsole("console_bulk") { client, console, http in
            var failed: [UUID] = []
            for n in 0..<5 {
                let id = try await client.enqueue(Mail(to: "\(n)@example.org", subject: "bulk")).id
                try await ConsoleFixture.setState(client, id, .discarded, error: n < 3 ? "quota exceeded" : "other")
                failed.append(id)
            }
            let untouched = try await client.enqueue(Mail(to: "u@example.org", subject: "stay")).id
            let confirm = try await http.execute(uri: "/queue/bulk?action=retry&state=discarded&error=quota", method: .get, headers: ConsoleFixture.bearer)
            #expect(confirm.status == .ok)
            #expect(confirm.text.contains("<strong id=\"bulk-count\">3</strong>"))
            #expect(confirm.text.contains("<input type=\"hidden\" name=\"csrf\" value=\"\(console.access.csrfToken)\">"))
            let preview = try await http.execute(uri: "/api/v1/bulk?action=retry&state=discarded", method: .get, headers: ConsoleFixture.bearer).text
            #expect(preview.contains("\"count\":5"))
            let done = try await http.execute(uri: "/queue/bulk", method: .post, headers: formHeaders, body: formBody([
                ("csrf", console.access.csrfToken), ("action", "retry"), ("state", "discarded"), ("error", "quota"),
            ]))
            #expect(done.status == .seeOther)
            #expect(done.headers[.location]?.contains("changed=3") == true)
            for (index, id) in failed.enumerated() {
                #expect(try await ConsoleFixture.state(client, id) == (index < 3 ? .available : .discarded))
            }
            #expect(try await ConsoleFixture.state(client, untouched) == .available)
            // The JSON API's bulk with the CSRF header.
            var headers = ConsoleFixture.bearer
            headers[HTTPField.Name("X-CSRF-Token")!] = console.access.csrfToken
            headers[.contentType] = "application/json"
            let api = try await http.execute(uri: "/api/v1/bulk", method: .post, headers: headers,
                                             body: .init(string: #"{"action":"discard","filter":{"state":"available","queue":"default"}}"#))
            #expect(api.status == .ok)
            #expect(api.text.contains("\"changed\":4"))
            #expect(try await client.jobs.count(QueueOperator.JobFilter(state: .available)) == 0)
        }
    }

    @Test func pagesNeverRepeatNorSkipWhileJobsArrive() async throws {
        try await ConsoleFixture.withConsole("console_paging") { client, _, http in
            let original = try await client.enqueue(contentsOf: (0..<120).map { Mail(to: "\($0)@example.org", subject: "page") }).map(\.id)
            var seen: [String] = []
            var next: String?
            var pages = 0
            repeat {
                let uri = "/api/v1/jobs?limit=50" + (next.map { "&before=\($0)" } ?? "")
                let data = Data(try await http.execute(uri: uri, method: .get, headers: ConsoleFixture.bearer).text.utf8)
                let page = try JSONDecoder().decode(PageShape.self, from: data)
                seen += page.jobs.map(\.id)
                next = page.next
                pages += 1
                // Jobs arrive between pages (newer than every listed one).
                _ = try await client.enqueue(contentsOf: (0..<30).map { Mail(to: "late\($0)@example.org", subject: "late \(pages)") })
            } while next != nil
            #expect(pages == 3)
            #expect(seen.count == 120)
            #expect(Set(seen).count == 120)
            #expect(Set(seen) == Set(original.map { $0.uuidString.lowercased() }))
            // The page's HTML links to the next page by cursor.
            let html = try await http.execute(uri: "/queue?queue=default", method: .get, headers: ConsoleFixture.bearer).text
            #expect(html.contains("rel=\"next\""))
            #expect(html.contains("href=\"/queue?queue=default&amp;before="))
        }
    }

    struct PageShape: Decodable {
        struct Row: Decodable { var id: String }
        var jobs: [Row]
        var next: String?
    }
}
