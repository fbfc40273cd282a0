@testable import Phylactery
import Testing

/// How the outcome writer tells apart the outcomes its statement did not apply, from the job's row
/// as it is now (``OutcomeWriter/unapplied(_:token:state:claims:)``).
@Suite struct UnappliedOutcomeTests {
    let failed = JobOutcome.failed(message: "the connection was lost while COMMIT was in flight", reason: .error, retryIn: 1, discard: false)

    @Test func anotherClaimMeansTheLeasePassedOn() {
        for state in JobState.allCases {
            #expect(OutcomeWriter.unapplied(.completed(result: nil), token: 3, state: state.rawValue, claims: 4) == .refused)
            #expect(OutcomeWriter.unapplied(.resultAfterTransaction(nil), token: 3, state: state.rawValue, claims: 4) == .refused)
            #expect(OutcomeWriter.unapplied(self.failed, token: 3, state: state.rawValue, claims: 4) == .refused)
        }
    }

    @Test func aRowStillWhereTheAttemptLeftItWasLocked() {
        #expect(OutcomeWriter.unapplied(.completed(result: nil), token: 3, state: "running", claims: 3) == .locked)
        #expect(OutcomeWriter.unapplied(self.failed, token: 3, state: "running", claims: 3) == .locked)
        #expect(OutcomeWriter.unapplied(.released, token: 3, state: "running", claims: 3) == .locked)
        #expect(OutcomeWriter.unapplied(.resultAfterTransaction(nil), token: 3, state: "completed", claims: 3) == .locked)
    }

    @Test func aRowThatMovedOnUnderTheSameClaimWasSettled() {
        // The handler's own transaction committed although its answer was lost: the failure it then
        // reported must not undo the completion, and the job is not run again.
        #expect(OutcomeWriter.unapplied(self.failed, token: 3, state: "completed", claims: 3) == .settled)
        // An earlier write of this very outcome committed although its answer was lost.
        #expect(OutcomeWriter.unapplied(.completed(result: nil), token: 3, state: "completed", claims: 3) == .settled)
        #expect(OutcomeWriter.unapplied(.released, token: 3, state: "available", claims: 3) == .settled)
        #expect(OutcomeWriter.unapplied(self.failed, token: 3, state: "discarded", claims: 3) == .settled)
        #expect(OutcomeWriter.unapplied(.resultAfterTransaction(nil), token: 3, state: "cancelled", claims: 3) == .settled)
    }

    @Test func aCompletionCommittedButStillRunningWasLost() {
        #expect(OutcomeWriter.unapplied(.resultAfterTransaction(nil), token: 3, state: "running", claims: 3) == .completionLost)
    }
}
