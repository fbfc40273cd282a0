import Foundation
import Hummingbird
import Phylactery

/// Vector counts per space and status, and the matches of a text search.
struct MemoryData: Codable, Sendable {
    struct Count: Codable, Sendable { var space: String; var status: String; var count: Int }
    struct Match: Codable, Sendable { var id: String; var content: String; var status: String; var owner: String; var score: Double }
    var counts: [Count]
    var query: String?
    var matches: [Match]
}

/// One memory with its status history.
struct MemoryItemData: Codable, Sendable {
    struct Change: Codable, Sendable { var from: String; var to: String; var by: String; var at: String }
    var id: String
    var content: String
    var metadata: String
    var status: String
    var owner: String
    var source: String
    var sensitivity: String?
    var createdAt: String
    var statusChangedBy: String?
    var statusChangedAt: String?
    var history: [Change]
    /// The nearest memories in the default space (or the first the memory has a vector in).
    var neighbours: [MemoryData.Match]
}

/// What a memory action did.
struct MemoryActionData: Codable, Sendable {
    var action: String
    var memory: MemoryItemData?
    var forgotten: Bool?
}

/// The reason given when forgetting.
struct ForgetRequest: Codable, Sendable { var reason: String }

struct MemoryPageView: Sendable { var data: MemoryData; var query: String; var searched: Bool }
struct MemoryItemPageView: Sendable { var memory: MemoryItemData; var csrf: String; var notice: String? }
struct ForgetPageView: Sendable { var memory: MemoryItemData; var csrf: String }

extension PhylacteryConsole {
    /// Who the memory's status log records for changes made here.
    static let memoryActor = "console"

    func memoryData(query: String?) async throws -> MemoryData {
        try await self.client.transaction { tx in
            let counts = try await tx.memory.stats().map {
                MemoryData.Count(space: "\($0.space.model)@\($0.space.fingerprint)", status: $0.status.rawValue, count: $0.count)
            }
            var matches: [MemoryData.Match] = []
            if let query {
                var options = VectorMemory.SearchOptions()
                options.k = 50
                matches = try await tx.memory.search(text: query, options: options).map {
                    .init(id: $0.memory.id.uuidString.lowercased(), content: $0.memory.content, status: $0.status.rawValue, owner: $0.memory.owner, score: $0.score)
                }
            }
            return MemoryData(counts: counts, query: query, matches: matches)
        }
    }

    func memoryItemData(_ id: UUID) async throws -> MemoryItemData {
        try await self.client.transaction { tx in
            guard let memory = try await tx.memory.detail(of: id, neighbours: 5, historyLimit: 200) else {
                throw PhylacteryError(.notFound, "no memory has the id \(id) (or its label is not visible here)")
            }
            return MemoryItemData(
                id: memory.id.uuidString.lowercased(), content: memory.content, metadata: ConsoleTime.prettyJSON(memory.metadata),
                status: memory.status.rawValue, owner: memory.owner, source: memory.source, sensitivity: memory.sensitivity.rawValue,
                createdAt: ConsoleTime.text(memory.createdAt), statusChangedBy: memory.statusChangedBy, statusChangedAt: memory.statusChangedAt.map(ConsoleTime.text),
                history: memory.history.map { .init(from: $0.fromStatus.rawValue, to: $0.toStatus.rawValue, by: $0.changedBy, at: ConsoleTime.text($0.changedAt)) },
                neighbours: memory.neighbours.map {
                    .init(id: $0.id.uuidString.lowercased(), content: $0.content, status: $0.status.rawValue, owner: $0.owner, score: -$0.distance)
                })
        }
    }

    /// `consecrate`, `reject`, or `forget` (which needs a reason).
    func memoryAction(_ action: String, on id: UUID, reason: String?) async throws -> MemoryActionData {
        switch action {
        case "consecrate":
            try await self.client.transaction { tx in _ = try await tx.memory.consecrate(id, by: Self.memoryActor) }
        case "reject":
            try await self.client.transaction { tx in _ = try await tx.memory.reject(id, by: Self.memoryActor) }
        case "forget":
            guard let reason, !reason.isEmpty else { throw ConsoleError(.badRequest, "forgetting a memory needs a reason (kept in the audit record)") }
            let existed = try await self.client.transaction { tx in try await tx.memory.forget(id, by: Self.memoryActor, reason: reason) }
            return MemoryActionData(action: action, memory: nil, forgotten: existed)
        default:
            throw ConsoleError(.badRequest, "a memory action is consecrate, reject or forget (got \(action))")
        }
        return MemoryActionData(action: action, memory: try await self.memoryItemData(id), forgotten: nil)
    }

    func memoryPage(_ request: Request) async throws -> Response {
        let query = ConsoleFilters.text(request.uri, "q")
        let data = try await self.memoryData(query: query)
        return self.page("memory", title: "Memory", section: "/memory", MemoryPageView(data: data, query: query ?? "", searched: query != nil))
    }

    func memoryItemPage(_ request: Request, id: UUID) async throws -> Response {
        let memory = try await self.memoryItemData(id)
        let notice = ConsoleFilters.text(request.uri, "done").flatMap { ["consecrate": "Consecrated.", "reject": "Rejected."][$0] }
        return self.page("memory-item", title: "Memory", section: "/memory", MemoryItemPageView(memory: memory, csrf: self.access.csrfToken, notice: notice))
    }

    func forgetConfirmationPage(id: UUID) async throws -> Response {
        let memory = try await self.memoryItemData(id)
        return self.page("memory-forget", title: "Forget a memory", section: "/memory", ForgetPageView(memory: memory, csrf: self.access.csrfToken))
    }

    func memoryForm(_ request: Request, id: UUID) async throws -> Response {
        let form = try await Self.form(request)
        let action = form["action"] ?? ""
        let result = try await self.memoryAction(action, on: id, reason: form["reason"])
        if result.forgotten != nil { return Self.redirect("/memory?forgotten=1") }
        return Self.redirect("/memory/\(id.uuidString.lowercased())?done=\(action)")
    }
}
