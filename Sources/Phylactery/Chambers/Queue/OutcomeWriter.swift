import Foundation
import Logging
import Synchronization
import Tracing

/// The spans a job's completion closes once its outcome is written.
struct JobSpans: Sendable {
    let root: any Span
    let complete: any Span

    func end(_ outcome: JobOutcome, refused: Bool) {
        if case .failed(let message, let reason, _, _) = outcome {
            self.root.setStatus(SpanStatus(code: .error, message: "\(reason.rawValue): \(message)"))
        }
        if refused { self.complete.setStatus(SpanStatus(code: .error, message: "refused: the lease had passed to another attempt")) }
        self.complete.end()
        self.root.end()
    }
}

/// The one component that writes job outcomes: every attempt's end (completion, failure, retry,
/// discard, cancellation, snooze, give-back) and every handler's result goes through here; the SQL
/// is in `OutcomeWriter+SQL.swift`.
///
/// Outcomes are written together, one statement per batch. Nothing a handler finished is lost or run
/// again while this process lives:
/// - an outcome is kept until it is written, and its job's lease is kept alive meanwhile (the
///   heartbeat extends ``held``), so no rescuer returns a finished job;
/// - a batch that fails on one row's data is split (``BatchSplitter``): the others are written at
///   once, and the bad one is written in its safe form (``JobOutcome/safeForm(problem:)``);
/// - a batch that fails because of the server or the connection is retried whole after a backoff,
///   without waiting for new outcomes.
/// The decisions are ``OutcomeBatchStateMachine``'s; this class runs them.
final class OutcomeWriter: Sendable {
    struct Pending: Sendable {
        let job: ClaimedJob
        let outcome: JobOutcome
    }
    typealias Machine = OutcomeBatchStateMachine<Pending, ContinuousClock>

    private let client: PhylacteryClient
    private let logger: Logger
    private let metrics: QueueMetrics
    private let clock = ContinuousClock()
    private let machine: Mutex<Machine>
    private let spans = Mutex<[UUID: JobSpans]>([:])
    private let wake = WakeSignal()
    private let stopped = OneShot<Void>()
    /// The longest a statement may go unanswered before its connection is closed.
    static let statementTimeout: Duration = .seconds(60)

    init(client: PhylacteryClient, batchSize: Int, flushInterval: Duration, logger: Logger, metrics: QueueMetrics) {
        self.client = client
        self.logger = logger
        self.metrics = metrics
        self.machine = Mutex(Machine(batchSize: batchSize, flushInterval: flushInterval, backoff: .writer))
    }

    /// Hands an outcome over; it is written in the background.
    func submit(_ job: ClaimedJob, _ outcome: JobOutcome, spans: JobSpans? = nil) {
        if let spans { self.spans.withLock { $0[job.id] = spans } }
        let now = self.clock.now
        if self.machine.withLock({ $0.submit(Pending(job: job, outcome: outcome), at: now) }) { self.wake.signal() }
    }

    /// The jobs whose outcome is not written yet: their leases must be kept alive.
    var held: [(id: UUID, token: Int64)] {
        self.machine.withLock { $0.held.map { ($0.job.id, $0.job.token) } }
    }

    /// Writes until cancelled, or until a drain (``drain(within:)``) finished.
    func run() async {
        defer { self.stopped.fulfil(()) }
        while !Task.isCancelled {
            let action = self.machine.withLock { $0.nextAction(at: self.clock.now) }
            switch action {
            case .write(let batch):
                await self.write(batch)
            case .wait(let until):
                await self.wake.wait(timeout: until.map { max(.zero, $0 - self.clock.now) })
            case .finished:
                return
            case .gaveUp(let left):
                self.logger.error("giving up writing job outcomes at shutdown; their leases will expire and the rescuer returns them", metadata: [
                    "jobs": "\(left.count)",
                ])
                for entry in left { self.endSpans(of: entry.payload, refused: false) }
                return
            }
        }
    }

    /// Writes everything still waiting, giving up after `limit` (shutdown: every handler has
    /// reported). Returns once ``run()`` has stopped.
    func drain(within limit: Duration) async {
        let deadline = self.clock.now + limit
        self.machine.withLock { $0.beginDrain(deadline: deadline) }
        self.wake.signal()
        await self.stopped.wait()
    }

    private func write(_ batch: [Machine.Entry]) async {
        let timeout = self.machine.withLock { machine in
            machine.drainDeadline.map { max(.milliseconds(500), $0 - self.clock.now) } ?? Self.statementTimeout
        }
        let report = await BatchSplitter.write(batch) { entries in
            let items = entries.map { entry in
                (job: entry.payload.job, outcome: entry.safe ? entry.payload.outcome.safeForm(problem: entry.problem ?? "refused") : entry.payload.outcome)
            }
            return (entries, try await Self.record(items, client: self.client, timeout: timeout))
        }
        var locked = Set<Int>()
        for (entries, written) in report.written {
            for entry in entries {
                let job = entry.payload.job
                if written.locked.contains(job.id) {
                    locked.insert(entry.number)
                    continue
                }
                if let state = written.settled[job.id] {
                    // Settled under this attempt's token before this write: its own transaction
                    // committed though the answer was lost, or an earlier write of this outcome did.
                    self.metrics.settled(job, state: state)
                    self.logger.info("outcome not written: the attempt was already settled under its own claim (a commit whose answer was lost)", metadata: [
                        "job": "\(job.id)", "kind": "\(job.kind)", "state": "\(state)",
                    ])
                    self.endSpans(of: entry.payload, refused: false)
                    continue
                }
                if written.completionLost.contains(job.id) {
                    self.metrics.finished(job, outcome: "completion_lost")
                    self.logger.warning("the completion the job's own transaction committed is not in the database (lost in a failover); the job runs again", metadata: [
                        "job": "\(job.id)", "kind": "\(job.kind)",
                    ])
                    self.endSpans(of: entry.payload, refused: true)
                    continue
                }
                let refused = !written.applied.contains(job.id)
                self.metrics.recorded(job, entry.payload.outcome, refused: refused)
                if refused {
                    self.logger.warning("outcome refused: the lease had passed to another attempt", metadata: ["job": "\(job.id)", "kind": "\(job.kind)"])
                } else if entry.safe {
                    self.logger.warning("outcome stored in its safe form", metadata: ["job": "\(job.id)", "kind": "\(job.kind)", "problem": "\(entry.problem ?? "")"])
                }
                self.endSpans(of: entry.payload, refused: refused)
            }
        }
        var rejected: [Int: String] = [:]
        for (entry, error) in report.rejected {
            rejected[entry.number] = String(describing: error)
            self.logger.warning(entry.safe ? "job outcome refused even in its safe form; retrying" : "job outcome refused on its data; writing its safe form", metadata: [
                "job": "\(entry.payload.job.id)", "kind": "\(entry.payload.job.kind)", "error": "\(error)",
            ])
        }
        if let error = report.transientError {
            self.logger.warning("writing job outcomes failed; retrying", metadata: ["jobs": "\(report.unwritten.count)", "error": "\(error)"])
        }
        let now = self.clock.now
        self.machine.withLock { machine in
            machine.reported(rejected: rejected, unwritten: Set(report.unwritten.map(\.number)), locked: locked,
                             transient: report.transientError != nil, at: now)
        }
    }

    private func endSpans(of pending: Pending, refused: Bool) {
        if let spans = self.spans.withLock({ $0.removeValue(forKey: pending.job.id) }) {
            spans.end(pending.outcome, refused: refused)
        }
    }
}
