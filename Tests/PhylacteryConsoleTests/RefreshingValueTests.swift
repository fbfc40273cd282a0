import Foundation
@testable import PhylacteryConsole
import PhylacteryTestSupport
import Synchronization
import Testing

/// The console's background-refreshed values (the finished jobs' counts): no database needed.
@Suite struct RefreshingValueTests {
    /// Counts the loads and answers with their number, or fails while `failing` is set.
    final class Source: Sendable {
        let loads = Mutex(0)
        let failing = Mutex(false)

        func load() throws -> Int {
            try self.loads.withLock { loads in
                if self.failing.withLock({ $0 }) { throw CancellationError() }
                loads += 1
                return loads
            }
        }
    }

    @Test func aFreshValueIsServedWithoutLoadingAgain() async throws {
        let source = Source()
        let value = RefreshingValue(maxAge: .seconds(3600)) { try source.load() }
        #expect(try await value.read().value == 1)
        #expect(try await value.read().value == 1)
        #expect(source.loads.withLock { $0 } == 1)
    }

    @Test func aStaleValueIsServedWhileOneRefreshRuns() async throws {
        let source = Source()
        let value = RefreshingValue(maxAge: .zero) { try source.load() }
        #expect(try await value.read().value == 1)
        // Stale at once: the caller gets the old value, a refresh starts and the next callers see it.
        #expect(try await value.read().value == 1)
        try await eventually("the refresh is served") { try await value.read().value >= 2 }
    }

    @Test func aFailedRefreshKeepsTheLastValue() async throws {
        let source = Source()
        let value = RefreshingValue(maxAge: .zero) { try source.load() }
        #expect(try await value.read().value == 1)
        source.failing.withLock { $0 = true }
        for _ in 0..<5 { #expect(try await value.read().value == 1) }
        source.failing.withLock { $0 = false }
        try await eventually("a later refresh succeeds") { try await value.read().value == 2 }
    }

    @Test func theFirstReadFailsWhenTheFirstLoadDoes() async throws {
        let source = Source()
        source.failing.withLock { $0 = true }
        let value = RefreshingValue(maxAge: .seconds(3600)) { try source.load() }
        await #expect(throws: CancellationError.self) { try await value.read() }
        source.failing.withLock { $0 = false }
        #expect(try await value.read().value == 1)
    }
}
