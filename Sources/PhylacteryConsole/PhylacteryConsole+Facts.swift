import Foundation
import Hummingbird
import Phylactery

/// A fact as the console shows it.
struct FactData: Codable, Sendable {
    var namespace: String
    var key: String
    var version: Int
    var value: String?
    var source: String
    var recordedAt: String
    var isRetraction: Bool
    var reason: String?
    var sensitivity: String
    var erased: Bool

    init(_ fact: Fact) {
        self.namespace = fact.namespace
        self.key = fact.key
        self.version = Int(fact.version)
        self.value = fact.value.map { ConsoleTime.prettyJSON($0.text) }
        self.source = fact.source
        self.recordedAt = ConsoleTime.text(fact.recordedAt)
        self.isRetraction = fact.isRetraction
        self.reason = fact.reason
        self.sensitivity = fact.sensitivity.rawValue
        self.erased = fact.isErased
    }
}

/// The current facts of a namespace under a key prefix.
struct FactListData: Codable, Sendable {
    var namespace: String?
    var prefix: String
    var facts: [FactData]
}

/// A key's full history, oldest first.
struct FactHistoryData: Codable, Sendable {
    var namespace: String
    var key: String
    var versions: [FactData]
}

struct FactsPageView: Sendable { var data: FactListData; var namespace: String; var chosen: Bool }

extension PhylacteryConsole {
    /// The most facts a list shows.
    static let factListLimit = 500

    func factListData(namespace: String?, prefix: String) async throws -> FactListData {
        guard let namespace else { return FactListData(namespace: nil, prefix: prefix, facts: []) }
        let facts = try await self.client.transaction { tx in try await tx.facts.list(namespace, prefix: prefix, limit: Self.factListLimit) }
        return FactListData(namespace: namespace, prefix: prefix, facts: facts.map(FactData.init))
    }

    func factHistoryData(namespace: String, key: String) async throws -> FactHistoryData {
        let versions = try await self.client.transaction { tx in try await tx.facts.history(namespace, key: key, offset: 0, limit: 1000) }
        guard !versions.isEmpty else { throw PhylacteryError(.notFound, "no fact is stored under \(namespace) / \(key)") }
        return FactHistoryData(namespace: namespace, key: key, versions: versions.map(FactData.init))
    }

    func factsPage(_ request: Request) async throws -> Response {
        let namespace = ConsoleFilters.text(request.uri, "namespace")
        let data = try await self.factListData(namespace: namespace, prefix: ConsoleFilters.text(request.uri, "prefix") ?? "")
        return self.page("facts", title: "Facts", section: "/facts", FactsPageView(data: data, namespace: namespace ?? "", chosen: namespace != nil))
    }

    func factKeyPage(_ request: Request) async throws -> Response {
        guard let namespace = ConsoleFilters.text(request.uri, "namespace"), let key = ConsoleFilters.text(request.uri, "key") else {
            throw ConsoleError(.badRequest, "a fact's history needs ?namespace=…&key=…; follow a key from the Facts page")
        }
        let data = try await self.factHistoryData(namespace: namespace, key: key)
        return self.page("fact-key", title: "Fact \(key)", section: "/facts", data)
    }
}
