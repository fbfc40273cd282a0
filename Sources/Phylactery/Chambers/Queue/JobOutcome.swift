/// Why an attempt did not simply complete: the `reason` of each entry in a job's error list.
public enum JobFailureReason: String, Sendable, Hashable, Codable, CaseIterable {
    /// The handler threw.
    case error
    /// The worker holding the lease stopped heartbeating (it died or stalled); the rescuer returned the job.
    case leaseExpired = "lease_expired"
    /// No handler of this process knows the kind (another process may).
    case unknownKind = "unknown_kind"
    /// The stored arguments no longer decode as the kind's type.
    case undecodable
    /// Cancelled on request while it ran.
    case cancelled
    /// The handler gave up with `JobControl.discard`.
    case discarded
    /// Going back to waiting would collide with a waiting duplicate (a `.whileWaiting` unique key),
    /// which does the same work; this one was discarded.
    case superseded
    /// The attempt's outcome could not be stored as reported (its result or error text was refused
    /// by the server); it was stored in a safe form and this entry says what was lost.
    case unstorableOutcome = "unstorable_outcome"
}

/// How one attempt ended, as the worker reports it to the ``OutcomeWriter``.
enum JobOutcome: Sendable {
    /// Done. `result` is the handler's encoded result; `note` says why a result was not kept.
    case completed(result: RawJSONB?, note: String? = nil)
    /// The handler completed the job inside its own transaction (``JobContext/transaction(file:line:_:)``)
    /// and returned `result` afterwards; only the result is left to write.
    case resultAfterTransaction(RawJSONB?, note: String? = nil)
    /// Failed: retried after `retryIn` seconds unless the attempts are used up, or ended at once
    /// when `discard` (as `cancelled` for ``JobFailureReason/cancelled``, else `discarded`).
    case failed(message: String, reason: JobFailureReason, retryIn: Double, discard: Bool)
    /// Put back until `after` seconds from now without counting the attempt.
    case snoozed(after: Double)
    /// Given back untouched (shutdown): the attempt does not count.
    case released

    /// The outcome written instead when this one is refused on its data: the result dropped, or the
    /// message replaced, with `problem` recorded as an ``JobFailureReason/unstorableOutcome`` entry.
    func safeForm(problem: String) -> JobOutcome {
        let note = StorableText.sanitized("the outcome could not be stored as reported: \(problem)")
        switch self {
        case .completed:
            return .completed(result: nil, note: note)
        case .resultAfterTransaction:
            return .resultAfterTransaction(nil, note: note)
        case .failed(_, _, let retryIn, let discard):
            return .failed(message: note, reason: .unstorableOutcome, retryIn: retryIn, discard: discard)
        case .snoozed, .released:
            return self
        }
    }

}
