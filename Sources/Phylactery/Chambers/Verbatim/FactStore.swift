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
/// (``supersede(_:key:value:source:sensitivity:expectedVersion:)``), and ``history(_:key:visible:)``
/// lists them all.
///
/// **Forgetting** comes in two strengths:
/// - ``retract(_:key:reason:source:)`` records a tombstone version: the fact no longer holds, reads
///   return nothing, the history keeps every version (the old values included) and the tombstone.
///   A later ``put(_:key:value:source:sensitivity:)-(_,_,some Encodable,_,_)`` records the key
///   again: its version number continues the sequence and it ``Fact/supersedes`` the tombstone, so
///   one key has one linear history.
/// - ``erase(_:key:reason:by:)`` removes the value of every version, for privacy, through the
///   database function `verbatim.erase_fact`, the only change the triggers allow; it records who
///   erased what, when and why in ``FactErasure`` (without the value). The rows stay (numbers,
///   times, sources), their values are gone; ``PhylacteryClient/compactFacts(waitingAtMost:)`` then rewrites the
///   table so the bytes leave its pages.
///
/// **Labels**: every version carries a ``Sensitivity``. A write that names none gets the
/// transaction's ``Transaction/defaultSensitivity`` (`put`) or the label of the version it replaces
/// (`supersede`, `retract`). Every read takes the labels its caller may see, by default
/// `Sensitivity.visible(upTo: .private)` (public and private; secrets only when asked for): a fact
/// whose current version is hidden by its label reads as absent.
public struct FactStore: Sendable {
    /// The SQLSTATE the immutability trigger raises.
    public static let immutableSQLState = "PF001"

    /// What reads see when their caller names no labels: public and private facts, no secrets.
    public static let defaultVisible: Set<Sensitivity> = Sensitivity.visible(upTo: .private)

    let transaction: Transaction
    let encoder = JSONBEncoder()

    /// The columns a ``Fact`` is read from, in its schema's order.
    static let columns = ModelSQL.selectList(Fact.schema)

    // MARK: - Writing

    /// Records a new fact: version 1, or, after a retraction or an erasure, the next version of the
    /// key (pointing at the tombstone).
    ///
    /// - Parameter sensitivity: the version's label; `nil` takes the transaction's
    ///   ``Transaction/defaultSensitivity``.
    /// - Throws: ``PhylacteryError/Code/factExists`` when the key already has a current fact (use
    ///   ``supersede(_:key:value:source:sensitivity:expectedVersion:)``); ``PhylacteryError/Code/invalidArgument``
    ///   for an empty namespace or key.
    @discardableResult
    public func put(_ namespace: String, key: String, value: some Encodable, source: String, sensitivity: Sensitivity? = nil) async throws -> Fact {
        try await self.put(namespace, key: key, value: try self.json(value), source: source, sensitivity: sensitivity)
    }

    /// Records a new fact whose value is JSON the caller already has; see
    /// ``put(_:key:value:source:sensitivity:)-(_,_,some Encodable,_,_)``.
    @discardableResult
    public func put(_ namespace: String, key: String, value json: RawJSONB, source: String, sensitivity: Sensitivity? = nil) async throws -> Fact {
        try Self.checkNames(namespace, key, source: source)
        let label = (sensitivity ?? self.transaction.defaultSensitivity).rawValue
        let rows: [Fact]
        do {
            rows = try await self.transaction.models("""
                INSERT INTO verbatim.facts (id, namespace, key, version, value, source, supersedes, sensitivity)
                SELECT \(UUID.v7()), \(namespace), \(key), COALESCE(latest.version, 0) + 1, \(json), \(source), latest.id, \(label)
                FROM (SELECT 1) AS one
                LEFT JOIN LATERAL (SELECT id, version, retracted, erased_at FROM verbatim.facts
                                   WHERE namespace = \(namespace) AND key = \(key) ORDER BY version DESC LIMIT 1) AS latest ON true
                WHERE latest.id IS NULL OR latest.retracted OR latest.erased_at IS NOT NULL
                ON CONFLICT (namespace, key, version) DO NOTHING
                RETURNING \(unescaped: Self.columns)
                """, as: Fact.self, file: #fileID, line: #line)
        } catch let error as PhylacteryError where error.sqlState == "23505" {
            throw Self.exists(namespace, key, underlying: error)
        }
        guard let fact = rows.first else { throw Self.exists(namespace, key, underlying: nil) }
        return fact
    }

    static func exists(_ namespace: String, _ key: String, underlying: PhylacteryError?) -> PhylacteryError {
        PhylacteryError(.factExists, "fact \(namespace)/\(key) is already recorded; facts are never overwritten (use supersede to record a new version)",
                        sqlState: underlying?.sqlState, underlying: underlying)
    }

    /// Records a new version of an existing fact; the old versions stay, in ``history(_:key:visible:)``.
    ///
    /// - Parameters:
    ///   - sensitivity: the new version's label; `nil` keeps the label of the version it replaces.
    ///   - expectedVersion: when given, the current version must be this one (optimistic
    ///     concurrency: a caller that read version 3 does not silently replace version 4).
    /// - Throws: ``PhylacteryError/Code/notFound`` when the key has no fact;
    ///   ``PhylacteryError/Code/factRetracted`` when it was retracted or erased (record it again with
    ///   `put`); ``PhylacteryError/Code/staleFact`` when `expectedVersion` is not the current
    ///   version, or a concurrent writer recorded the same version first.
    @discardableResult
    public func supersede(_ namespace: String, key: String, value: some Encodable, source: String, sensitivity: Sensitivity? = nil,
                          expectedVersion: Int? = nil) async throws -> Fact {
        try await self.supersede(namespace, key: key, value: try self.json(value), source: source, sensitivity: sensitivity, expectedVersion: expectedVersion)
    }

    /// Records a new version whose value is JSON the caller already has; see
    /// ``supersede(_:key:value:source:sensitivity:expectedVersion:)-(_,_,some Encodable,_,_,_)``.
    @discardableResult
    public func supersede(_ namespace: String, key: String, value json: RawJSONB, source: String, sensitivity: Sensitivity? = nil,
                          expectedVersion: Int? = nil) async throws -> Fact {
        try Self.checkNames(namespace, key, source: source)
        let fact = try await self.appendVersion(
            namespace, key: key, value: json, source: source, sensitivity: sensitivity, retraction: nil, expectedVersion: expectedVersion)
        return fact
    }

    /// Withdraws a fact: records a tombstone version (no value, ``Fact/isRetraction``, with `reason`)
    /// after the current one. ``get(_:key:visible:)`` returns nothing from then on; the history keeps
    /// every earlier version and the tombstone; `put` records the key again, continuing its version
    /// sequence. The tombstone keeps the label of the version it retracts.
    ///
    /// Retracting does not remove the old values: ``erase(_:key:reason:by:)`` does.
    ///
    /// - Throws: ``PhylacteryError/Code/notFound`` when the key has no fact;
    ///   ``PhylacteryError/Code/factRetracted`` when it is already retracted or erased;
    ///   ``PhylacteryError/Code/invalidArgument`` for an empty reason;
    ///   ``PhylacteryError/Code/staleFact`` when a concurrent writer recorded the next version first.
    @discardableResult
    public func retract(_ namespace: String, key: String, reason: String, source: String) async throws -> Fact {
        try Self.checkNames(namespace, key, source: source)
        guard !reason.isEmpty else {
            throw PhylacteryError(.invalidArgument, "a retraction needs a reason (why the fact no longer holds)")
        }
        try StorableText.check(reason, "The retraction's reason")
        return try await self.appendVersion(namespace, key: key, value: nil, source: source, sensitivity: nil, retraction: reason, expectedVersion: nil)
    }

    /// Inserts the version after the current one of a live fact (a supersede, or a tombstone when
    /// `retraction` holds its reason), and explains why when there is none to follow.
    private func appendVersion(_ namespace: String, key: String, value json: RawJSONB?, source: String, sensitivity: Sensitivity?,
                               retraction reason: String?, expectedVersion: Int?) async throws -> Fact {
        let expected = expectedVersion.map { Int32(clamping: $0) }
        let label = sensitivity?.rawValue
        let retracted = reason != nil
        let rows: [Fact]
        do {
            rows = try await self.transaction.models("""
                INSERT INTO verbatim.facts (id, namespace, key, version, value, source, supersedes, retracted, reason, sensitivity)
                SELECT \(UUID.v7()), current.namespace, current.key, current.version + 1, \(json), \(source), current.id,
                       \(retracted), \(reason), COALESCE(\(label)::text, current.sensitivity)
                FROM (SELECT id, namespace, key, version, sensitivity, retracted, erased_at FROM verbatim.facts
                      WHERE namespace = \(namespace) AND key = \(key) ORDER BY version DESC LIMIT 1) AS current
                WHERE NOT current.retracted AND current.erased_at IS NULL
                  AND (\(expected)::int4 IS NULL OR current.version = \(expected)::int4)
                RETURNING \(unescaped: Self.columns)
                """, as: Fact.self, file: #fileID, line: #line)
        } catch let error as PhylacteryError where error.sqlState == "23505" {
            throw PhylacteryError(.staleFact, "fact \(namespace)/\(key) was changed concurrently; read it again and retry", sqlState: error.sqlState, underlying: error)
        }
        if let fact = rows.first { return fact }
        guard let latest = try await self.latest(namespace, key: key) else {
            throw PhylacteryError(.notFound, "fact \(namespace)/\(key) does not exist; record it with put first")
        }
        if latest.isRetraction || latest.isErased {
            let what = latest.isErased ? "erased" : "retracted"
            let verb = retracted ? "retract" : "supersede"
            throw PhylacteryError(.factRetracted, "fact \(namespace)/\(key) was \(what) at version \(latest.version); there is nothing to \(verb): record it again with put")
        }
        throw PhylacteryError(.staleFact, "fact \(namespace)/\(key) is at version \(latest.version), not \(expectedVersion ?? 0); read it again and retry")
    }

    // MARK: - Reading

    /// The highest version of a key whatever it is (a value, a tombstone, erased) and whatever its
    /// label: for explaining refusals, never returned to a caller as a fact.
    func latest(_ namespace: String, key: String) async throws -> Fact? {
        try await self.transaction.fetch(Fact.self, where: "namespace = \(namespace) AND key = \(key)", orderBy: "version DESC", limit: 1).first
    }

    /// The current version of a fact, or `nil` when there is none, it was retracted or erased, or
    /// its label is not in `visible`.
    ///
    /// - Parameter visible: the labels the caller may see; public and private unless given.
    public func get(_ namespace: String, key: String, visible: Set<Sensitivity> = FactStore.defaultVisible) async throws -> Fact? {
        let labels = Self.labels(visible)
        return try await self.transaction.models("""
            SELECT \(unescaped: Self.columns) FROM (
                SELECT \(unescaped: Self.columns) FROM verbatim.facts
                WHERE namespace = \(namespace) AND key = \(key) ORDER BY version DESC LIMIT 1) AS latest
            WHERE NOT retracted AND erased_at IS NULL AND sensitivity = ANY(\(labels)::text[])
            """, as: Fact.self, file: #fileID, line: #line).first
    }

    /// The current versions of several keys of one namespace, by key; missing, retracted, erased and
    /// hidden keys are absent.
    public func get(_ namespace: String, keys: [String], visible: Set<Sensitivity> = FactStore.defaultVisible) async throws -> [String: Fact] {
        guard !keys.isEmpty else { return [:] }
        let labels = Self.labels(visible)
        let facts = try await self.transaction.models("""
            SELECT \(unescaped: Self.columns) FROM (
                SELECT DISTINCT ON (key) \(unescaped: Self.columns)
                FROM verbatim.facts WHERE namespace = \(namespace) AND key = ANY(\(keys)::text[])
                ORDER BY key, version DESC) AS latest
            WHERE NOT retracted AND erased_at IS NULL AND sensitivity = ANY(\(labels)::text[])
            """, as: Fact.self, file: #fileID, line: #line)
        return Dictionary(facts.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
    }

    /// Every version of a fact the caller may see, oldest first (empty when the key has none):
    /// values, tombstones (``Fact/isRetraction``) and erased versions (``Fact/isErased``, no value).
    ///
    /// A long history is read in pages with ``history(_:key:offset:limit:visible:)``.
    public func history(_ namespace: String, key: String, visible: Set<Sensitivity> = FactStore.defaultVisible) async throws -> [Fact] {
        let labels = Self.labels(visible)
        return try await self.transaction.fetch(
            Fact.self, where: "namespace = \(namespace) AND key = \(key) AND sensitivity = ANY(\(labels)::text[])", orderBy: "version")
    }

    /// One page of a fact's versions, oldest first: at most `limit` of them with a version number
    /// above `offset` (versions are numbered from 1 without gaps, so a page starts at version
    /// `offset + 1`; versions whose label is not in `visible` are left out of the page).
    ///
    /// - Throws: ``PhylacteryError/Code/invalidArgument`` for a negative `offset` or `limit`.
    public func history(_ namespace: String, key: String, offset: Int, limit: Int, visible: Set<Sensitivity> = FactStore.defaultVisible) async throws -> [Fact] {
        guard offset >= 0, limit >= 0 else {
            throw PhylacteryError(.invalidArgument, "offset and limit must not be negative; got \(offset) and \(limit)")
        }
        let labels = Self.labels(visible)
        return try await self.transaction.fetch(
            Fact.self, where: "namespace = \(namespace) AND key = \(key) AND version > \(offset) AND sensitivity = ANY(\(labels)::text[])",
            orderBy: "version", limit: limit)
    }

    /// The current facts of a namespace whose key starts with `prefix` (all of them for `""`), by
    /// key; retracted, erased and hidden keys are left out.
    ///
    /// The prefix is matched literally (`%` and `_` are not wildcards) and uses the
    /// `(namespace, key text_pattern_ops)` index.
    public func list(_ namespace: String, prefix: String = "", limit: Int = 1000, visible: Set<Sensitivity> = FactStore.defaultVisible) async throws -> [Fact] {
        guard limit >= 0 else { throw PhylacteryError(.invalidArgument, "limit must not be negative; got \(limit)") }
        let pattern = Self.likeEscaped(prefix) + "%"
        let labels = Self.labels(visible)
        return try await self.transaction.models("""
            SELECT \(unescaped: Self.columns) FROM (
                SELECT DISTINCT ON (key) \(unescaped: Self.columns)
                FROM verbatim.facts WHERE namespace = \(namespace) AND key LIKE \(pattern)
                ORDER BY key, version DESC) AS latest
            WHERE NOT retracted AND erased_at IS NULL AND sensitivity = ANY(\(labels)::text[])
            ORDER BY key LIMIT \(limit)
            """, as: Fact.self, file: #fileID, line: #line)
    }

    // MARK: - Helpers

    /// The labels as the text array the queries compare with, in a fixed order.
    static func labels(_ visible: Set<Sensitivity>) -> [String] {
        visible.map(\.rawValue).sorted()
    }

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
