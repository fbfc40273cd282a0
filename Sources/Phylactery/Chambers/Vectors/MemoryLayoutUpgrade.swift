import Logging
import PostgresNIO

/// Upgrades `vectors.memories` from the layout where each row held its embedding (columns
/// `embedding`, `dimensions`, `embedding_model`, `space_fingerprint`) to memories without vectors,
/// vectors per space in `vectors.embeddings` and spaces as rows of `vectors.spaces`.
///
/// The planner cannot carry data from one table into another, and dropping the old columns is a
/// data-loss step that ``Migrator/auto(message:)`` refuses. So the ``Migrator`` runs this around its
/// plan, under its migration lock, whenever the core's `Memory` model is part of the federation:
///
/// 1. ``prepare(on:logger:)`` — one transaction: copies every memory's vector, model, fingerprint
///    and dimensions into the holding table `public.phylactery_memory_vectors_upgrade` (the
///    `phylactery_` prefix keeps the planner's hands off it), then drops the old columns (their
///    indexes and check go with them). The planner then sees only additive steps.
/// 2. The migration creates `vectors.spaces` and `vectors.embeddings` (and the new columns).
/// 3. ``finish(on:logger:)`` — one transaction: registers each (model, fingerprint) as a space (the
///    one holding most vectors becomes the default when none is), inserts every held vector as its
///    memory's row in `vectors.embeddings`, and drops the holding table.
///
/// Each step is idempotent: a process that dies between them leaves the holding table, and the next
/// migration finishes the move. Nothing is dropped before the vectors are held elsewhere.
enum MemoryLayoutUpgrade {
    /// The holding table between the two steps.
    static let holdingTable = "public.phylactery_memory_vectors_upgrade"

    /// Moves the old layout's vectors aside and drops the old columns; returns how many vectors were held.
    @discardableResult
    static func prepare(on connection: PostgresConnection, logger: Logger) async throws -> Int {
        try await self.inTransaction(on: connection, logger: logger) {
            let old = try await connection.query("""
                SELECT count(*) FROM information_schema.columns
                WHERE table_schema = 'vectors' AND table_name = 'memories'
                  AND column_name IN ('embedding', 'dimensions', 'embedding_model', 'space_fingerprint')
                """, logger: logger).collect().first?.decode(Int64.self) ?? 0
            guard old == 4 else { return 0 }
            _ = try await connection.query(PostgresQuery(unsafeSQL: """
                CREATE TABLE IF NOT EXISTS \(holdingTable) (
                    memory_id uuid PRIMARY KEY, model text NOT NULL, fingerprint text NOT NULL,
                    dimensions integer NOT NULL, embedding vector NOT NULL, created_at timestamptz NOT NULL)
                """), logger: logger).collect()
            let held = try await connection.query(PostgresQuery(unsafeSQL: """
                WITH held AS (
                    INSERT INTO \(holdingTable) (memory_id, model, fingerprint, dimensions, embedding, created_at)
                    SELECT id, embedding_model, space_fingerprint, dimensions, embedding, created_at FROM vectors.memories
                    WHERE embedding IS NOT NULL
                    ON CONFLICT (memory_id) DO NOTHING RETURNING 1)
                SELECT count(*) FROM held
                """), logger: logger).collect().first?.decode(Int64.self) ?? 0
            _ = try await connection.query("""
                ALTER TABLE vectors.memories DROP COLUMN embedding, DROP COLUMN dimensions,
                    DROP COLUMN embedding_model, DROP COLUMN space_fingerprint
                """, logger: logger).collect()
            logger.notice("vectors.memories: moved the old layout's vectors aside for the new layout", metadata: ["vectors": "\(held)"])
            return Int(held)
        }
    }

    /// Carries held vectors into `vectors.spaces` and `vectors.embeddings` once those exist; returns
    /// how many vectors arrived (0 when nothing was held).
    @discardableResult
    static func finish(on connection: PostgresConnection, logger: Logger) async throws -> Int {
        try await self.inTransaction(on: connection, logger: logger) {
            let ready = try await connection.query(PostgresQuery(unsafeSQL: """
                SELECT to_regclass('\(holdingTable)') IS NOT NULL AND to_regclass('vectors.spaces') IS NOT NULL
                   AND to_regclass('vectors.embeddings') IS NOT NULL
                """), logger: logger).collect().first?.decode(Bool.self) ?? false
            guard ready else { return 0 }
            _ = try await connection.query(PostgresQuery(unsafeSQL: """
                INSERT INTO vectors.spaces (id, model, fingerprint, dimensions, is_default, created_at, updated_at)
                SELECT uuidv7(), model, fingerprint, mode() WITHIN GROUP (ORDER BY dimensions), false, min(created_at), now()
                FROM \(holdingTable) GROUP BY model, fingerprint
                ON CONFLICT (model, fingerprint) DO NOTHING
                """), logger: logger).collect()
            _ = try await connection.query(PostgresQuery(unsafeSQL: """
                UPDATE vectors.spaces SET is_default = true, updated_at = now()
                WHERE NOT EXISTS (SELECT 1 FROM vectors.spaces WHERE is_default)
                  AND id = (SELECT s.id FROM vectors.spaces AS s JOIN \(holdingTable) AS h ON h.model = s.model AND h.fingerprint = s.fingerprint
                            GROUP BY s.id ORDER BY count(*) DESC, s.id LIMIT 1)
                """), logger: logger).collect()
            let carried = try await connection.query(PostgresQuery(unsafeSQL: """
                WITH carried AS (
                    INSERT INTO vectors.embeddings (id, created_at, updated_at, memory_id, space_id, dimensions, embedding)
                    SELECT uuidv7(), h.created_at, now(), h.memory_id, s.id, h.dimensions, h.embedding
                    FROM \(holdingTable) AS h JOIN vectors.spaces AS s ON s.model = h.model AND s.fingerprint = h.fingerprint
                    WHERE EXISTS (SELECT 1 FROM vectors.memories AS m WHERE m.id = h.memory_id)
                    ON CONFLICT (memory_id, space_id) DO NOTHING RETURNING 1)
                SELECT count(*) FROM carried
                """), logger: logger).collect().first?.decode(Int64.self) ?? 0
            _ = try await connection.query(PostgresQuery(unsafeSQL: "DROP TABLE \(holdingTable)"), logger: logger).collect()
            logger.notice("vectors.memories: carried the old layout's vectors into vectors.embeddings", metadata: ["vectors": "\(carried)"])
            return Int(carried)
        }
    }

    private static func inTransaction(on connection: PostgresConnection, logger: Logger, _ body: () async throws -> Int) async throws -> Int {
        _ = try await connection.query("BEGIN", logger: logger).collect()
        do {
            let result = try await body()
            _ = try await connection.query("COMMIT", logger: logger).collect()
            return result
        } catch {
            _ = try? await connection.query("ROLLBACK", logger: logger).collect()
            throw PhylacteryError(.migrationFailed, "upgrading vectors.memories to vectors per embedding space failed; nothing of this step was changed: \(error). Fix the cause and migrate again", underlying: error)
        }
    }
}
