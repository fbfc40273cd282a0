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

/// The namespaces (when none is chosen) or one namespace's keys under a prefix, one keyset page.
struct FactListData: Codable, Sendable {
    struct Namespace: Codable, Sendable { var name: String; var keys: Int; var versions: Int }
    struct Key: Codable, Sendable {
        var key: String; var version: Int; var retracted: Bool; var erased: Bool; var sensitivity: String; var source: String
        var recordedAt: String; var valuePreview: String?
    }
    var namespace: String?
    var prefix: String
    var namespaces: [Namespace]
    var keys: [Key]
    /// Pass as `after` for the next page.
    var next: String?
}

/// A key's full history, oldest first.
struct FactHistoryData: Codable, Sendable {
    var namespace: String
    var key: String
    var versions: [FactData]
}

struct FactsPageView: Sendable { var data: FactListData; var namespace: String; var chosen: Bool; var nextURL: String? }

/// A key's history page: the history, and the way to retract the key while its newest version holds.
struct FactKeyPageView: Sendable {
    var namespace: String
    var key: String
    var versions: [FactData]
    /// The retraction's confirmation page; `nil` when the newest version is already a retraction.
    var retractURL: String?
    var notice: String?
}

/// The retraction's confirmation page.
struct FactRetractPageView: Sendable { var namespace: String; var key: String; var current: FactData; var csrf: String }

/// The body of `POST /api/v1/facts/retract`.
struct FactRetractRequest: Codable, Sendable { var namespace: String; var key: String; var reason: String }

extension PhylacteryConsole {
    /// The most namespaces or keys a page shows.
    static let factPageLimit = 100

    func factListData(namespace: String?, prefix: String, after: String?) async throws -> FactListData {
        try await self.client.transaction { tx in
            guard let namespace else {
                let page = try await tx.facts.namespaces(after: after, limit: Self.factPageLimit)
                return FactListData(namespace: nil, prefix: prefix, namespaces: page.namespaces.map { .init(name: $0.name, keys: $0.keys, versions: $0.versions) },
                                    keys: [], next: page.next)
            }
            let page = try await tx.facts.keys(namespace, prefix: prefix, after: after, limit: Self.factPageLimit)
            return FactListData(
                namespace: namespace, prefix: prefix, namespaces: [],
                keys: page.keys.map {
                    .init(key: $0.key, version: $0.version, retracted: $0.isRetracted, erased: $0.isErased, sensitivity: $0.sensitivity.rawValue,
                          source: $0.source, recordedAt: ConsoleTime.text($0.recordedAt), valuePreview: $0.valuePreview)
                },
                next: page.next)
        }
    }

    func factHistoryData(namespace: String, key: String) async throws -> FactHistoryData {
        let versions = try await self.client.transaction { tx in try await tx.facts.history(namespace, key: key, offset: 0, limit: 1000) }
        guard !versions.isEmpty else { throw PhylacteryError(.notFound, "no fact is stored under \(namespace) / \(key)") }
        return FactHistoryData(namespace: namespace, key: key, versions: versions.map(FactData.init))
    }

    func factsPage(_ request: Request) async throws -> Response {
        let namespace = ConsoleFilters.text(request.uri, "namespace")
        let prefix = ConsoleFilters.text(request.uri, "prefix")
        let data = try await self.factListData(namespace: namespace, prefix: prefix ?? "", after: ConsoleFilters.text(request.uri, "after"))
        let nextURL = data.next.map { "/facts?" + ConsoleForm.query([("namespace", namespace), ("prefix", prefix), ("after", $0)]) }
        return self.page("facts", title: "Facts", section: "/facts", FactsPageView(data: data, namespace: namespace ?? "", chosen: namespace != nil, nextURL: nextURL))
    }

    func factKeyPage(_ request: Request) async throws -> Response {
        guard let namespace = ConsoleFilters.text(request.uri, "namespace"), let key = ConsoleFilters.text(request.uri, "key") else {
            throw ConsoleError(.badRequest, "a fact's history needs ?namespace=…&key=…; follow a key from the Facts page")
        }
        let data = try await self.factHistoryData(namespace: namespace, key: key)
        let live = data.versions.last.map { !$0.isRetraction } ?? false
        let view = FactKeyPageView(
            namespace: namespace, key: key, versions: data.versions,
            retractURL: live ? "/facts/retract?" + ConsoleForm.query([("namespace", namespace), ("key", key)]) : nil,
            notice: ConsoleFilters.text(request.uri, "done") == "retract" ? "Retracted." : nil)
        return self.page("fact-key", title: "Fact \(key)", section: "/facts", view)
    }

    /// The source a retraction made from the console is recorded with.
    static let factSource = "console"

    /// Retracts the key's current fact: a tombstone version with the reason; the history stays.
    func retractFact(namespace: String, key: String, reason: String) async throws -> FactHistoryData {
        guard !reason.isEmpty else { throw ConsoleError(.badRequest, "a retraction needs a reason (why the fact no longer holds)") }
        _ = try await self.client.transaction { tx in try await tx.facts.retract(namespace, key: key, reason: reason, source: Self.factSource) }
        return try await self.factHistoryData(namespace: namespace, key: key)
    }

    /// `GET /facts/retract`: asks for the reason before retracting.
    func factRetractConfirmationPage(_ request: Request) async throws -> Response {
        guard let namespace = ConsoleFilters.text(request.uri, "namespace"), let key = ConsoleFilters.text(request.uri, "key") else {
            throw ConsoleError(.badRequest, "a retraction needs ?namespace=…&key=…; follow Retract from the key's page")
        }
        let data = try await self.factHistoryData(namespace: namespace, key: key)
        guard let current = data.versions.last, !current.isRetraction else {
            throw ConsoleError(.badRequest, "\(namespace) / \(key) is already retracted; nothing to do")
        }
        return self.page("fact-retract", title: "Retract \(key)", section: "/facts",
                         FactRetractPageView(namespace: namespace, key: key, current: current, csrf: self.access.csrfToken))
    }

    /// `POST /facts/key`: the confirmation's form.
    func factForm(_ request: Request) async throws -> Response {
        let form = try await Self.form(request)
        guard form["action"] == "retract", let namespace = form["namespace"], let key = form["key"] else {
            throw ConsoleError(.badRequest, "the form retracts a fact: it needs action=retract, namespace, key and reason")
        }
        _ = try await self.retractFact(namespace: namespace, key: key, reason: form["reason"] ?? "")
        return Self.redirect("/facts/key?" + ConsoleForm.query([("namespace", namespace), ("key", key), ("done", "retract")]))
    }
}
