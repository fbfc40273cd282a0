import Foundation
import HTTPTypes
import HummingbirdTesting
import Logging
import Metrics
import NIOCore
import Phylactery
import PhylacteryConsole
import PostgresNIO
import Prometheus
import Testing
import Tracing

@Suite struct ConsoleOpenAPITests {
    static var fileURL: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sources/PhylacteryConsole/openapi.yaml")
    }

    /// The `paths:` section's operations: a path at two spaces of indentation, its methods at four.
    static func documentedOperations(_ yaml: String) -> Set<String> {
        var operations = Set<String>()
        var inPaths = false
        var path: String?
        for line in yaml.split(separator: "\n", omittingEmptySubsequences: false) {
            if !line.hasPrefix(" ") && !line.isEmpty {
                inPaths = line == "paths:"
                path = nil
                continue
            }
            guard inPaths else { continue }
            if line.hasPrefix("  /"), !line.hasPrefix("   ") {
                path = String(line.dropFirst(2).dropLast(line.hasSuffix(":") ? 1 : 0))
            } else if let path, line.hasPrefix("    "), !line.hasPrefix("     ") {
                let method = line.dropFirst(4).prefix { $0 != ":" }
                if ["get", "post", "put", "patch", "delete", "head"].contains(method) {
                    operations.insert("\(method.uppercased()) \(path)")
                }
            }
        }
        return operations
    }

    @Test func theFileDescribesExactlyTheAPIRoutes() throws {
        let yaml = try String(contentsOf: Self.fileURL, encoding: .utf8)
        let documented = Self.documentedOperations(yaml)
        let served = Set(PhylacteryConsole.routes.filter { $0.path.hasPrefix("/api/") || $0.path == "/metrics" }.map { route in
            // Hummingbird's `:id` is OpenAPI's `{id}`.
            let path = route.path.split(separator: "/", omittingEmptySubsequences: false)
                .map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }.joined(separator: "/")
            return "\(route.method) \(path)"
        })
        #expect(documented.count > 10)
        #expect(documented.subtracting(served).isEmpty, "documented but not served: \(documented.subtracting(served).sorted())")
        #expect(served.subtracting(documented).isEmpty, "served but not documented: \(served.subtracting(documented).sorted())")
        #expect(yaml.hasPrefix("openapi: 3."))
    }

    @Test func theParserSeesAMissingRoute() {
        // The check above cannot pass vacuously: the parser reads operations, and a change shows.
        let yaml = "openapi: 3.1.0\npaths:\n  /api/v1/a:\n    get:\n      summary: x\n    post:\n      summary: y\n  /api/v1/b/{id}:\n    get: {}\ncomponents:\n  x:\n    get: no\n"
        #expect(Self.documentedOperations(yaml) == ["GET /api/v1/a", "POST /api/v1/a", "GET /api/v1/b/{id}"])
    }

    @Test func metricsAreServedInPrometheusFormat() async throws {
        let registry = PrometheusCollectorRegistry()
        try await ConsoleFixture.withConsole("console_metrics", metrics: registry) { client, _, http in
            // The library records through swift-metrics; with the Prometheus factory (what
            // `phylactery console` bootstraps the process with), the tracer's counters show on /metrics.
            var configuration = PhylacteryTracer.Configuration(service: "console-metrics")
            configuration.metricsFactory = PrometheusMetricsFactory(registry: registry)
            let tracer = PhylacteryTracer(client: client, configuration: configuration, logger: Logger(label: "console.tests"))
            tracer.startSpan("one").end()
            tracer.startSpan("two").end()
            #expect(try await tracer.flush() == 2)
            let anonymous = try await http.execute(uri: "/metrics", method: .get)
            #expect(anonymous.status == .unauthorized)
            let response = try await http.execute(uri: "/metrics", method: .get, headers: ConsoleFixture.bearer)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
            #expect(response.text.contains("phylactery_traces_spans_stored{service=\"console-metrics\"} 2"))
        }
    }
}
