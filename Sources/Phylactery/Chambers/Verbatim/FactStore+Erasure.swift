import Foundation
package import Logging
package import PostgresNIO

extension FactStore {
    /// Removes the value of every version of a fact, for privacy, and records the erasure.
    ///
    /// Runs the database function `verbatim.erase_fact`, the one path the immutability triggers
    /// allow (see ``Fact``): in one statement it sets `value` and `reason` to NULL and `erased_at` on
    /// every version of the key not yet erased, and appends a ``FactErasure`` (who, when, why, how many
    /// versions; never the value) to `verbatim.fact_erasures`. The versions stay in the history, with
    /// their numbers, times and sources but no value; ``get(_:key:visible:)`` returns nothing, and a
    /// later `put` records the key again. Erasing ignores labels: the caller erases what it names.
    ///
    /// The old values still sit in the table's pages (and its TOAST table and text index) until
    /// ``PhylacteryClient/compactFacts(waitingAtMost:)`` rewrites them, and in the WAL and in backups taken before:
    /// the archive's retention decides when they are gone from those.
    ///
    /// - Parameters:
    ///   - reason: why (kept in the audit record; do not put the value in it).
    ///   - by: who erases it.
    /// - Returns: the audit record.
    /// - Throws: ``PhylacteryError/Code/notFound`` when the key has no version;
    ///   ``PhylacteryError/Code/invalidArgument`` for an empty reason or name.
    @discardableResult
    public func erase(_ namespace: String, key: String, reason: String, by actor: String) async throws -> FactErasure {
        try Self.checkNames(namespace, key)
        guard !reason.isEmpty, !actor.isEmpty else {
            throw PhylacteryError(.invalidArgument, "an erasure needs a reason and the name of who erases; both are kept in verbatim.fact_erasures")
        }
        try StorableText.check(reason, "The erasure's reason")
        try StorableText.check(actor, "The name of who erases the fact")
        let id = UUID.v7()
        do {
            _ = try await self.transaction.rows(
                "SELECT verbatim.erase_fact(\(namespace), \(key), \(reason), \(actor), \(id))", doing: "Erasing a fact")
        } catch let error as PhylacteryError where error.sqlState == "P0002" {
            throw PhylacteryError(.notFound, "fact \(namespace)/\(key) has no version to erase", sqlState: error.sqlState, underlying: error)
        } catch let error as PhylacteryError where error.sqlState == "42883" {
            throw PhylacteryError(
                .migrationRefused,
                "the database has no verbatim.erase_fact function; connect once with a client that creates the chambers (the default) so it is installed, then migrate (`phylactery migrate auto`)",
                sqlState: error.sqlState, underlying: error)
        }
        guard let record = try await self.transaction.find(FactErasure.self, id: id) else {
            throw PhylacteryError(.queryFailed, "verbatim.erase_fact did not record its erasure of \(namespace)/\(key); the function in the database is not Phylactery's (run `phylactery doctor`)")
        }
        return record
    }

    /// Every erasure of a fact, oldest first (empty when it was never erased).
    public func erasures(_ namespace: String, key: String) async throws -> [FactErasure] {
        try await self.transaction.fetch(FactErasure.self, where: "namespace = \(namespace) AND key = \(key)", orderBy: "created_at, id")
    }

    // MARK: - The erase function

    /// The one statement that may change a fact, word for word: the immutability trigger compares its
    /// call stack with this text (see ``Fact``), so it is written once, here, and spliced into both.
    static let eraseStatement = "UPDATE verbatim.facts SET value = NULL, reason = NULL, erased_at = now() WHERE namespace = p_namespace AND key = p_key AND erased_at IS NULL"

    /// The erase function's body. It runs with a fixed `search_path` (so its own frame in a call stack
    /// always reads `verbatim.erase_fact(…)`, and no object of the caller's can stand in for the
    /// tables it names).
    static let eraseFunctionBody = """
        DECLARE
            erased integer;
        BEGIN
            IF coalesce(p_reason, '') = '' OR coalesce(p_by, '') = '' THEN
                RAISE EXCEPTION 'erasing a fact needs a reason and the name of who erases it' USING ERRCODE = '22023';
            END IF;
            PERFORM 1 FROM verbatim.facts WHERE namespace = p_namespace AND key = p_key LIMIT 1;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'no fact %/% to erase', p_namespace, p_key USING ERRCODE = 'P0002';
            END IF;
            \(eraseStatement);
            GET DIAGNOSTICS erased = ROW_COUNT;
            INSERT INTO verbatim.fact_erasures (id, namespace, key, versions, reason, erased_by)
            VALUES (p_id, p_namespace, p_key, erased, p_reason, p_by);
            RETURN erased;
        END;
        """

    /// `verbatim.erase_fact` as the bootstrap installs it.
    static let eraseFunction = ServerFunction(
        signature: "verbatim.erase_fact(text,text,text,text,uuid)",
        header: """
            CREATE OR REPLACE FUNCTION verbatim.erase_fact(p_namespace text, p_key text, p_reason text, p_by text, p_id uuid) \
            RETURNS integer LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
            """,
        settings: ["search_path=pg_catalog, pg_temp"],
        body: eraseFunctionBody)

    /// Creates `verbatim.erase_fact`, or replaces it when it is not this version's (see
    /// ``ServerFunction``: a reset `search_path` counts); part of the chambers' bootstrap (the
    /// `verbatim` schema exists by then; the tables it names need not, PL/pgSQL resolves them when
    /// it runs).
    package static func installEraseFunction(on connection: PostgresConnection, logger: Logger) async throws {
        try await eraseFunction.install(on: connection, logger: logger)
    }
}

extension PhylacteryClient {
    /// Rewrites `verbatim.facts` and its TOAST table and indexes (`VACUUM (FULL, ANALYZE)`), so values
    /// removed by ``FactStore/erase(_:key:reason:by:)`` leave the table's pages on disk.
    ///
    /// A plain `VACUUM` marks the space of the old row versions free but does not overwrite it: a
    /// value stored out of line (TOAST, values of about 2 kB and more) stays readable in the data file
    /// until new rows happen to reuse its space, and the words of a value stay in the full-text
    /// index. The rewrite copies only the live rows into new files and truncates the old ones.
    ///
    /// The rewrite must copy an old row version that a running transaction could still see, and
    /// PostgreSQL counts more than this database's transactions there (a `DROP DATABASE` running in
    /// another database was seen to keep erased versions alive), so it first waits until every
    /// transaction of the server that started before the call has ended (another session's, an
    /// autovacuum worker's).
    ///
    /// Column statistics (`pg_statistic`, which `ANALYZE` fills with sampled values of small
    /// columns) may hold a value sampled before the erasure: the rewrite's `ANALYZE` replaces them, and
    /// the replaced statistics rows leave the catalog's pages when autovacuum next vacuums it.
    ///
    /// - Parameter limit: how long to wait for those transactions.
    /// - Throws: ``PhylacteryError/Code/retriesExhausted`` when one of them is still running after
    ///   `limit`, naming its process id (end it, or call again later); nothing was rewritten.
    /// - Warning: the rewrite holds an `ACCESS EXCLUSIVE` lock on `verbatim.facts` while it runs
    ///   (reads and writes of facts wait; a few thousand facts take well under a second). It cannot
    ///   run inside a transaction. The WAL and backups keep the old values until their retention
    ///   removes them.
    public func compactFacts(waitingAtMost limit: Duration = .seconds(60)) async throws {
        // Every transaction id below this one was assigned before the call: a snapshot that may see
        // an erased version has an xmin below it.
        let horizon = try await self.rows("SELECT pg_snapshot_xmax(pg_current_snapshot())::text").first?.decode(String.self) ?? "0"
        let deadline = ContinuousClock.now + limit
        while true {
            // NULLs: another role's session, seen by a non-superuser (its type and state are hidden).
            let holders = try await self.rows("""
                SELECT pid, backend_type, datname::text, state, floor(extract(epoch FROM now() - xact_start))::int8
                FROM pg_stat_activity
                WHERE pid <> pg_backend_pid()
                  AND (age(backend_xmin) > age(xid(\(horizon)::text::xid8)) OR age(backend_xid) > age(xid(\(horizon)::text::xid8)))
                ORDER BY pid
                """).map { try $0.decode((Int32, String?, String?, String?, Int64?).self) }
            guard let holder = holders.first else { break }
            guard ContinuousClock.now < deadline else {
                let kind = holder.1 ?? "a session of another role"
                let place = holder.2.map { " in database \(SQLIdentifier.quote($0))" } ?? ""
                let age = holder.4.map { ", open for \($0) s" } ?? ""
                let state = holder.3.map { ", \($0)" } ?? ""
                throw PhylacteryError(
                    .retriesExhausted,
                    "process \(holder.0) (\(kind)\(place)\(age)\(state)) has had a transaction open since before the compaction, and it could still see erased values; end it (SELECT pg_terminate_backend(\(holder.0))) or compact again later")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        try await self.execute("VACUUM (FULL, ANALYZE) verbatim.facts")
    }
}
