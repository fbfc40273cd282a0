import PostgresNIO

extension PhylacteryClient {
    /// ``VectorMemory/search(_:in:options:)`` in one round trip: a vector search that walks an HNSW
    /// index runs as one statement on a pooled connection, outside any explicit transaction (no
    /// `BEGIN`, no `COMMIT`), prepared once per connection when the client's sessions are its own.
    ///
    /// The statement finds the space, sets the scan parameters for its own duration and walks the
    /// index (see ``VectorMemory/search(_:in:options:)``); through a transaction pooler it is sent
    /// unprepared, which the pooler allows. Other searches (exact, text, hybrid, other metrics or
    /// dimensions without an index) run in a transaction of their own, and inside a transaction of
    /// this client on the same task the search joins that transaction, like the other client-level
    /// operations. Reads the primary, as they do.
    ///
    /// - Throws: what ``VectorMemory/search(_:in:options:)`` throws.
    public func searchMemory(
        _ query: Vector, in space: EmbeddingSpace, options: VectorMemory.SearchOptions = VectorMemory.SearchOptions(),
        file: String = #fileID, line: Int = #line
    ) async throws -> [VectorMemory.Match] {
        let joinsTransaction = CurrentTransaction.context.map { $0.client == ObjectIdentifier(self) && $0.task == CurrentTransaction.currentTask } ?? false
        guard !joinsTransaction, options.mode == .vector, VectorMemory.usesIndex(options, dimensions: space.dimensions) else {
            return try await self.transaction(file: file, line: line) { tx in try await tx.memory.search(query, in: space, options: options) }
        }
        try query.requireDimensions(space.dimensions, for: "embedding space \(space.name)")
        try VectorMemory.check(options)
        let binds = try VectorMemory.indexSearchBinds(query, in: space, options: options)
        let rows: [PostgresRow]
        do {
            rows = try await self.rows(prepared: VectorMemory.IndexSearchStatement(bindings: binds), file: file, line: line)
        } catch {
            throw VectorMemory.missingFunction(PhylacteryError.wrapping(error, doing: "Searching vector memory", file: file, line: line))
        }
        let matches: [VectorMemory.Match]
        do {
            matches = try VectorMemory.decodeMatches(rows, space: space)
        } catch {
            throw PhylacteryError.wrapping(error, doing: "Reading the matches of a vector search", file: file, line: line)
        }
        guard matches.isEmpty else { return matches }
        return try await self.transaction(file: file, line: line) { tx in try await tx.memory.explainNoMatches(in: space) }
    }
}
