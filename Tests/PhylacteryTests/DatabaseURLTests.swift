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

    @Test func severalHostsInTheAuthority() throws {
        let url = try DatabaseURL(parsing: "postgres://u:p@127.0.0.1:5433,db2,[::1]:6000/app?target_session_attrs=read-write")
        #expect(url.endpoints == [.tcp(host: "127.0.0.1", port: 5433), .tcp(host: "db2", port: 5432), .tcp(host: "::1", port: 6000)])
        #expect(url.endpoint == .tcp(host: "127.0.0.1", port: 5433), "the first host stays `endpoint`")
        #expect(url.targetSessionAttributes == .readWrite)
        #expect(url.description == "postgres://u:***@127.0.0.1:5433,db2,[::1]:6000/app?target_session_attrs=read-write")
    }

    @Test func severalSocketDirectoriesAsQueryParameters() throws {
        let url = try DatabaseURL(parsing: "postgresql://me@/db?host=/run/a,/run/b&port=5432,5433")
        #expect(url.endpoints == [.unixSocket(directory: "/run/a", port: 5432), .unixSocket(directory: "/run/b", port: 5433)])
        #expect(url.unredacted == "postgres://me@/db?host=/run/a,/run/b&port=5432,5433")
        // One port applies to every host, as in libpq.
        let shared = try DatabaseURL(parsing: "postgres://me@/db?host=/run/a,/run/b&port=6000")
        #expect(shared.endpoints == [.unixSocket(directory: "/run/a", port: 6000), .unixSocket(directory: "/run/b", port: 6000)])
        #expect(shared.unredacted == "postgres://me@/db?host=/run/a,/run/b&port=6000")
        // A socket and a TCP host together.
        let mixed = try DatabaseURL(parsing: "postgres://me@/db?host=/run/a,10.0.0.2&port=5432,5433")
        #expect(mixed.endpoints == [.unixSocket(directory: "/run/a", port: 5432), .tcp(host: "10.0.0.2", port: 5433)])
    }

    @Test(arguments: [
        "postgres://bob:hunter2@localhost/app",
        "postgres://p@/d?host=/tmp/x",
        "postgres://u:p%40ss@h1:5433,h2:5434/db?sslmode=disable&target_session_attrs=any",
        "postgres://u@/db?host=/run/one,/run/two&port=5432,6543&target_session_attrs=primary",
        "postgres://u@h1,h2,h3/db",
        "postgres://u@[fe80::1]:7000,h2/db",
    ])
    func printingAndParsingRoundTrip(text: String) throws {
        let url = try DatabaseURL(parsing: text)
        #expect(try DatabaseURL(parsing: url.unredacted) == url, "\(url.unredacted)")
        #expect(try DatabaseURL(parsing: url.unredacted).unredacted == url.unredacted)
        if url.password != nil { #expect(!url.description.contains(url.password!)) }
    }

    @Test func builtFromEndpointsPrintsEveryHost() throws {
        let url = DatabaseURL(
            endpoints: [.tcp(host: "127.0.0.1", port: 5001), .unixSocket(directory: "/tmp/s", port: 5002)],
            username: "u", password: "secret", database: "d", targetSessionAttributes: .readWrite)
        #expect(url.unredacted == "postgres://u:secret@/d?host=127.0.0.1,/tmp/s&port=5001,5002&target_session_attrs=read-write")
        #expect(try DatabaseURL(parsing: url.unredacted) == url)
        var single = url
        single.endpoint = .tcp(host: "db", port: 5432)
        #expect(single.endpoints == [.tcp(host: "db", port: 5432)], "setting `endpoint` names that one server")
    }

    @Test func whichURLsNeedTheTopology() throws {
        #expect(try !DatabaseURL(parsing: "postgres://u@h/d").needsTopology, "one host is used as it always was")
        #expect(try !DatabaseURL(parsing: "postgres://u@h/d?target_session_attrs=any").needsTopology)
        #expect(try DatabaseURL(parsing: "postgres://u@h/d?target_session_attrs=read-write").needsTopology)
        #expect(try DatabaseURL(parsing: "postgres://u@h1,h2/d").needsTopology)
        #expect(try DatabaseURL(parsing: "postgres://u@h1,h2/d").effectiveTargetSessionAttributes == .readWrite)
    }

    @Test(arguments: [
        ("postgres://u@h1,,h3/d", "host number 2 of 3 is empty"),
        ("postgres://u@/d?host=/a,/b,/c&port=1,2", "3 hosts and 2 ports"),
        ("postgres://u@h1:5432,h2:x/d", "'x' is not a number"),
        ("postgres://u@h1,h2:70000/d", "70000 is outside"),
        ("postgres://u@h/d?target_session_attrs=prefer-standby", "readTransaction"),
        ("postgres://u@[::1/d", "without closing"),
        ("postgres://u@h/d%zz", "percent-encoding"),
        ("postgres://u@h /d", "white space"),
    ])
    func badMultiHostURLsAreTypedErrors(text: String, mentions: String) {
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
