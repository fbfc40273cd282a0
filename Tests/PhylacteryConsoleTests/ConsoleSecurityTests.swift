import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Phylactery
import PhylacteryConsole
import PhylacteryTestSupport
import PostgresNIO
import Testing

@Suite struct ConsoleSecurityTests {
    static let securityHeaders: [(String, String)] = [
        ("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
        ("X-Frame-Options", "DENY"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("Cache-Control", "no-store"),
    ]

    static func expectSecurityHeaders(_ response: TestResponse, _ what: String) {
        for (name, value) in securityHeaders {
            #expect(response.headers[HTTPField.Name(name)!] == value, "\(name) on \(what)")
        }
    }

    @Test func everyRequestNeedsTheToken() async throws {
        try await ConsoleFixture.withConsole("console_401") { _, _, http in
            for path in ["/", "/queue", "/traces", "/api/v1/jobs", "/api/v1/overview", "/metrics", "/assets/console.css", "/events"] {
                let response = try await http.execute(uri: path, method: .get)
                #expect(response.status == .unauthorized, "\(path) without a token")
                Self.expectSecurityHeaders(response, "401 of \(path)")
            }
            let wrong = try await http.execute(uri: "/queue", method: .get, headers: [.authorization: "Bearer " + String(repeating: "cd", count: 32)])
            #expect(wrong.status == .unauthorized)
            let wrongCookie = try await http.execute(uri: "/queue", method: .get, headers: [.cookie: "phylactery_console=nope"])
            #expect(wrongCookie.status == .unauthorized)
            let wrongQuery = try await http.execute(uri: "/?token=nope", method: .get)
            #expect(wrongQuery.status == .unauthorized)
            #expect(wrongQuery.headers[.setCookie] == nil)
        }
    }

    @Test func firstVisitSetsAStrictCookieAndDropsTheTokenFromTheURL() async throws {
        try await ConsoleFixture.withConsole("console_cookie") { _, _, http in
            let first = try await http.execute(uri: "/queue?state=running&token=\(ConsoleFixture.token)", method: .get)
            #expect(first.status == .seeOther)
            #expect(first.headers[.location] == "/queue?state=running")
            let cookie = try #require(first.headers[.setCookie])
            #expect(cookie.hasPrefix("phylactery_console=\(ConsoleFixture.token);"))
            #expect(cookie.contains("HttpOnly"))
            #expect(cookie.contains("SameSite=Strict"))
            #expect(cookie.contains("Path=/"))
            Self.expectSecurityHeaders(first, "the redirect")
            let next = try await http.execute(uri: "/queue?state=running", method: .get, headers: [.cookie: "phylactery_console=\(ConsoleFixture.token)"])
            #expect(next.status == .ok)
            #expect(next.text.contains("<main id=\"page-queue\""))
            Self.expectSecurityHeaders(next, "a page")
            let api = try await http.execute(uri: "/api/v1/jobs", method: .get, headers: ConsoleFixture.bearer)
            #expect(api.status == .ok)
            #expect(api.headers[.contentType]?.hasPrefix("application/json") == true)
            Self.expectSecurityHeaders(api, "the API")
        }
    }

    @Test func postsNeedTheCSRFToken() async throws {
        try await ConsoleFixture.withConsole("console_403") { client, console, http in
            let job = try await client.enqueue(Mail(to: "a@example.org", subject: "hi"))
            // A form without the field, with a wrong one, and an API call without the header: 403, nothing changes.
            let missing = try await http.execute(uri: "/jobs/\(job.id)", method: .post, headers: formHeaders, body: formBody([("action", "discard")]))
            #expect(missing.status == .forbidden)
            Self.expectSecurityHeaders(missing, "403")
            let wrong = try await http.execute(uri: "/jobs/\(job.id)", method: .post, headers: formHeaders,
                                               body: formBody([("action", "discard"), ("csrf", String(repeating: "0", count: 64))]))
            #expect(wrong.status == .forbidden)
            let api = try await http.execute(uri: "/api/v1/jobs/\(job.id)/discard", method: .post, headers: ConsoleFixture.bearer)
            #expect(api.status == .forbidden)
            let bulk = try await http.execute(uri: "/queue/bulk", method: .post, headers: formHeaders, body: formBody([("action", "discard")]))
            #expect(bulk.status == .forbidden)
            #expect(try await ConsoleFixture.state(client, job.id) == .available)
            // Without the access token a POST is 401 even with the CSRF token.
            let anonymous = try await http.execute(uri: "/api/v1/jobs/\(job.id)/discard", method: .post, headers: [HTTPField.Name("X-CSRF-Token")!: console.access.csrfToken])
            #expect(anonymous.status == .unauthorized)
            // With it, the change is made.
            let session = try await http.execute(uri: "/api/v1/session", method: .get, headers: ConsoleFixture.bearer)
            #expect(session.text.contains(console.access.csrfToken))
            var headers = ConsoleFixture.bearer
            headers[HTTPField.Name("X-CSRF-Token")!] = console.access.csrfToken
            let done = try await http.execute(uri: "/api/v1/jobs/\(job.id)/discard", method: .post, headers: headers)
            #expect(done.status == .ok)
            #expect(try await ConsoleFixture.state(client, job.id) == .discarded)
        }
    }

    @Test func errorsCarryTheHeadersToo() async throws {
        try await ConsoleFixture.withConsole("console_404") { _, _, http in
            let missing = try await http.execute(uri: "/jobs/\(UUID())", method: .get, headers: ConsoleFixture.bearer)
            #expect(missing.status == .notFound)
            Self.expectSecurityHeaders(missing, "404")
            let bad = try await http.execute(uri: "/api/v1/jobs?state=sleeping", method: .get, headers: ConsoleFixture.bearer)
            #expect(bad.status == .badRequest)
            #expect(bad.text.contains("is not a job state"))
            Self.expectSecurityHeaders(bad, "400")
            let unknown = try await http.execute(uri: "/nowhere", method: .get, headers: ConsoleFixture.bearer)
            #expect(unknown.status == .notFound)
        }
    }
}

@Suite struct ConsoleBindTests {
    @Test func onlyLoopbackWithoutListenAndTLS() throws {
        let home = try ConsoleFixture.home()
        #expect(throws: Never.self) { try ConsoleConfiguration(home: home).validate() }
        #expect(throws: Never.self) { try ConsoleConfiguration(home: home, host: "::1").validate() }
        #expect(throws: ConsoleError(.nonLocalAddress, "the console binds only to 127.0.0.1 unless told otherwise; to serve 0.0.0.0, pass --listen 0.0.0.0 with --tls-cert FILE and --tls-key FILE")) {
            try ConsoleConfiguration(home: home, host: "0.0.0.0").validate()
        }
        do {
            try ConsoleConfiguration(home: home, host: "192.168.1.5", listen: true).validate()
            Issue.record("--listen without TLS was accepted")
        } catch {
            #expect(error.code == .tlsRequired)
            #expect(error.message.contains("--tls-cert"))
        }
        let tls = ConsoleConfiguration.TLS(certificatePath: "/nonexistent/cert.pem", keyPath: "/nonexistent/key.pem")
        #expect(throws: Never.self) { try ConsoleConfiguration(home: home, host: "0.0.0.0", listen: true, tls: tls).validate() }
        #expect(throws: ConsoleError.self) { try ConsoleConfiguration(home: home, port: 70000).validate() }
    }

    @Test func unreadableCertificatesAreRefusedWithTheFix() async throws {
        try await TestDatabase.withFreshDatabase("console_tls") { client in
            let tls = ConsoleConfiguration.TLS(certificatePath: "/nonexistent/cert.pem", keyPath: "/nonexistent/key.pem")
            let console = try PhylacteryConsole(client: client, configuration: .init(home: try ConsoleFixture.home(), host: "0.0.0.0", listen: true, tls: tls))
            do {
                _ = try console.application()
                Issue.record("unreadable TLS files were accepted")
            } catch let error as ConsoleError {
                #expect(error.code == .tlsUnreadable)
                #expect(error.message.contains("--tls-cert"))
            }
            // A non-local address without --listen never gets as far as a console.
            #expect(throws: ConsoleError.self) {
                try PhylacteryConsole(client: client, configuration: .init(home: try ConsoleFixture.home(), host: "10.0.0.1"))
            }
        }
    }

    @Test func tokenIsCreatedPrivateAndReused() throws {
        let home = try ConsoleFixture.home()
        let first = try ConsoleAccess.loadOrCreate(home: home)
        let path = home + "/" + ConsoleAccess.fileName
        let mode = try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber).intValue
        #expect(mode == 0o600)
        #expect(first.token.count == 64)
        let second = try ConsoleAccess.loadOrCreate(home: home)
        #expect(second == first)
        #expect(first.csrfToken != first.token)
        #expect(try ConsoleAccess.loadOrCreate(home: try ConsoleFixture.home()).token != first.token)
        // A token file others can read is refused, with the fix.
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
        do {
            _ = try ConsoleAccess.loadOrCreate(home: home)
            Issue.record("a world-readable token file was used")
        } catch {
            #expect(error.code == .tokenFile)
            #expect(error.message.contains("chmod 600"))
        }
    }
}
