/// Thrown when the client's primary changed (a failover) while work bound to the old one ran.
struct PrimaryMoved: Error, CustomStringConvertible {
    var description: String { "the client's primary moved (a failover): the session on the former primary was given up" }
}

extension PhylacteryClient {
    /// Runs `body` — work that holds a session on the current primary: the queue's LISTEN connection,
    /// the periodic leader's advisory lock — and cancels it, throwing ``PrimaryMoved``, as soon as
    /// the client's primary changes (``PhylacteryClient/postgres`` is then another pool), checking
    /// every `interval`.
    ///
    /// After a failover such a session must move to the new primary: notifications and advisory locks
    /// are not replicated, and a session that stayed on a former primary still alive (promoted away
    /// from, not killed) would listen and lead where nobody writes any more. A session on a primary
    /// that died ends by itself. With one host the primary never changes and `body` simply runs.
    func untilPrimaryMoves<R: Sendable>(checkingEvery interval: Duration, _ body: @escaping @Sendable () async throws -> R) async throws -> R {
        let primary = ObjectIdentifier(self.postgres)
        return try await withThrowingTaskGroup(of: R?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                while ObjectIdentifier(self.postgres) == primary { try await Task.sleep(for: interval) }
                throw PrimaryMoved()
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let result = first else { throw PrimaryMoved() }
            return result
        }
    }
}
