import Phylactery
import Testing

@Suite struct DatabaseURLTests {
    @Test func tcpURLWithEverything() throws {
        let url = try DatabaseURL(parsing: "postgres://alice:s%40cret@db.example.com:6543/app?sslmode=require")
        #expect(url.endpoint == .tcp(host: "db.example.com", port: 6543))
        #expect(url.username == "alice")
        #expect(url.password == "s@cret")
        #expect(url.database == "app")
        #expect(url.tlsMode == .require)
    }

    @Test func socketDirectoryAsQueryParameter() throws {
        let url = try DatabaseURL(parsing: "postgresql://phylactery@/phylactery?host=/tmp/run&port=5433")
        #expect(url.endpoint == .unixSocket(directory: "/tmp/run", port: 5433))
        #expect(url.endpoint.socketPath == "/tmp/run/.s.PGSQL.5433")
        #expect(url.tlsMode == .prefer)
    }

    @Test func percentEncodedSocketDirectoryAsHost() throws {
        let url = try DatabaseURL(parsing: "postgres://me@%2Fvar%2Frun%2Fpostgresql/db")
        #expect(url.endpoint == .unixSocket(directory: "/var/run/postgresql", port: 5432))
    }

    @Test func descriptionHidesThePasswordAndRoundTrips() throws {
        let url = try DatabaseURL(parsing: "postgres://bob:hunter2@localhost/app")
        #expect(!url.description.contains("hunter2"))
        #expect(url.description == "postgres://bob:***@localhost/app")
        #expect(try DatabaseURL(parsing: url.unredacted) == url)
        let socket = try DatabaseURL(parsing: "postgres://p@/d?host=/tmp/x")
        #expect(try DatabaseURL(parsing: socket.unredacted) == socket)
    }

    @Test(arguments: [
        ("", "empty"),
        ("mysql://u@h/d", "scheme"),
        ("postgres://h/d", "no user"),
        ("postgres://u@h", "no database"),
        ("postgres://u@/d", "no host"),
        ("postgres://u@h:99999/d", "port"),
        ("postgres://u@h/d?sslmode=sometimes", "sslmode"),
        ("postgres://u@h/d?frobnicate=1", "frobnicate"),
    ])
    func badURLsAreTypedErrors(text: String, mentions: String) {
        let error = #expect(throws: PhylacteryError.self) { try DatabaseURL(parsing: text) }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.description.contains(mentions) == true, "\(error?.description ?? "")")
    }

    @Test func malformedEnvironmentURLNeverFallsBack() throws {
        let error = #expect(throws: PhylacteryError.self) {
            try PhylacteryClient.Configuration.fromEnvironment(["PHYLACTERY_DATABASE_URL": "postgres//oops"])
        }
        #expect(error?.description.hasPrefix("PHYLACTERY_DATABASE_URL") == true)
        #expect(try PhylacteryClient.Configuration.fromEnvironment([:])?.url == nil)
    }
}

@Suite struct RetryPolicyTests {
    @Test func delaysGrowAndStayBounded() {
        let policy = PhylacteryClient.RetryPolicy(maximumAttempts: 10, baseDelay: .milliseconds(10), maximumDelay: .milliseconds(100))
        #expect(policy.delay(afterAttempt: 1, randomFraction: 1) == .milliseconds(10))
        #expect(policy.delay(afterAttempt: 3, randomFraction: 1) == .milliseconds(40))
        #expect(policy.delay(afterAttempt: 3, randomFraction: 0) == .milliseconds(20))
        #expect(policy.delay(afterAttempt: 9, randomFraction: 1) == .milliseconds(100))
        #expect(PhylacteryClient.RetryPolicy(maximumAttempts: 0).maximumAttempts == 1)
    }
}
