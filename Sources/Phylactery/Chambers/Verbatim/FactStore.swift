import Foundation
import PostgresNIO

/// The verbatim chamber: exact facts, recalled deterministically, never overwritten.
///
/// Reached through a transaction (``Transaction/facts``), so facts commit or roll back with the rest
/// of a unit of work:
///
/// ```swift
/// try await client.transaction { tx in
///     try await tx.facts.put("network", key: "gateway.ip", value: "10.0.0.1", source: "operator")
///     let gateway = try await tx.facts.get("network", key: "gateway.ip")   // version 1
/// }
/// ```
///
/// The database enforces immutability: `UPDATE`, `DELETE` and `TRUNCATE` on `verbatim.facts` fail
/// with SQLSTATE ``immutableSQLState`` whoever sends them. A change is a new version
/// (``supersede(_:key:value:source:expectedVersion:)``), and ``history(_:key:)`` lists them all.
public struct FactStore: Sendable {
    /// The SQLSTATE the immutability trigger raises.
    public static let immutableSQLState = "PF001"

    let transaction: Transaction
    let encoder = JSONBEncoder()

    /// The columns a ``Fact`` is read from, in its schema's order.
    static let columns = ModelSQL.selectList(Fact.schema)

    /// Records a new fact as version 1.
    ///
    /// - Throws: ``PhylacteryError/Code/factExists`` when the key already has a fact (use
    ///   ``supersede(_:key:value:source:expectedVersion:)``); ``PhylacteryError/Code/invalidArgument``
    ///   for an empty namespace or key.
    @discardableResult
    public func put(_ namespace: String, key: String, value: some Encodable, source: String) async throws -> Fact {
        try await self.put(namespace, key: key, value: try self.json(value), source: source)
    }

    /// Records a new fact whose value is JSON the caller already has; see ``put(_:key:value:source:)-(_,_,some Encodable,_)``.
    @discardableResult
    public func put(_ namespace: String, key: String, value json: RawJSONB, source: String) async throws -> Fact {
        try Self.checkNames(namespace, key, source: source)
        let rows = try await self.transaction.models("""
            INSERT INTO verbatim.facts (id, namespace, key, version, value, source)
            VALUES (\(UUID.v7()), \(namespace), \(key), 1, \(json), \(source))
            ON CONFLICT (namespace, key, version) DO NOTHING
            RETURNING \(unescaped: Self.columns)
            """, as: Fact.self, file: #fileID, line: #line)
        guard let fact = rows.first else {
            throw PhylacteryError(.factExists, "fact \(namespace)/\(key) is already recorded; facts are never overwritten (use supersede to record a new version)")
        }
        return fact
    }

    /// Records a new version of an existing fact; the old versions stay, in ``history(_:key:)``.
    ///
    /// - Parameter expectedVersion: when given, the current version must be this one (optimistic
    ///   concurrency: a caller that read version 3 does not silently replace version 4).
    /// - Throws: ``PhylacteryError/Code/notFound`` when the key has no fact;
    ///   ``PhylacteryError/Code/staleFact`` when `expectedVersion` is not the current version, or a
    ///   concurrent supersede recorded the same version first.
    @discardableResult
    public func supersede(_ namespace: String, key: String, value: some Encodable, source: String, expectedVersion: Int? = nil) async throws -> Fact {
        try await self.supersede(namespace, key: key, value: try self.json(value), source: source, expectedVersion: expectedVersion)
    }

    /// Records a new version whose value is JSON the caller already has; see
    /// ``supersede(_:key:value:source:expectedVersion:)-(_,_,some Encodable,_,_)``.
    @discardableResult
    public func supersede(_ namespace: String, key: String, value json: RawJSONB, source: String, expectedVersion: Int? = nil) async throws -> Fact {
        try Self.checkNames(namespace, key, source: source)
        let expected = expectedVersion.map { Int32(clamping: $0) }
        let rows: [Fact]
        do {
            rows = try await self.transaction.models("""
                INSERT INTO verbatim.facts (id, namespace, key, version, value, source, supersedes)
                SELECT \(UUID.v7()), current.namespace, current.key, current.version + 1, \(json), \(source), current.id
                FROM (SELECT id, namespace, key, version FROM verbatim.facts
                      WHERE namespace = \(namespace) AND key = \(key) ORDER BY version DESC LIMIT 1) AS current
                WHERE \(expected)::int4 IS NULL OR current.version = \(expected)::int4
                RETURNING \(unescaped: Self.columns)
                """, as: Fact.self, file: #fileID, line: #line)
        } catch let error as PhylacteryError where error.sqlState == "23505" {
            throw PhylacteryError(.staleFact, "fact \(namespace)/\(key) was superseded concurrently; read it again and retry", sqlState: error.sqlState, underlying: error)
        }
        if let fact = rows.first { return fact }
        guard let current = try await self.get(namespace, key: key) else {
            throw PhylacteryError(.notFound, "fact \(namespace)/\(key) does not exist; record it with put first")
        }
        throw PhylacteryError(.staleFact, "fact \(namespace)/\(key) is at version \(current.version), not \(expectedVersion ?? 0); read it again and retry")
    }

    /// The current (highest) version of a fact, or `nil`.
    public func get(_ namespace: String, key: String) async throws -> Fact? {
        try await self.transaction.fetch(Fact.self, where: "namespace = \(namespace) AND key = \(key)", orderBy: "version DESC", limit: 1).first
    }

    /// The current versions of several keys of one namespace, by key; missing keys are absent.
    public func get(_ namespace: String, keys: [String]) async throws -> [String: Fact] {
        guard !keys.isEmpty else { return [:] }
        let facts = try await self.transaction.models("""
            SELECT DISTINCT ON (key) \(unescaped: Self.columns)
            FROM verbatim.facts WHERE namespace = \(namespace) AND key = ANY(\(keys)::text[])
            ORDER BY key, version DESC
            """, as: Fact.self, file: #fileID, line: #line)
        return Dictionary(facts.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
    }

    /// Every version of a fact, oldest first (empty when the key has none).
    ///
    /// A long history is read in pages with ``history(_:key:offset:limit:)``.
    public func history(_ namespace: String, key: String) async throws -> [Fact] {
        try await self.transaction.fetch(Fact.self, where: "namespace = \(namespace) AND key = \(key)", orderBy: "version")
    }

    /// One page of a fact's versions, oldest first: at most `limit` of them, after the first `offset`
    /// (versions are numbered from 1 without gaps, so a page starts at version `offset + 1`, and the
    /// current version's number is how many there are).
    ///
    /// - Throws: ``PhylacteryError/Code/invalidArgument`` for a negative `offset` or `limit`.
    public func history(_ namespace: String, key: String, offset: Int, limit: Int) async throws -> [Fact] {
        guard offset >= 0, limit >= 0 else {
            throw PhylacteryError(.invalidArgument, "offset and limit must not be negative; got \(offset) and \(limit)")
        }
        return try await self.transaction.fetch(
            Fact.self, where: "namespace = \(namespace) AND key = \(key) AND version > \(offset)", orderBy: "version", limit: limit)
    }

    /// The current facts of a namespace whose key starts with `prefix` (all of them for `""`), by key.
    ///
    /// The prefix is matched literally (`%` and `_` are not wildcards) and uses the
    /// `(namespace, key text_pattern_ops)` index.
    public func list(_ namespace: String, prefix: String = "", limit: Int = 1000) async throws -> [Fact] {
        guard limit >= 0 else { throw PhylacteryError(.invalidArgument, "limit must not be negative; got \(limit)") }
        let pattern = Self.likeEscaped(prefix) + "%"
        return try await self.transaction.models("""
            SELECT DISTINCT ON (key) \(unescaped: Self.columns)
            FROM verbatim.facts WHERE namespace = \(namespace) AND key LIKE \(pattern)
            ORDER BY key, version DESC LIMIT \(limit)
            """, as: Fact.self, file: #fileID, line: #line)
    }

    // MARK: - Helpers

    func json(_ value: some Encodable) throws -> RawJSONB {
        RawJSONB(trusted: try self.encoder.encodeToBuffer(value))
    }

    static func checkNames(_ namespace: String, _ key: String, source: String? = nil) throws {
        guard !namespace.isEmpty, !key.isEmpty else {
            throw PhylacteryError(.invalidArgument, "a fact needs a non-empty namespace and key")
        }
        try StorableText.check(namespace, "The fact's namespace")
        try StorableText.check(key, "The fact's key")
        if let source { try StorableText.check(source, "The fact's source") }
    }

    /// `a_b%` → `a\_b\%`: the prefix as a literal LIKE pattern (backslash is LIKE's default escape).
    static func likeEscaped(_ text: String) -> String {
        var result = ""
        for character in text {
            if character == "%" || character == "_" || character == "\\" { result.append("\\") }
            result.append(character)
        }
        return result
    }
}

extension Transaction {
    /// The verbatim chamber, inside this transaction.
    public var facts: FactStore { FactStore(transaction: self) }
}
