/// The outcome writer's decisions, as a value type: which outcomes to write together and when, and
/// what happens after a write. Events in (an outcome submitted, a write's report, the time), actions
/// out (write these, wait until then, done). No I/O and no sleeping, so every rule is unit-tested
/// with instants of the tests' own clock.
///
/// - Outcomes wait at most `flushInterval` for a batch to fill (`batchSize`).
/// - A write that fails transiently (the server or the connection) puts its outcomes back, in order,
///   and the writer waits a backoff before trying them again: it never waits for new outcomes to
///   arrive before retrying.
/// - An outcome refused on its own data (the writer isolates it, see ``BatchSplitter``) is tried at
///   once in its safe form (``JobOutcome/safeForm(problem:)``). If that is refused too, the row and
///   not the value is the problem (a constraint the table gained): after a growing backoff the
///   outcome is tried as reported, then in its safe form, and so on — always alone, so it cannot
///   fail its neighbours, and as reported first, so nothing is lost once the row takes it.
/// - An outcome whose row was locked (a foreign transaction holds it) is tried again after a backoff.
/// - Draining (shutdown) writes without waiting for batches to fill and gives up at a deadline.
struct OutcomeBatchStateMachine<Payload, C: Clock> where C.Duration == Duration {
    struct Entry {
        /// The entry's number, unique in this machine: how reports name it.
        let number: Int
        var payload: Payload
        let submitted: C.Instant
        /// Failed writes of this outcome on its own (data refusals, locked rows).
        var failures = 0
        /// Write the safe form: the outcome as reported was refused on its data.
        var safe = false
        /// Why it was last refused, for the safe form's note.
        var problem: String?
        var notBefore: C.Instant?
    }

    enum Action {
        /// Write these outcomes, as one batch.
        case write([Entry])
        /// Nothing to write before `until` (`nil`: until an outcome is submitted).
        case wait(until: C.Instant?)
        /// Draining, and everything is written.
        case finished
        /// Draining, and the deadline passed with these outcomes unwritten.
        case gaveUp([Entry])
    }

    let batchSize: Int
    let flushInterval: Duration
    let backoff: RetryBackoff
    /// A number in 0…1 for the backoff's jitter.
    var random: @Sendable () -> Double = { Double.random(in: 0...1) }

    /// Waiting outcomes, oldest first.
    private(set) var queue: [Entry] = []
    /// The batch being written.
    private(set) var inFlight: [Entry] = []
    private var submitted = 0
    private var transientFailures = 0
    private var resumeAt: C.Instant?
    private(set) var drainDeadline: C.Instant?

    init(batchSize: Int, flushInterval: Duration, backoff: RetryBackoff) {
        self.batchSize = max(1, batchSize)
        self.flushInterval = flushInterval
        self.backoff = backoff
    }

    /// Every outcome not written yet (waiting or being written): their jobs' leases must be kept.
    var held: [Payload] { (self.inFlight + self.queue).map(\.payload) }

    var isDraining: Bool { self.drainDeadline != nil }

    /// Adds an outcome; returns whether the writer should be woken (its wait may end sooner now:
    /// the first fresh outcome starts the flush interval, a full batch ends it).
    mutating func submit(_ payload: Payload, at now: C.Instant) -> Bool {
        let first = !self.queue.contains { $0.failures == 0 && !$0.safe }
        self.submitted += 1
        self.queue.append(Entry(number: self.submitted, payload: payload, submitted: now))
        return self.inFlight.isEmpty && (first || self.queue.count == self.batchSize)
    }

    /// Starts draining: no more waiting for batches to fill; give up at `deadline`.
    mutating func beginDrain(deadline: C.Instant) {
        self.drainDeadline = deadline
    }

    /// What the writer does next.
    mutating func nextAction(at now: C.Instant) -> Action {
        precondition(self.inFlight.isEmpty, "the previous write was not reported")
        if let deadline = self.drainDeadline {
            if self.queue.isEmpty { return .finished }
            if now >= deadline {
                defer { self.queue.removeAll() }
                return .gaveUp(self.queue)
            }
        }
        if let resumeAt = self.resumeAt, now < resumeAt { return .wait(until: self.bounded(resumeAt)) }
        guard let first = self.queue.firstIndex(where: { $0.notBefore.map { $0 <= now } ?? true }) else {
            return .wait(until: self.queue.compactMap(\.notBefore).min().map(self.bounded))
        }
        // An outcome that failed before goes alone, so it cannot fail its neighbours again.
        if self.queue[first].failures > 0 || self.queue[first].safe {
            self.inFlight = [self.queue.remove(at: first)]
            return .write(self.inFlight)
        }
        var picked: [Int] = []
        for index in self.queue.indices where picked.count < self.batchSize {
            let entry = self.queue[index]
            if entry.failures == 0, !entry.safe, entry.notBefore.map({ $0 <= now }) ?? true { picked.append(index) }
        }
        if picked.count < self.batchSize, !self.isDraining {
            let due = self.queue[picked[0]].submitted.advanced(by: self.flushInterval)
            if now < due { return .wait(until: due) }
        }
        self.inFlight = picked.map { self.queue[$0] }
        for index in picked.reversed() { self.queue.remove(at: index) }
        return .write(self.inFlight)
    }

    /// How the batch's write went (see ``BatchSplitter``): `rejected` failed alone on their data
    /// (with the problem), `unwritten` were not tried because a `transient` failure stopped the
    /// write, `locked` were not written because their rows were locked; the rest are written.
    mutating func reported(
        rejected: [Int: String] = [:], unwritten: Set<Int> = [], locked: Set<Int> = [], transient: Bool = false, at now: C.Instant
    ) {
        var back: [Entry] = []
        for var entry in self.inFlight {
            if let problem = rejected[entry.number] {
                entry.failures += 1
                if entry.safe {
                    // Refused in both forms: the row, not the value, is the problem (a constraint
                    // the table gained, say). Wait, then try the outcome as reported again.
                    entry.safe = false
                    entry.notBefore = self.afterBackoff(entry.failures, from: now)
                } else {
                    entry.safe = true
                    entry.problem = problem
                    entry.notBefore = nil
                }
                back.append(entry)
            } else if unwritten.contains(entry.number) {
                back.append(entry)
            } else if locked.contains(entry.number) {
                entry.failures += 1
                entry.notBefore = self.afterBackoff(entry.failures, from: now)
                back.append(entry)
            }
        }
        self.inFlight = []
        self.queue.insert(contentsOf: back, at: 0)
        if transient {
            self.transientFailures += 1
            self.resumeAt = self.afterBackoff(self.transientFailures, from: now)
        } else {
            self.transientFailures = 0
            self.resumeAt = nil
        }
    }

    private func afterBackoff(_ failures: Int, from now: C.Instant) -> C.Instant {
        now.advanced(by: self.backoff.duration(afterAttempt: failures, random: self.random()))
    }

    private func bounded(_ instant: C.Instant) -> C.Instant {
        guard let deadline = self.drainDeadline else { return instant }
        return min(instant, deadline)
    }
}
