import Foundation
import Logging
import Synchronization
import Tracing

/// The spans a job's completion closes once its outcome is written.
struct JobSpans: Sendable {
    let root: any Span
    let complete: any Span

    func end(_ outcome: JobOutcome, refused: Bool) {
        switch outcome {
        case .failed(let message, let reason, _, _):
            self.root.setStatus(SpanStatus(code: .error, message: "\(reason): \(message)"))
        case .cancelled(let message):
            self.root.setStatus(SpanStatus(code: .error, message: message))
        default:
            break
        }
        if refused { self.complete.setStatus(SpanStatus(code: .error, message: "refused: the lease had passed to another attempt")) }
        self.complete.end()
        self.root.end()
    }
}

/// Gathers attempts' outcomes and writes them together: one statement per kind of outcome for up
/// to a batch, instead of one round trip per job.
///
/// An outcome is kept until it is written: a failed write (the server restarting) is retried.
/// Outcomes refused by the fence (the lease passed on) are dropped and logged.
final class OutcomeBatcher: Sendable {
    private let store: QueueStore
    private let batchSize: Int
    private let flushInterval: Duration
    private let logger: Logger
    private let metrics: QueueMetrics
    private let pending = Mutex<[(job: ClaimedJob, outcome: JobOutcome)]>([])
    private let spans = Mutex<[UUID: JobSpans]>([:])
    private let wake = WakeSignal()

    init(store: QueueStore, batchSize: Int, flushInterval: Duration, logger: Logger, metrics: QueueMetrics) {
        self.store = store
        self.batchSize = max(1, batchSize)
        self.flushInterval = flushInterval
        self.logger = logger
        self.metrics = metrics
    }

    func submit(_ job: ClaimedJob, _ outcome: JobOutcome, spans: JobSpans? = nil) {
        if let spans { self.spans.withLock { $0[job.id] = spans } }
        let count = self.pending.withLock { pending in
            pending.append((job, outcome))
            return pending.count
        }
        if count == 1 || count >= self.batchSize { self.wake.signal() }
    }

    /// Writes batches until cancelled.
    func run() async {
        while !Task.isCancelled {
            await self.wake.wait(timeout: nil)
            if Task.isCancelled { return }
            if self.pending.withLock({ $0.count }) < self.batchSize {
                try? await Task.sleep(for: self.flushInterval)
            }
            await self.flush(untilEmpty: false)
        }
    }

    /// Writes everything still waiting (shutdown), retrying failures a bounded number of times.
    func drain() async {
        await self.flush(untilEmpty: true)
    }

    private func flush(untilEmpty: Bool) async {
        var failures = 0
        while true {
            let batch = self.pending.withLock { pending -> [(job: ClaimedJob, outcome: JobOutcome)] in
                let taken = Array(pending.prefix(self.batchSize))
                pending.removeFirst(taken.count)
                return taken
            }
            if batch.isEmpty { return }
            do {
                let refused = try await self.store.record(batch)
                failures = 0
                self.metrics.recorded(batch, refused: refused)
                let ended = self.spans.withLock { spans in batch.compactMap { item in spans.removeValue(forKey: item.job.id).map { (item, $0) } } }
                for (item, spans) in ended { spans.end(item.outcome, refused: refused.contains(item.job.id)) }
                if !refused.isEmpty {
                    self.logger.warning("outcomes refused: the lease had passed to another attempt", metadata: ["jobs": "\(refused.count)"])
                }
            } catch {
                failures += 1
                // Keep them, oldest first, and try again: the jobs stay `running` meanwhile, and if
                // this process dies their leases expire and the rescuer returns them.
                self.pending.withLock { $0.insert(contentsOf: batch, at: 0) }
                self.logger.warning("writing outcomes failed; retrying", metadata: ["jobs": "\(batch.count)", "error": "\(error)"])
                if Task.isCancelled && !untilEmpty { return }
                if untilEmpty && failures > 50 {
                    self.logger.error("giving up writing outcomes at shutdown; their leases will expire and the jobs run again", metadata: ["jobs": "\(self.pending.withLock { $0.count })"])
                    return
                }
                try? await Task.sleep(for: .milliseconds(100 * min(failures, 20)))
            }
            if !untilEmpty && self.pending.withLock({ $0.count }) < self.batchSize { return }
        }
    }
}
