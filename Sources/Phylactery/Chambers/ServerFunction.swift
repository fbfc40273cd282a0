import Logging
import PostgresNIO

/// A PL/pgSQL function the chambers' bootstrap keeps at this version's definition
/// (`verbatim.erase_fact`, `vectors.nearest_memories`).
///
/// The database's copy is this version's when two things match:
/// - its source (`prosrc`): the body, which starts with a line naming a fingerprint of the whole
///   `CREATE` statement. A copy created by a version whose statement differed anywhere (body,
///   `SET` clauses, `ROWS`, language) has another first line; a body replaced by hand has another
///   text;
/// - its settings (`proconfig`): the `SET` clauses, which `ALTER FUNCTION … SET/RESET` changes
///   without touching the source. They are what keeps a function's settings from leaking into the
///   caller's transaction, or its `search_path` fixed.
///
/// Anything else, and the function is created again (`CREATE OR REPLACE`, in the bootstrap's
/// transaction). A current copy costs one catalog query.
struct ServerFunction: Sendable {
    /// `schema.name(type,…)`, as `to_regprocedure` reads it.
    let signature: String
    /// `CREATE OR REPLACE FUNCTION …(…) RETURNS … LANGUAGE … [SET …]`: everything before `AS`.
    let header: String
    /// The `SET` clauses of `header` as PostgreSQL keeps them in `proconfig` (`name=value`, in order).
    let settings: [String]
    /// The function's body, without the fingerprint line.
    let body: String

    /// The source as the database should hold it: the fingerprint line, then the body.
    var source: String {
        "\n-- phylactery \(String(SQLNaming.stableHash(header + "\u{0}" + body), radix: 16))\n\(body)"
    }

    /// The statement that creates or replaces the function.
    var createSQL: String { "\(header) AS $phylactery$\(source)$phylactery$" }

    /// Whether the database's copy (its `prosrc` and `proconfig`, `nil` when there is none) is this one.
    func isCurrent(source current: String?, settings currentSettings: [String]?) -> Bool {
        current == source && (currentSettings ?? []) == settings
    }

    /// Creates the function, or replaces it when the database's copy is not this version's (see the
    /// type's description); `prepare` runs first, only when the function is (re)created.
    func install(on connection: PostgresConnection, logger: Logger, prepare: () async throws -> Void = {}) async throws {
        var binds = PostgresBindings()
        binds.append(signature)
        let row = try await connection.query(PostgresQuery(
            unsafeSQL: "SELECT p.prosrc, p.proconfig FROM pg_proc p WHERE p.oid = to_regprocedure($1)", binds: binds
        ), logger: logger).collect().first
        let current = try row?.decode((String, [String]?).self)
        guard !isCurrent(source: current?.0, settings: current?.1) else { return }
        try await prepare()
        _ = try await connection.query(PostgresQuery(unsafeSQL: createSQL), logger: logger).collect()
        logger.info("created function", metadata: ["function": "\(signature)"])
    }
}
