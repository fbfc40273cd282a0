import PostgresNIO

/// Questions about stored data the planner asks before it offers a step that could fail on it.
extension MigrationPlanner {
    /// `SELECT EXISTS (<select>)`.
    func exists(_ select: String) async throws -> Bool {
        try await self.query(PostgresQuery(unsafeSQL: "SELECT EXISTS (\(select))")).first?.decode(Bool.self) ?? false
    }

    /// Stored values of one column that a type change's cast (`ALTER COLUMN … TYPE t USING c::t`)
    /// would fail on.
    struct CastFailures: Sendable, Hashable, CustomStringConvertible {
        /// Values checked one by one (at most ``MigrationPlanner/castProbeRowLimit``).
        var checked: Int
        /// How many of them fail.
        var failing: Int
        /// The server's message for the first failure.
        var firstError: String

        var description: String {
            let limit = MigrationPlanner.castProbeRowLimit
            if self.failing > 0 {
                let rows = self.failing == 1 ? "1 stored row fails" : "\(self.failing) stored rows fail"
                let scope = self.checked >= limit ? " (of the first \(limit) checked)" : ""
                return "\(rows) the cast\(scope): \(self.firstError)"
            }
            if self.checked >= limit {
                return "a stored row beyond the first \(limit) fails the cast: \(self.firstError)"
            }
            return "the cast fails: \(self.firstError)"
        }
    }

    /// At most this many values are cast one by one when the cast of the whole column fails
    /// (each in its own subtransaction); the count says when it was cut there.
    static let castProbeRowLimit = 100_000

    /// Casts every stored value of `column` of `table` to `type` inside the planning transaction;
    /// `nil` when all of them cast. One scan when they do; when they don't, the values are cast one by
    /// one (up to ``castProbeRowLimit``) to count the failures and keep the first reason.
    func castFailures(of table: QualifiedName, column: String, to type: String) async throws -> CastFailures? {
        _ = try await self.query(PostgresQuery(unsafeSQL: Self.castProbeFunction(table: table, column: column, type: type)))
        let rows = try await self.query("SELECT checked, failing, first_error FROM pg_temp.phylactery_cast_probe(\(Int64(Self.castProbeRowLimit)))")
        guard let row = rows.first else { return nil }
        let (checked, failing, firstError) = try row.decode((Int64, Int64, String?).self)
        guard let firstError else { return nil }
        return CastFailures(checked: Int(checked), failing: Int(failing), firstError: firstError)
    }

    /// A temporary PL/pgSQL function (gone with the planning transaction) that tries the cast on the
    /// whole column, and on failure value by value, catching each error: an erroring cast cannot be
    /// counted by a plain `SELECT`, whose first error aborts it.
    static func castProbeFunction(table: QualifiedName, column: String, type: String) -> String {
        let value = DDL.q(column)
        let body = """
            DECLARE
                stored record;
            BEGIN
                checked := 0;
                failing := 0;
                BEGIN
                    PERFORM count((\(value))::\(type)) FROM \(table.sql);
                    RETURN;
                EXCEPTION WHEN OTHERS THEN
                    first_error := SQLERRM;
                END;
                FOR stored IN SELECT \(value) AS value FROM \(table.sql) WHERE \(value) IS NOT NULL LIMIT row_limit LOOP
                    checked := checked + 1;
                    BEGIN
                        PERFORM (stored.value)::\(type);
                    EXCEPTION WHEN OTHERS THEN
                        failing := failing + 1;
                        IF failing = 1 THEN
                            first_error := SQLERRM;
                        END IF;
                    END;
                END LOOP;
            END;
            """
        var tag = "$phylactery$"
        while body.contains(tag) { tag = "$phylactery_\(UInt32.random(in: 0...UInt32.max))$" }
        return """
            CREATE OR REPLACE FUNCTION pg_temp.phylactery_cast_probe(row_limit bigint, OUT checked bigint, OUT failing bigint, OUT first_error text) \
            LANGUAGE plpgsql AS \(tag)\(body)\(tag)
            """
    }
}
