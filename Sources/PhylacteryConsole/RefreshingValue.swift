import Foundation

/// A value too dear to compute per request (a count over every finished job), served from memory and
/// refreshed in the background once older than `maxAge`, by one load at a time.
///
/// The first caller waits for the first load; later callers get the last value at once, with when it
/// was measured, while a stale value starts a refresh that the next callers see. A failed refresh
/// keeps the old value and is retried by the next caller. No timer: nothing is computed while nobody
/// looks.
actor RefreshingValue<Value: Sendable> {
    /// A value and when it was measured.
    struct Reading: Sendable {
        var value: Value
        var measuredAt: Date
        var loadedAt: ContinuousClock.Instant
    }

    private let maxAge: Duration
    private let clock = ContinuousClock()
    private let load: @Sendable () async throws -> Value
    private var last: Reading?
    private var loading: Task<Reading, any Error>?

    init(maxAge: Duration, load: @escaping @Sendable () async throws -> Value) {
        self.maxAge = maxAge
        self.load = load
    }

    /// The last value (loading it first if there is none), starting a refresh when it is stale.
    func read() async throws -> Reading {
        if let last {
            if self.clock.now - last.loadedAt > self.maxAge { _ = self.startLoad() }
            return last
        }
        return try await self.startLoad().value
    }

    private func startLoad() -> Task<Reading, any Error> {
        if let loading { return loading }
        let load = self.load, clock = self.clock
        // Runs on this actor (it captures `self`), so the stores below need no hop.
        let task = Task { () async throws -> Reading in
            defer { self.loading = nil }
            let reading = Reading(value: try await load(), measuredAt: Date(), loadedAt: clock.now)
            self.last = reading
            return reading
        }
        self.loading = task
        return task
    }
}
