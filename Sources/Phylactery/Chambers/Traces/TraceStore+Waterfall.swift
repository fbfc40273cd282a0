extension TraceStore {
    /// One trace's spans as waterfall rows (``TraceWaterfall``): at most `limit` spans in start order
    /// after the first `offset`, like ``trace(_:offset:limit:)``, read through the trace-id index.
    ///
    /// - Throws: `.notFound` when no span of the trace is stored; `.invalidArgument` for a negative
    ///   `offset` or a `limit` below 1.
    public func waterfall(_ id: TraceID, offset: Int = 0, limit: Int = TraceStore.defaultSpanLimit) async throws -> TraceWaterfall {
        TraceWaterfall(try await self.trace(id, offset: offset, limit: limit))
    }
}
