/// A condition a test waited for did not hold in time.
public struct ConditionTimedOut: Error, CustomStringConvertible {
    /// What was waited for.
    public let message: String
    public var description: String { "timed out waiting: \(self.message)" }
}

/// Polls `condition` every 50 ms until it holds, or throws ``ConditionTimedOut`` after `timeout`:
/// how tests wait for something that happens in the background, instead of sleeping.
///
/// With `retryingErrors`, a condition that throws counts as "not yet" (for conditions read through
/// connections a test is busy killing); otherwise its error ends the wait.
public func eventually(
    _ message: String, timeout: Duration = .seconds(90), retryingErrors: Bool = false, _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if retryingErrors {
            if (try? await condition()) == true { return }
        } else if try await condition() {
            return
        }
        try await Task.sleep(for: .milliseconds(50))
    }
    throw ConditionTimedOut(message: message)
}
