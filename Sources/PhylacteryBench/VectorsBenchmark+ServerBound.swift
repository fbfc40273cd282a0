import Foundation
import Phylactery
import PostgresNIO

/// The ceiling of `phylactery-bench vectors`' searches: the statement our search sends
/// (``VectorMemory/indexSearchSQL``, word for word, with the same binds), run for each query vector
/// inside the server by a PL/pgSQL loop, so no client, protocol or network is in the loop.
///
/// The loop is a function of the benchmark's database whose first parameters are the statement's
/// parameters, in order: inside it, the statement is static SQL whose `$1 … $12` are those
/// parameters, so PL/pgSQL prepares it once and executes it like a prepared statement; the loop
/// assigns each query vector to the first parameter in turn. The query vectors go in once, as one
/// array (bound as text and cast before the loop starts). The server times the loop itself with
/// `clock_timestamp()`, and returns every query's ids, so the benchmark checks the loop found what
/// our search found.
extension VectorsBenchmark {
    static let serverLoopFunction = "public.phylactery_bench_search_loop"

    /// `CREATE OR REPLACE FUNCTION` of the loop.
    static var createServerLoopSQL: String {
        let parameters = VectorMemory.indexSearchParameterTypes.enumerated().map { "p\($0.offset + 1) \($0.element)" }.joined(separator: ", ")
        return """
            CREATE OR REPLACE FUNCTION \(serverLoopFunction)(\(parameters), queries vector[])
            RETURNS TABLE (bench_query integer, bench_memory uuid, bench_seconds double precision)
            LANGUAGE plpgsql AS $bench$
            DECLARE
                started timestamptz;
                hit record;
            BEGIN
                started := clock_timestamp();
                FOR i IN 1 .. coalesce(array_length(queries, 1), 0) LOOP
                    p1 := queries[i];
                    FOR hit IN \(VectorMemory.indexSearchSQL) LOOP
                        bench_query := i;
                        bench_memory := hit.id;
                        RETURN NEXT;
                    END LOOP;
                END LOOP;
                bench_query := 0;
                bench_memory := NULL;
                bench_seconds := extract(epoch FROM clock_timestamp() - started);
                RETURN NEXT;
            END;
            $bench$
            """
    }

    /// Creates (or replaces) the loop in the benchmark's database.
    func createServerLoop() async throws {
        try await self.client.execute(PostgresQuery(unsafeSQL: Self.createServerLoopSQL))
    }

    /// Runs the loop over `queries` once: the server's own time for all of them, and each query's
    /// ids in the order found.
    func serverLoop(_ queries: [Vector], in space: EmbeddingSpace, options: VectorMemory.SearchOptions) async throws -> (seconds: Double, ids: [[UUID]]) {
        var binds = try VectorMemory.indexSearchBinds(queries[0], in: space, options: options)
        binds.append(queries.map(\.literal))
        let placeholders = (1...binds.count).map { index in
            index == binds.count ? "$\(index)::text[]::vector[]" : "$\(index)::\(VectorMemory.indexSearchParameterTypes[index - 1])"
        }.joined(separator: ", ")
        let rows = try await self.client.query(PostgresQuery(
            unsafeSQL: "SELECT bench_query, bench_memory, bench_seconds FROM \(Self.serverLoopFunction)(\(placeholders))", binds: binds)).collect()
        var ids = Array(repeating: [UUID](), count: queries.count)
        var seconds: Double?
        for row in rows {
            let (query, memory, elapsed) = try row.decode((Int32, UUID?, Double?).self)
            if query == 0 {
                seconds = elapsed
            } else if let memory {
                ids[Int(query) - 1].append(memory)
            }
        }
        guard let seconds, seconds > 0 else {
            throw PhylacteryError(.queryFailed, "benchmark: the server's search loop returned no time")
        }
        return (seconds, ids)
    }
}
