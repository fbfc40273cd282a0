import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Phylactery
import PhylacteryConsole
import PhylacteryTestSupport
import PostgresNIO
import Prometheus

struct Mail: Job { static let kind = "test.mail"; var to: String; var subject: String }
struct Report: Job { static let kind = "test.report"; static let queue = "reports"; var day: Int }

/// A console over a fresh, migrated database, with a known token, tested through Hummingbird's
/// router test client (the security middleware included).
enum ConsoleFixture {
    static let token = String(repeating: "ab", count: 32)
    static var access: ConsoleAccess { ConsoleAccess(token: token) }
    static var bearer: HTTPFields { [.authorization: "Bearer \(token)"] }

    static func home() throws -> String {
        let path = NSTemporaryDirectory() + "phylactery-console-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func withConsole(
        _ label: String, metrics: PrometheusCollectorRegistry? = nil,
        _ body: @escaping @Sendable (PhylacteryClient, PhylacteryConsole, any TestClientProtocol) async throws -> Void
    ) async throws {
        try await TestDatabase.withFreshDatabase(label) { client in
            try await Migrator(client: client, federation: try Federation.standard(extensions: [])).apply(allowing: [])
            let console = try PhylacteryConsole(client: client, configuration: .init(home: try home()), access: access, metrics: metrics)
            try await console.application().test(.router) { http in
                try await body(client, console, http)
            }
        }
    }

    /// Sets a job's state the way a worker would have left it (tests seed states without running workers).
    static func setState(_ client: PhylacteryClient, _ id: UUID, _ state: JobState, error: String? = nil) async throws {
        try await client.execute("""
            UPDATE queue.jobs SET state = \(state.rawValue), attempt = greatest(attempt, 1), attempted_at = now() - interval '2 seconds',
                finalized_at = CASE WHEN \(state.isFinal) THEN now() END,
                errors = CASE WHEN \(error)::text IS NULL THEN errors ELSE errors || jsonb_build_array(jsonb_build_object(
                    'attempt', 1, 'at', now(), 'reason', 'error', 'message', \(error)::text)) END
            WHERE id = \(id)
            """)
    }

    static func state(_ client: PhylacteryClient, _ id: UUID) async throws -> JobState {
        try await client.jobs.job(id).state
    }
}

extension TestResponse {
    var text: String { String(buffer: self.body) }
}

/// A url-encoded form body.
func formBody(_ fields: [(String, String)]) -> ByteBuffer {
    var allowed = CharacterSet.alphanumerics
    allowed.insert(charactersIn: "-._~")
    return ByteBuffer(string: fields.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed)!)" }.joined(separator: "&"))
}

let formHeaders: HTTPFields = [.authorization: "Bearer \(ConsoleFixture.token)", .contentType: "application/x-www-form-urlencoded"]
