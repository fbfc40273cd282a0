import Foundation
@testable import Phylactery
import PhylacteryTestSupport
import PostgresNIO
import Testing

/// The chambers' database functions (`verbatim.erase_fact`, `vectors.nearest_memories`) are kept at
/// this version's definition by every client's bootstrap (``ServerFunction``), against a real
/// PostgreSQL with pgvector.
@Suite struct ChamberFunctionTests {
    static let functions = [FactStore.eraseFunction, VectorMemory.nearestFunction]

    /// The catalog's copy of `function`: its source, its settings and the row version (`xmin`, which
    /// every `CREATE OR REPLACE` changes).
    static func catalog(_ client: PhylacteryClient, _ function: ServerFunction) async throws -> (source: String, settings: [String]?, version: String)? {
        try await client.query("""
            SELECT p.prosrc, p.proconfig, p.xmin::text FROM pg_proc p WHERE p.oid = to_regprocedure(\(function.signature))
            """).collect().first?.decode((String, [String]?, String).self)
    }

    static func withClient(_ url: DatabaseURL, _ body: (PhylacteryClient) async throws -> Void) async throws {
        try await PhylacteryClient.withClient(configuration: .init(url: url, options: TestDatabase.defaultOptions), body)
    }

    @Test func aCopyThatIsNotThisVersionsIsReplacedAndACurrentOneIsLeftAlone() async throws {
        try await TestDatabase.withFreshDatabaseURL("chamber_functions") { url in
            var versions: [String] = []
            try await Self.withClient(url) { client in
                for function in Self.functions {
                    let copy = try await Self.catalog(client, function)
                    #expect(copy?.source == function.source, "\(function.signature)")
                    // The server keeps the SET clauses the way `settings` spells them (else every
                    // client would create the function again: the next step would see it).
                    #expect(copy?.settings == function.settings, "\(function.signature): \(String(describing: copy?.settings))")
                    versions.append(copy?.version ?? "")
                }
            }
            try await Self.withClient(url) { client in
                // A current copy: the next client's bootstrap leaves it alone.
                for (function, version) in zip(Self.functions, versions) {
                    #expect(try await Self.catalog(client, function)?.version == version, "\(function.signature) was created again")
                }
                // What a hand leaves: the erase function's fixed search_path reset, the source unchanged.
                try await client.execute(PostgresQuery(unsafeSQL: "ALTER FUNCTION \(FactStore.eraseFunction.signature) RESET ALL"))
                #expect(try await Self.catalog(client, FactStore.eraseFunction)?.settings == nil)
                // What an earlier version left: the same statement, the body without its fingerprint line.
                try await client.withDirectConnection { connection in
                    _ = try await connection.query("SELECT vector_dims('[0]'::vector)", logger: client.logger).collect()
                    _ = try await connection.query(PostgresQuery(unsafeSQL: """
                        \(VectorMemory.nearestFunction.header) AS $f$\(VectorMemory.nearestFunctionBody)$f$
                        """), logger: client.logger).collect()
                }
                #expect(try await Self.catalog(client, VectorMemory.nearestFunction)?.source == VectorMemory.nearestFunctionBody)
            }
            try await Self.withClient(url) { client in
                for function in Self.functions {
                    let copy = try await Self.catalog(client, function)
                    #expect(copy?.source == function.source, "\(function.signature) was not replaced")
                    #expect(copy?.settings == function.settings, "\(function.signature) was not replaced")
                }
            }
        }
    }
}
