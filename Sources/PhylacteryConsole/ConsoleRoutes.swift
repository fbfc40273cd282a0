public import HTTPTypes
import Foundation
import Hummingbird
import NIOCore
import Phylactery

/// One route of the console: method, path (Hummingbird's `:name` syntax) and handler. The one table
/// both registers the routes and is checked against the OpenAPI file by the tests.
struct ConsoleRoute: Sendable {
    let method: HTTPRequest.Method
    let path: String
    let handler: @Sendable (PhylacteryConsole, Request, BasicRequestContext) async throws -> Response

    /// Whether the OpenAPI file describes it: the JSON API and `/metrics`.
    var isDocumented: Bool { self.path.hasPrefix("/api/") || self.path == "/metrics" }
}

/// Every route the console serves.
enum ConsoleRoutes {
    static let all: [ConsoleRoute] = [
        // Pages.
        ConsoleRoute(method: .get, path: "/") { console, request, _ in try await console.overviewPage(request) },
        ConsoleRoute(method: .get, path: "/queue") { console, request, _ in try await console.queuePage(request) },
        ConsoleRoute(method: .get, path: "/queue/bulk") { console, request, _ in try await console.bulkConfirmationPage(request) },
        ConsoleRoute(method: .post, path: "/queue/bulk") { console, request, _ in try await console.bulkForm(request) },
        ConsoleRoute(method: .get, path: "/jobs/:id") { console, request, context in try await console.jobPage(request, id: try jobID(context)) },
        ConsoleRoute(method: .post, path: "/jobs/:id") { console, request, context in try await console.jobForm(request, id: try jobID(context)) },
        ConsoleRoute(method: .get, path: "/traces") { console, request, _ in try await console.tracesPage(request) },
        ConsoleRoute(method: .get, path: "/traces/:id") { console, request, context in try await console.tracePage(request, id: try traceID(context)) },
        ConsoleRoute(method: .get, path: "/memory") { console, request, _ in try await console.memoryPage(request) },
        ConsoleRoute(method: .get, path: "/memory/:id") { console, request, context in try await console.memoryItemPage(request, id: try uuid(context, "memory")) },
        ConsoleRoute(method: .post, path: "/memory/:id") { console, request, context in try await console.memoryForm(request, id: try uuid(context, "memory")) },
        ConsoleRoute(method: .get, path: "/memory/:id/forget") { console, _, context in try await console.forgetConfirmationPage(id: try uuid(context, "memory")) },
        ConsoleRoute(method: .get, path: "/facts") { console, request, _ in try await console.factsPage(request) },
        ConsoleRoute(method: .get, path: "/facts/key") { console, request, _ in try await console.factKeyPage(request) },
        ConsoleRoute(method: .post, path: "/facts/key") { console, request, _ in try await console.factForm(request) },
        ConsoleRoute(method: .get, path: "/facts/retract") { console, request, _ in try await console.factRetractConfirmationPage(request) },
        ConsoleRoute(method: .get, path: "/migrations") { console, request, _ in try await console.migrationsPage(request) },
        ConsoleRoute(method: .get, path: "/backups") { console, request, _ in try await console.backupsPage(request) },
        // Assets and the live-refresh stream.
        ConsoleRoute(method: .get, path: "/assets/console.css") { _, _, _ in asset(ConsoleAssets.css, type: "text/css; charset=utf-8") },
        ConsoleRoute(method: .get, path: "/assets/console.js") { _, _, _ in asset(ConsoleAssets.script, type: "text/javascript; charset=utf-8") },
        // Browsers ask for an icon on every first visit; "none" (204) keeps a 404 out of their console.
        ConsoleRoute(method: .get, path: "/favicon.ico") { _, _, _ in Response(status: .noContent) },
        ConsoleRoute(method: .get, path: "/events") { console, _, _ in console.events() },
        // The JSON API.
        ConsoleRoute(method: .get, path: "/api/v1/session") { console, _, _ in ConsoleJSON.response(["csrfToken": console.access.csrfToken]) },
        ConsoleRoute(method: .get, path: "/api/v1/overview") { console, _, _ in ConsoleJSON.response(try await console.overviewData()) },
        ConsoleRoute(method: .get, path: "/api/v1/queue") { console, _, _ in ConsoleJSON.response(try await console.queueStatsData()) },
        ConsoleRoute(method: .get, path: "/api/v1/jobs") { console, request, _ in
            ConsoleJSON.response(try await console.jobPageData(try ConsoleFilters.jobs(request.uri), before: try ConsoleFilters.cursor(request.uri), limit: try ConsoleFilters.limit(request.uri)))
        },
        ConsoleRoute(method: .get, path: "/api/v1/jobs/:id") { console, _, context in ConsoleJSON.response(try await console.jobData(try jobID(context))) },
        ConsoleRoute(method: .post, path: "/api/v1/jobs/:id/retry") { console, _, context in ConsoleJSON.response(try await console.act(.retry, on: try jobID(context))) },
        ConsoleRoute(method: .post, path: "/api/v1/jobs/:id/cancel") { console, _, context in ConsoleJSON.response(try await console.act(.cancel, on: try jobID(context))) },
        ConsoleRoute(method: .post, path: "/api/v1/jobs/:id/discard") { console, _, context in ConsoleJSON.response(try await console.act(.discard, on: try jobID(context))) },
        ConsoleRoute(method: .post, path: "/api/v1/jobs/:id/run-now") { console, _, context in ConsoleJSON.response(try await console.act(.runNow, on: try jobID(context))) },
        ConsoleRoute(method: .get, path: "/api/v1/bulk") { console, request, _ in
            let filter = try ConsoleFilters.jobs(request.uri)
            return ConsoleJSON.response(BulkPreview(action: try ConsoleFilters.bulkAction(request.uri.queryParameters["action"].map(String.init)), filter: filter,
                                                    count: try await console.client.jobs.count(filter)))
        },
        ConsoleRoute(method: .post, path: "/api/v1/bulk") { console, request, context in
            var request = request
            let body = try await request.collectBody(upTo: 1 << 20)
            let input = try ConsoleJSON.decoder.decode(BulkRequest.self, from: Data(body.readableBytesView))
            let changed = try await console.client.jobs.bulk(input.action, input.filter)
            return ConsoleJSON.response(BulkResult(action: input.action, changed: changed))
        },
        ConsoleRoute(method: .get, path: "/api/v1/traces") { console, request, _ in
            ConsoleJSON.response(try await console.traceListData(try ConsoleFilters.traces(request.uri)))
        },
        ConsoleRoute(method: .get, path: "/api/v1/traces/:id") { console, _, context in ConsoleJSON.response(try await console.traceData(try traceID(context))) },
        ConsoleRoute(method: .get, path: "/api/v1/memory") { console, request, _ in ConsoleJSON.response(try await console.memoryData(query: ConsoleFilters.text(request.uri, "q"))) },
        ConsoleRoute(method: .get, path: "/api/v1/memory/:id") { console, _, context in ConsoleJSON.response(try await console.memoryItemData(try uuid(context, "memory"))) },
        ConsoleRoute(method: .post, path: "/api/v1/memory/:id/consecrate") { console, _, context in
            ConsoleJSON.response(try await console.memoryAction("consecrate", on: try uuid(context, "memory"), reason: nil))
        },
        ConsoleRoute(method: .post, path: "/api/v1/memory/:id/reject") { console, _, context in
            ConsoleJSON.response(try await console.memoryAction("reject", on: try uuid(context, "memory"), reason: nil))
        },
        ConsoleRoute(method: .post, path: "/api/v1/memory/:id/forget") { console, request, context in
            var request = request
            let body = try await request.collectBody(upTo: 1 << 16)
            let input = try ConsoleJSON.decoder.decode(ForgetRequest.self, from: Data(body.readableBytesView))
            return ConsoleJSON.response(try await console.memoryAction("forget", on: try uuid(context, "memory"), reason: input.reason))
        },
        ConsoleRoute(method: .get, path: "/api/v1/facts") { console, request, _ in
            ConsoleJSON.response(try await console.factListData(
                namespace: ConsoleFilters.text(request.uri, "namespace"), prefix: ConsoleFilters.text(request.uri, "prefix") ?? "",
                after: ConsoleFilters.text(request.uri, "after")))
        },
        ConsoleRoute(method: .get, path: "/api/v1/facts/history") { console, request, _ in
            guard let namespace = ConsoleFilters.text(request.uri, "namespace"), let key = ConsoleFilters.text(request.uri, "key") else {
                throw ConsoleError(.badRequest, "a fact's history needs ?namespace=…&key=…")
            }
            return ConsoleJSON.response(try await console.factHistoryData(namespace: namespace, key: key))
        },
        ConsoleRoute(method: .post, path: "/api/v1/facts/retract") { console, request, _ in
            var request = request
            let body = try await request.collectBody(upTo: 1 << 16)
            let input = try ConsoleJSON.decoder.decode(FactRetractRequest.self, from: Data(body.readableBytesView))
            return ConsoleJSON.response(try await console.retractFact(namespace: input.namespace, key: input.key, reason: input.reason))
        },
        ConsoleRoute(method: .get, path: "/api/v1/migrations") { console, _, _ in ConsoleJSON.response(try await console.migrationsData()) },
        ConsoleRoute(method: .get, path: "/api/v1/backups") { console, _, _ in ConsoleJSON.response(try await console.backupsData()) },
        ConsoleRoute(method: .get, path: "/metrics") { console, _, _ in try console.metricsResponse() },
    ]

    static func jobID(_ context: BasicRequestContext) throws -> UUID { try uuid(context, "job") }

    static func uuid(_ context: BasicRequestContext, _ what: String) throws -> UUID {
        guard let text = context.parameters.get("id"), let id = UUID(uuidString: text) else {
            throw ConsoleError(.badRequest, "a \(what) id is a UUID (such as 0190a1b2-…); check the link")
        }
        return id
    }

    static func traceID(_ context: BasicRequestContext) throws -> TraceID {
        guard let text = context.parameters.get("id"), let id = try? TraceID(parsing: text) else {
            throw ConsoleError(.badRequest, "a trace id is 32 hexadecimal digits; check the link")
        }
        return id
    }

    static func asset(_ text: String, type: String) -> Response {
        Response(status: .ok, headers: [.contentType: type], body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}

/// The body of `POST /api/v1/bulk`.
struct BulkRequest: Codable, Sendable {
    var action: QueueOperator.BulkAction
    var filter: QueueOperator.JobFilter
}

/// What `GET /api/v1/bulk` answers: how many jobs the action would cover.
struct BulkPreview: Codable, Sendable {
    var action: QueueOperator.BulkAction
    var filter: QueueOperator.JobFilter
    var count: Int
}

/// What a bulk action changed.
struct BulkResult: Codable, Sendable {
    var action: QueueOperator.BulkAction
    var changed: Int
}

extension ConsoleJSON {
    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }()
}

extension PhylacteryConsole {
    /// Every route the console serves, as method and path (`:name` marks a path parameter), in the
    /// order they are registered. Those under `/api/` and `/metrics` are described by `openapi.yaml`.
    public static var routes: [(method: String, path: String)] { ConsoleRoutes.all.map { ($0.method.rawValue, $0.path) } }
}
