import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Phylactery
import PhylacteryConsole
import PhylacteryTestSupport
import PostgresNIO
import Testing

/// The Memory, Facts and Migrations pages over a seeded database.
@Suite struct ConsoleDataPageTests {
    @Test func memoryStatsSearchDetailAndActions() async throws {
        try await ConsoleFixture.withConsole("console_memory") { client, console, http in
            let space = EmbeddingSpace(model: "console-test", fingerprint: "v1", dimensions: 3)
            let (kept, doomed) = try await client.transaction { tx in
                let kept = try await tx.memory.remember(try Memory(content: "the heron nests by the mill pond", embedding: try Vector([Float]([1, 0, 0])), space: space,
                                                                   owner: "core", source: "chat"))
                let doomed = try await tx.memory.remember(Memory(content: "the heron stole a fish", owner: "core", source: "chat"))
                _ = try await tx.memory.remember(try Memory(content: "a grey wader by the water", embedding: try Vector([Float]([0.9, 0.1, 0])), space: space,
                                                            owner: "core", source: "chat"))
                return (kept.id, doomed.id)
            }
            let page = try await http.execute(uri: "/memory?q=heron", method: .get, headers: ConsoleFixture.bearer).text
            #expect(page.contains("<main id=\"page-memory\""))
            #expect(page.contains("<td>console-test@v1</td><td>speculative</td><td class=\"num\">2</td>"))
            #expect(page.contains("data-memory-id=\"\(kept.uuidString.lowercased())\""))
            #expect(page.contains("data-memory-id=\"\(doomed.uuidString.lowercased())\""))
            // Consecrate from the detail page's form; the status history shows it.
            let consecrated = try await http.execute(uri: "/memory/\(kept)", method: .post, headers: formHeaders,
                                                     body: formBody([("csrf", console.access.csrfToken), ("action", "consecrate")]))
            #expect(consecrated.status == .seeOther)
            let detail = try await http.execute(uri: "/memory/\(kept)", method: .get, headers: ConsoleFixture.bearer).text
            #expect(detail.contains("<main id=\"page-memory-item\""))
            #expect(detail.contains("<dd id=\"memory-status\">consecrated</dd>"))
            #expect(detail.contains("<td>speculative</td><td>consecrated</td><td>console</td>"))
            #expect(detail.contains("<tr class=\"neighbour-row\">") && detail.contains("a grey wader by the water"))
            // Forget: a confirmation page, then the POST with a reason.
            let confirm = try await http.execute(uri: "/memory/\(doomed)/forget", method: .get, headers: ConsoleFixture.bearer).text
            #expect(confirm.contains("the heron stole a fish"))
            let refused = try await http.execute(uri: "/memory/\(doomed)", method: .post, headers: formHeaders,
                                                 body: formBody([("csrf", console.access.csrfToken), ("action", "forget")]))
            #expect(refused.status == .badRequest)
            let forgotten = try await http.execute(uri: "/memory/\(doomed)", method: .post, headers: formHeaders,
                                                   body: formBody([("csrf", console.access.csrfToken), ("action", "forget"), ("reason", "wrong fish")]))
            #expect(forgotten.status == .seeOther)
            #expect(try await http.execute(uri: "/memory/\(doomed)", method: .get, headers: ConsoleFixture.bearer).status == .notFound)
            // The JSON API: reject with the CSRF header.
            var headers = ConsoleFixture.bearer
            headers[HTTPField.Name("X-CSRF-Token")!] = console.access.csrfToken
            let rejected = try await http.execute(uri: "/api/v1/memory/\(kept)/reject", method: .post, headers: headers)
            #expect(rejected.text.contains("\"status\":\"rejected\""))
        }
    }

    @Test func factsByNamespaceAndAKeysHistory() async throws {
        try await ConsoleFixture.withConsole("console_facts") { client, _, http in
            try await client.transaction { tx in
                _ = try await tx.facts.put("settings", key: "mail.relay", value: "smtp.example.org", source: "setup")
                _ = try await tx.facts.supersede("settings", key: "mail.relay", value: "relay.example.org", source: "operator")
                _ = try await tx.facts.put("settings", key: "theme", value: "dark", source: "setup")
            }
            let namespaces = try await http.execute(uri: "/facts", method: .get, headers: ConsoleFixture.bearer).text
            #expect(namespaces.contains("<a href=\"/facts?namespace=settings\">settings</a></td><td class=\"num\">2</td><td class=\"num\">3</td>"))
            let list = try await http.execute(uri: "/facts?namespace=settings&prefix=mail.", method: .get, headers: ConsoleFixture.bearer).text
            #expect(list.contains("<main id=\"page-facts\""))
            #expect(list.contains("href=\"/facts/key?namespace=settings&amp;key=mail.relay\""))
            #expect(!list.contains("key=theme"))
            #expect(list.contains("relay.example.org"))
            let history = try await http.execute(uri: "/facts/key?namespace=settings&key=mail.relay", method: .get, headers: ConsoleFixture.bearer).text
            #expect(history.contains("<main id=\"page-fact-key\""))
            #expect(history.contains("smtp.example.org") && history.contains("relay.example.org"))
            let missing = try await http.execute(uri: "/facts/key?namespace=settings&key=nothing", method: .get, headers: ConsoleFixture.bearer)
            #expect(missing.status == .notFound)
            let json = try await http.execute(uri: "/api/v1/facts/history?namespace=settings&key=mail.relay", method: .get, headers: ConsoleFixture.bearer).text
            #expect(json.contains("\"version\":2"))
        }
    }

    @Test func retractingAFactAsksForAReasonAndKeepsTheHistory() async throws {
        try await ConsoleFixture.withConsole("console_fact_retract") { client, console, http in
            try await client.transaction { tx in
                _ = try await tx.facts.put("settings", key: "mail.relay", value: "smtp.example.org", source: "setup")
                _ = try await tx.facts.put("settings", key: "theme", value: "dark", source: "setup")
            }
            let page = try await http.execute(uri: "/facts/key?namespace=settings&key=mail.relay", method: .get, headers: ConsoleFixture.bearer).text
            #expect(page.contains("<a href=\"/facts/retract?namespace=settings&amp;key=mail.relay\" class=\"danger\" id=\"fact-retract\">"))
            let confirm = try await http.execute(uri: "/facts/retract?namespace=settings&key=mail.relay", method: .get, headers: ConsoleFixture.bearer).text
            #expect(confirm.contains("<main id=\"page-fact-retract\""))
            #expect(confirm.contains("<input type=\"hidden\" name=\"csrf\" value=\"\(console.access.csrfToken)\">"))
            #expect(confirm.contains("smtp.example.org"))

            // Without a reason, or without the CSRF token, nothing changes.
            let noReason = try await http.execute(
                uri: "/facts/key", method: .post, headers: formHeaders,
                body: formBody([("csrf", console.access.csrfToken), ("action", "retract"), ("namespace", "settings"), ("key", "mail.relay"), ("reason", "")]))
            #expect(noReason.status == .badRequest)
            let noToken = try await http.execute(
                uri: "/facts/key", method: .post, headers: formHeaders,
                body: formBody([("action", "retract"), ("namespace", "settings"), ("key", "mail.relay"), ("reason", "moved")]))
            #expect(noToken.status == .forbidden)
            #expect(try await client.transaction { tx in try await tx.facts.history("settings", key: "mail.relay", offset: 0, limit: 10) }.count == 1)

            let done = try await http.execute(
                uri: "/facts/key", method: .post, headers: formHeaders,
                body: formBody([("csrf", console.access.csrfToken), ("action", "retract"), ("namespace", "settings"), ("key", "mail.relay"), ("reason", "relay moved")]))
            #expect(done.status == .seeOther)
            #expect(done.headers[.location] == "/facts/key?namespace=settings&key=mail.relay&done=retract")
            let history = try await client.transaction { tx in try await tx.facts.history("settings", key: "mail.relay", offset: 0, limit: 10) }
            #expect(history.count == 2)
            #expect(history.last?.isRetraction == true && history.last?.reason == "relay moved" && history.last?.source == "console")
            let after = try await http.execute(uri: "/facts/key?namespace=settings&key=mail.relay&done=retract", method: .get, headers: ConsoleFixture.bearer).text
            #expect(after.contains("Retracted.") && after.contains("retracted: relay moved") && !after.contains("id=\"fact-retract\""))
            // Retracting again is a conflict, not a second tombstone.
            var headers = ConsoleFixture.bearer
            headers[.contentType] = "application/json"
            headers[HTTPField.Name("X-CSRF-Token")!] = console.access.csrfToken
            let again = try await http.execute(uri: "/api/v1/facts/retract", method: .post, headers: headers,
                                               body: ByteBuffer(string: #"{"namespace":"settings","key":"mail.relay","reason":"twice"}"#))
            #expect(again.status == .conflict)
            let api = try await http.execute(uri: "/api/v1/facts/retract", method: .post, headers: headers,
                                             body: ByteBuffer(string: #"{"namespace":"settings","key":"theme","reason":"no themes"}"#))
            #expect(api.status == .ok)
            #expect(api.text.contains("\"isRetraction\":true"))
        }
    }

    @Test func migrationsShowOwnersLedgerAndPlan() async throws {
        try await ConsoleFixture.withConsole("console_migrations") { _, _, http in
            let page = try await http.execute(uri: "/migrations", method: .get, headers: ConsoleFixture.bearer).text
            #expect(page.contains("<main id=\"page-migrations\""))
            #expect(page.contains("<td>queue.jobs</td>"))
            #expect(page.contains("the schema matches the models"))
            let json = try await http.execute(uri: "/api/v1/migrations", method: .get, headers: ConsoleFixture.bearer).text
            #expect(json.contains("\"plan\":[]"))
            #expect(json.contains("\"owner\":\"core\""))
        }
    }

    @Test func backupsSayHowToConfigureThemWhenThereAreNone() async throws {
        try await ConsoleFixture.withConsole("console_backups") { _, _, http in
            let page = try await http.execute(uri: "/backups", method: .get, headers: ConsoleFixture.bearer).text
            #expect(page.contains("<main id=\"page-backups\""))
            #expect(page.contains("phylactery db archive --to DIR"))
            let json = try await http.execute(uri: "/api/v1/backups", method: .get, headers: ConsoleFixture.bearer).text
            #expect(json.contains("\"configured\":false"))
        }
    }
}
