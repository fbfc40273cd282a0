import CoreMetrics
import Foundation
import Synchronization

/// The queue's figures through swift-metrics (whatever backend the daemon bootstraps):
///
/// - `phylactery_queue_jobs_total{queue, outcome}` — attempts ended: `completed`, `retried`,
///   `discarded`, `cancelled`, `snoozed`, `released`, `refused` (fenced off), `lease_lost`,
///   `settled` (the attempt was settled before its outcome was written, other than by a completion),
///   `completion_lost` (a completion its own transaction committed was lost in a failover);
/// - `phylactery_queue_rescued_total` — jobs whose lease expired and were returned;
/// - `phylactery_queue_wait_seconds{queue}` — from the time a job was due to the start of its run.
final class QueueMetrics: Sendable {
    private let counters = Mutex<[String: Counter]>([:])
    private let waits = Mutex<[String: CoreMetrics.Timer]>([:])
    private let rescuedCounter = Counter(label: "phylactery_queue_rescued_total")

    private func counter(queue: String, outcome: String) -> Counter {
        let key = queue + "\u{0}" + outcome
        return self.counters.withLock { counters in
            if let counter = counters[key] { return counter }
            let counter = Counter(label: "phylactery_queue_jobs_total", dimensions: [("queue", queue), ("outcome", outcome)])
            counters[key] = counter
            return counter
        }
    }

    func started(_ job: ClaimedJob) {
        let timer = self.waits.withLock { waits in
            if let timer = waits[job.queue] { return timer }
            let timer = CoreMetrics.Timer(label: "phylactery_queue_wait_seconds", dimensions: [("queue", job.queue)])
            waits[job.queue] = timer
            return timer
        }
        timer.recordNanoseconds(Int64(max(0, Date().timeIntervalSince(job.scheduledAt)) * 1e9))
    }

    func finished(_ job: ClaimedJob, outcome: String) {
        self.counter(queue: job.queue, outcome: outcome).increment()
    }

    /// Counts written outcomes; `refused` are the ones the fence refused (the lease had passed on).
    func recorded(_ job: ClaimedJob, _ outcome: JobOutcome, refused: Bool) {
        let name: String
        if refused {
            name = "refused"
        } else {
            switch outcome {
            case .completed, .resultAfterTransaction: name = "completed"
            case .failed(_, let reason, _, let discard):
                name = discard ? (reason == .cancelled ? "cancelled" : "discarded") : job.attempt >= job.maxAttempts ? "discarded" : "retried"
            case .snoozed: name = "snoozed"
            case .released: name = "released"
            }
        }
        self.counter(queue: job.queue, outcome: name).increment()
    }

    /// Counts an outcome not written because its attempt was already settled under its own claim:
    /// `completed` when its own transaction committed after all, else `settled`.
    func settled(_ job: ClaimedJob, state: String) {
        self.counter(queue: job.queue, outcome: state == JobState.completed.rawValue ? "completed" : "settled").increment()
    }

    func rescued(_ count: Int) { self.rescuedCounter.increment(by: count) }
}
