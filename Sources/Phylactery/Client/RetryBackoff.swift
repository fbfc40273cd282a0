public import Foundation

/// How retries are spaced: exponential growth with jitter, capped. The one backoff of the library:
/// failed job attempts, transactions retried after a serialization failure, background writers
/// waiting out a failing server, the queue's listener reconnecting.
public struct RetryBackoff: Sendable, Hashable {
    /// The delay after the first failure.
    public var initial: Duration
    /// Each further failure multiplies the delay by this.
    public var multiplier: Double
    /// No delay exceeds this.
    public var maximum: Duration
    /// A random fraction (±) applied to each delay, so failed jobs do not return in lockstep.
    public var jitter: Double

    /// A backoff policy.
    public init(initial: Duration = .seconds(2), multiplier: Double = 2, maximum: Duration = .seconds(3600), jitter: Double = 0.25) {
        self.initial = initial
        self.multiplier = multiplier
        self.maximum = maximum
        self.jitter = jitter
    }

    /// The delay before attempt `attempt + 1`, in seconds, given a random number in 0…1.
    public func delay(afterAttempt attempt: Int, random: Double = Double.random(in: 0...1)) -> Double {
        self.duration(afterAttempt: attempt, random: random).seconds
    }
}

extension RetryBackoff {
    /// The delay before attempt `attempt + 1`, given a random number in 0…1.
    public func duration(afterAttempt attempt: Int, random: Double = Double.random(in: 0...1)) -> Duration {
        let growth = pow(self.multiplier, Double(min(max(0, attempt - 1), 1000)))
        let base = growth.isFinite && self.initial.seconds * growth < self.maximum.seconds ? self.initial * growth : self.maximum
        let factor = 1 + self.jitter * (2 * min(max(random, 0), 1) - 1)
        return factor > 0 ? base * factor : .zero
    }

    /// The backoff of the library's background writers (job outcomes, heartbeats, spans) and of the
    /// queue's claim loops and listener while the server fails: 50 ms doubling to 1 s, ±20 %.
    package static let writer = RetryBackoff(initial: .milliseconds(50), multiplier: 2, maximum: .seconds(1), jitter: 0.2)
}
