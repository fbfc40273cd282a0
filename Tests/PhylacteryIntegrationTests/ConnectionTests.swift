import Foundation
import Phylactery
import PhylacteryTestSupport
import PostgresNIO
import Testing

@Suite struct ConnectionTests {
    @Test func chambersAndVectorExistAfterFirstUse() async throws {
        try await TestDatabase.withFreshDatabase("chambers") { client in
            try await client.prepare()
            let schemas = try await client.query("SELECT nspname FROM pg_namespace").collect().map { try $0.decode(String.self) }
            for chamber in Chamber.allCases {
                #expect(schemas.contains(chamber.schema))
            }
            let vector = try await client.query("SELECT extversion FROM pg_extension WHERE extname = 'vector'").collect()
            #expect(vector.count == 1)
            let report = await client.healthReport()
            #expect(report.isHealthy, "\(report)")
            #expect(report.checks.map(\.name) == ["connection", "server version", "pgvector", "chambers", "facts", "sessions", "pool"])
            #expect(report.checks.allSatisfy { $0.status == .ok }, "\(report)")
        }
    }

    @Test func stoppedServerIsATypedReadableError() async throws {
        // A socket directory where no server listens: what a client sees once the server is stopped.
        let url = DatabaseURL(endpoint: .unixSocket(directory: "/tmp/phyl-no-server-\(UInt32.random(in: 0...UInt32.max))", port: 5432),
                              username: "phylactery", database: "phylactery")
        let error = await #expect(throws: PhylacteryError.self) {
            try await PhylacteryClient.withClient(configuration: .init(url: url)) { client in
                try await client.execute("SELECT 1")
            }
        }
        #expect(error?.code == .connectionFailed)
        #expect(error?.description.contains(".s.PGSQL.5432") == true, "\(error?.description ?? "")")
        #expect(error?.description.contains("phylactery db start") == true)

        let tcp = DatabaseURL(endpoint: .tcp(host: "127.0.0.1", port: 1), username: "x", database: "y", tlsMode: .disable)
        let tcpError = await #expect(throws: PhylacteryError.self) {
            try await PhylacteryClient.withClient(configuration: .init(url: tcp)) { client in try await client.prepare() }
        }
        #expect(tcpError?.code == .connectionFailed)
        #expect(tcpError?.description.contains("127.0.0.1:1") == true)
    }

    @Test func wrongPasswordIsAnAuthenticationError() async throws {
        let server = try TestDatabase.serverURL()
        let role = "t_pw_\(UInt32.random(in: 0...UInt32.max))"
        try await TestDatabase.withFreshDatabase("password") { admin in
            // Creating a role administers the server: the admin URL (the test command's superuser).
            try await TestDatabase.withAdminClient(database: admin.configuration.url.database) { superuser in
                try await superuser.execute(PostgresQuery(unsafeSQL: "CREATE ROLE \(role) LOGIN PASSWORD 'right-password'"))
            }
            var wrong = server
            wrong.username = role
            wrong.password = "wrong-password"
            let error = await #expect(throws: PhylacteryError.self) {
                try await PhylacteryClient.withClient(configuration: .init(url: wrong)) { client in try await client.prepare() }
            }
            #expect(error?.code == .authenticationFailed)
            #expect(error?.sqlState == "28P01")
            #expect(error?.description.contains(role) == true)
            #expect(error?.description.contains("wrong-password") == false)

            var right = wrong
            right.password = "right-password"
            var options = PhylacteryClient.Configuration.Options()
            options.createsChambers = false
            let one = try await PhylacteryClient.withClient(configuration: .init(url: right, options: options)) { client in
                try await client.query("SELECT 1").collect().first!.decode(Int.self)
            }
            #expect(one == 1)
        }
        _ = try? await PhylacteryClient.withClient(configuration: .init(url: try TestDatabase.adminURL())) { client in
            try await client.execute(PostgresQuery(unsafeSQL: "DROP ROLE IF EXISTS \(role)"))
        }
    }

    @Test func missingDatabaseIsNamed() async throws {
        let url = try TestDatabase.serverURL().with(database: "t_missing_\(UInt32.random(in: 0...UInt32.max))")
        let error = await #expect(throws: PhylacteryError.self) {
            try await PhylacteryClient.withClient(configuration: .init(url: url)) { client in try await client.prepare() }
        }
        #expect(error?.code == .databaseNotFound)
        #expect(error?.sqlState == "3D000")
    }
}
