import Foundation
import Synchronization

/// What the failover run's handlers saw, from the workers' side: each run of a job, each commit the
/// server acknowledged (with the port of the server that acknowledged it), each commit whose outcome
/// was unknown (the connection died while COMMIT was in flight), each other failure. The database's
/// side (the effect rows on the new primary) is compared with it at the end.
final class FailoverLedger: Sendable {
    struct Commit: Sendable {
        let job: UUID
        /// `inet_server_port()` inside the job's transaction: which server committed it.
        let port: Int
        let at: ContinuousClock.Instant
    }

    private struct State {
        var starts: [UUID: Int] = [:]
        var commits: [Commit] = []
        var unknown: [UUID: Int] = [:]
        var failures: [String: Int] = [:]
        var ticks = 0
    }

    private let state = Mutex(State())

    func started(_ job: UUID) { self.state.withLock { $0.starts[job, default: 0] += 1 } }

    func committed(_ job: UUID, port: Int) {
        let now = ContinuousClock.now
        self.state.withLock { $0.commits.append(Commit(job: job, port: port, at: now)) }
    }

    func unknownOutcome(_ job: UUID) { self.state.withLock { $0.unknown[job, default: 0] += 1 } }

    /// A failed attempt, counted by the error's kind (for the log).
    func failed(_ kind: String) { self.state.withLock { $0.failures[kind, default: 0] += 1 } }

    func ticked() { self.state.withLock { $0.ticks += 1 } }

    var commits: [Commit] { self.state.withLock { $0.commits } }
    var unknown: [UUID: Int] { self.state.withLock { $0.unknown } }
    var failures: [String: Int] { self.state.withLock { $0.failures } }
    var starts: [UUID: Int] { self.state.withLock { $0.starts } }
    var ticks: Int { self.state.withLock { $0.ticks } }

    /// The first commit acknowledged by the server on `port` at or after `instant`.
    func firstCommit(on port: Int, after instant: ContinuousClock.Instant) -> Commit? {
        self.state.withLock { state in state.commits.filter { $0.port == port && $0.at >= instant }.min { $0.at < $1.at } }
    }
}
