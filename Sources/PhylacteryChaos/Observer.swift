import Foundation
import Logging
import Phylactery
import PostgresNIO

/// Reads the servers directly, one short connection per look, outside the clients under test: the
/// observer must not depend on the failover handling it checks.
enum Observer {
    static let logger = Logger(label: "failover.observer")

    static func withConnection<R: Sendable>(_ url: DatabaseURL, _ body: (PostgresConnection) async throws -> R) async throws -> R {
        var options = PhylacteryClient.Configuration.Options()
        options.connectTimeout = .seconds(2)
        return try await PhylacteryClient(configuration: .init(url: url, options: options), logger: Self.logger).withDirectConnection(body)
    }

    static func count(_ url: DatabaseURL, _ sql: String) async throws -> Int {
        try await self.withConnection(url) { connection in
            Int(try await connection.query(PostgresQuery(unsafeSQL: sql), logger: Self.logger).collect().first?.decode(Int64.self) ?? 0)
        }
    }

    static func double(_ url: DatabaseURL, _ sql: String) async throws -> Double {
        try await self.withConnection(url) { connection in
            try await connection.query(PostgresQuery(unsafeSQL: sql), logger: Self.logger).collect().first?.decode(Double.self) ?? 0
        }
    }

    static func states(_ url: DatabaseURL) async throws -> JobStates {
        try await self.withConnection(url) { connection in
            try JobStates(try await connection.query("SELECT state, count(*) FROM queue.jobs WHERE kind = 'failover.effect' GROUP BY state", logger: Self.logger).collect())
        }
    }
}
