package import Logging
package import PostgresNIO

/// The schemas Phylactery creates and owns. Each holds one kind of memory.
public enum Chamber: String, CaseIterable, Sendable, Hashable {
    /// Relational state: the core's and extensions' models.
    case `public`
    /// Semantic memory: pgvector embeddings with a trust status.
    case vectors
    /// Execution traces: spans written by the tracer.
    case traces
    /// The durable job queue.
    case queue
    /// Immutable facts, recalled exactly.
    case verbatim

    /// The schema name in the database.
    public var schema: String { self.rawValue }

    /// The extension every chamber set needs: pgvector, installed as `vector`.
    public static let vectorExtension = "vector"

    /// The extension recall by question needs for trigram similarity: PostgreSQL's contrib `pg_trgm`.
    public static let trigramExtension = "pg_trgm"

    /// The functions ``bootstrap(on:logger:)`` creates (as `schema.name`): a restore into a fresh
    /// database finds them there already and skips the backup's copies.
    package static let bootstrapFunctions = ["verbatim.erase_fact", VectorMemory.nearestFunctionName]

    /// An arbitrary but fixed advisory-lock key, so concurrent first uses (two processes, parallel
    /// tests) create the chambers one after the other instead of racing on the catalog.
    static let bootstrapLockKey: Int64 = 0x7068_796c_6163_7401  // "phylact" + 1

    /// Creates the chamber schemas, the `vector` and `pg_trgm` extensions, the verbatim chamber's
    /// erase function (`verbatim.erase_fact`, see ``FactStore``) and the vectors chamber's index search
    /// (`vectors.nearest_memories`, see ``VectorMemory/search(_:in:options:)``) when they are missing
    /// or not this version's.
    ///
    /// Idempotent and safe to run concurrently. On a server where the user may not create extensions
    /// but an administrator already did, nothing is created; when pgvector or pg_trgm is missing
    /// altogether the error says how to install it.
    package static func bootstrap(on connection: PostgresConnection, logger: Logger) async throws {
        _ = try await connection.query("BEGIN", logger: logger).collect()
        do {
            _ = try await connection.query("SELECT pg_advisory_xact_lock(\(bootstrapLockKey))", logger: logger).collect()
            let existing = try await connection.query(
                "SELECT nspname FROM pg_namespace WHERE nspname = ANY(\(Self.allCases.map(\.schema)))", logger: logger
            ).collect().map { try $0.decode(String.self) }
            for chamber in Self.allCases where !existing.contains(chamber.schema) {
                _ = try await connection.query(PostgresQuery(unsafeSQL: "CREATE SCHEMA IF NOT EXISTS \(SQLIdentifier.quote(chamber.schema))"), logger: logger).collect()
                logger.info("created chamber", metadata: ["schema": "\(chamber.schema)"])
            }
            try await Self.createExtension(
                vectorExtension, on: connection, logger: logger,
                missing: "The server has no pgvector extension. Install pgvector on the server (or use the embedded server: `phylactery db start`).",
                forbidden: "pgvector is available but this user may not create it. Ask an administrator to run: CREATE EXTENSION vector; in this database.")
            try await Self.createExtension(
                trigramExtension, on: connection, logger: logger,
                missing: "The server has no pg_trgm extension (recall by question ranks facts by trigram similarity). Install PostgreSQL's contrib modules on the server (Debian: postgresql-contrib; the embedded server has them: `phylactery db start`).",
                forbidden: "pg_trgm is available but this user may not create it. Ask an administrator to run: CREATE EXTENSION pg_trgm; in this database.")
            try await FactStore.installEraseFunction(on: connection, logger: logger)
            try await VectorMemory.installNearestFunction(on: connection, logger: logger)
            _ = try await connection.query("COMMIT", logger: logger).collect()
        } catch {
            _ = try? await connection.query("ROLLBACK", logger: logger).collect()
            throw error
        }
    }

    /// Creates `name` in the `public` schema unless it is there; the errors say what to install or
    /// whom to ask.
    private static func createExtension(_ name: String, on connection: PostgresConnection, logger: Logger, missing: String, forbidden: String) async throws {
        let installed = try await connection.query(
            "SELECT count(*) FROM pg_extension WHERE extname = \(name)", logger: logger
        ).collect().first?.decode(Int.self) ?? 0
        guard installed == 0 else { return }
        let available = try await connection.query(
            "SELECT count(*) FROM pg_available_extensions WHERE name = \(name)", logger: logger
        ).collect().first?.decode(Int.self) ?? 0
        guard available > 0 else { throw PhylacteryError(.extensionUnavailable, missing) }
        do {
            _ = try await connection.query(PostgresQuery(unsafeSQL: "CREATE EXTENSION IF NOT EXISTS \(SQLIdentifier.quote(name)) WITH SCHEMA public"), logger: logger).collect()
        } catch let error as PSQLError where error.serverInfo?[.sqlState] == "42501" {
            throw PhylacteryError(.extensionUnavailable, forbidden, sqlState: "42501", underlying: error)
        }
        logger.info("created extension", metadata: ["extension": "\(name)"])
    }
}
