public import Foundation
import PostgresNIO

extension FactStore {
    /// One page of the namespaces that hold facts, by name, with their key and version counts,
    /// starting after the namespace `after`.
    ///
    /// The namespaces are found by skipping through the `(namespace, key, version)` index one
    /// namespace at a time, so a page costs `limit` index probes however many facts there are; the
    /// counts read each listed namespace's part of the index.
    ///
    /// - Throws: ``PhylacteryError/Code/invalidArgument`` for a limit outside 1…1000.
    public func namespaces(after: String? = nil, limit: Int = 100) async throws -> FactNamespacePage {
        guard (1...1000).contains(limit) else {
            throw PhylacteryError(.invalidArgument, "a page holds 1 to 1000 namespaces; got a limit of \(limit)")
        }
        let doing = "Listing fact namespaces"
        // A recursive CTE is evaluated only as far as the outer LIMIT reads it.
        let rows = try await self.transaction.rows("""
            WITH RECURSIVE ns(name) AS (
                (SELECT namespace FROM verbatim.facts WHERE \(after == nil) OR namespace > \(after ?? "") ORDER BY namespace LIMIT 1)
                UNION ALL
                SELECT (SELECT f.namespace FROM verbatim.facts f WHERE f.namespace > ns.name ORDER BY f.namespace LIMIT 1)
                FROM ns WHERE ns.name IS NOT NULL),
            page AS (SELECT name FROM ns WHERE name IS NOT NULL LIMIT \(limit + 1))
            SELECT page.name, c.keys, c.versions FROM page CROSS JOIN LATERAL (
                SELECT count(DISTINCT key)::int8 AS keys, count(*)::int8 AS versions FROM verbatim.facts WHERE namespace = page.name) AS c
            ORDER BY page.name
            """, doing: doing)
        var namespaces: [FactNamespace] = []
        for row in rows {
            do {
                let (name, keys, versions) = try row.decode((String, Int64, Int64).self)
                namespaces.append(FactNamespace(name: name, keys: Int(keys), versions: Int(versions)))
            } catch {
                throw self.transaction.aborting(error, doing: doing, file: #fileID, line: #line)
            }
        }
        let more = namespaces.count > limit
        if more { namespaces.removeLast(namespaces.count - limit) }
        return FactNamespacePage(namespaces: namespaces, next: more ? namespaces.last?.name : nil)
    }

    /// One page of the keys of `namespace` that start with `prefix`, in byte order, after the key
    /// `after`, each as its newest version stands: current, retracted or erased. Keys whose newest
    /// version carries a label outside `visible` are left out (the page may then hold fewer than
    /// `limit` keys while ``FactKeyPage/next`` still leads on).
    ///
    /// The keys come from the `(namespace, key text_pattern_ops)` index (the prefix matched
    /// literally, as a range of it), the newest versions from the `(namespace, key, version)` one.
    ///
    /// - Throws: ``PhylacteryError/Code/invalidArgument`` for a limit outside 1…1000.
    public func keys(_ namespace: String, prefix: String = "", after: String? = nil, limit: Int = 100,
                     visible: Set<Sensitivity> = FactStore.defaultVisible) async throws -> FactKeyPage {
        guard (1...1000).contains(limit) else {
            throw PhylacteryError(.invalidArgument, "a page holds 1 to 1000 keys; got a limit of \(limit)")
        }
        let pattern = Self.likeEscaped(prefix) + "%"
        let labels = Self.labels(visible)
        let doing = "Listing a namespace's fact keys"
        // ~<~ and ~>~ are the byte-order operators of text_pattern_ops: the order of the index.
        let rows = try await self.transaction.rows("""
            WITH k AS (
                SELECT DISTINCT key FROM verbatim.facts
                WHERE namespace = \(namespace) AND key LIKE \(pattern) AND (\(after == nil) OR key ~>~ \(after ?? ""))
                ORDER BY key USING ~<~ LIMIT \(limit + 1))
            SELECT k.key, f.version, f.retracted, f.erased_at IS NOT NULL, f.sensitivity, f.source, f.created_at, left(f.value::text, 200),
                   f.sensitivity = ANY(\(labels)::text[])
            FROM k CROSS JOIN LATERAL (
                SELECT * FROM verbatim.facts WHERE namespace = \(namespace) AND key = k.key ORDER BY version DESC LIMIT 1) AS f
            ORDER BY k.key USING ~<~
            """, doing: doing)
        var keys: [(summary: FactKeySummary, isVisible: Bool)] = []
        for row in rows {
            do {
                let (key, version, retracted, erased, sensitivity, source, recordedAt, preview, isVisible) =
                    try row.decode((String, Int32, Bool, Bool, String, String, Date, String?, Bool).self)
                let summary = FactKeySummary(
                    namespace: namespace, key: key, version: Int(version), isRetracted: retracted, isErased: erased,
                    sensitivity: Sensitivity(rawValue: sensitivity) ?? .secret, source: source, recordedAt: recordedAt, valuePreview: preview)
                keys.append((summary, isVisible))
            } catch {
                throw self.transaction.aborting(error, doing: doing, file: #fileID, line: #line)
            }
        }
        let more = keys.count > limit
        if more { keys.removeLast(keys.count - limit) }
        return FactKeyPage(keys: keys.filter(\.isVisible).map(\.summary), next: more ? keys.last?.summary.key : nil)
    }
}
