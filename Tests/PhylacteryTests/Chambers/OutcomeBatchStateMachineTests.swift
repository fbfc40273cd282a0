@testable import Phylactery
import PhylacteryTestSupport
import Testing

/// The outcome writer's batching, retry and isolation rules, driven by a manual clock.
@Suite struct OutcomeBatchStateMachineTests {
    typealias Machine = OutcomeBatchStateMachine<String, ManualClock>
    let clock = ManualClock()

    func machine(batchSize: Int = 3) -> Machine {
        var machine = Machine(batchSize: batchSize, flushInterval: .milliseconds(10),
                              backoff: RetryBackoff(initial: .milliseconds(100), multiplier: 2, maximum: .seconds(1), jitter: 0))
        machine.random = { 0.5 }
        return machine
    }

    func written(_ action: Machine.Action) -> [String]? {
        if case .write(let batch) = action { return batch.map(\.payload) }
        return nil
    }

    func numbers(_ action: Machine.Action) -> [Int] {
        if case .write(let batch) = action { return batch.map(\.number) }
        return []
    }

    @Test func waitsForNothingWhenEmpty() {
        var writer = machine()
        guard case .wait(until: nil) = writer.nextAction(at: clock.now) else { Issue.record("expected an open wait"); return }
    }

    @Test func aPartialBatchWaitsTheFlushIntervalAFullOneGoesAtOnce() {
        var writer = machine()
        let first = writer.submit("a", at: clock.now), second = writer.submit("b", at: clock.now)
        #expect(first && !second)                              // the first wakes the writer
        guard case .wait(let until) = writer.nextAction(at: clock.now) else { Issue.record("expected a wait"); return }
        #expect(until == clock.now.advanced(by: .milliseconds(10)))
        let third = writer.submit("c", at: clock.now)
        #expect(third)                                          // a full batch wakes it again
        #expect(written(writer.nextAction(at: clock.now)) == ["a", "b", "c"])
        #expect(writer.held == ["a", "b", "c"])                // in flight: still held
        writer.reported(at: clock.now)
        #expect(writer.held.isEmpty)
    }

    @Test func aTransientFailureRetriesTheWholeBatchAfterABackoffWithoutNewOutcomes() {
        var writer = machine()
        for name in ["a", "b", "c"] { _ = writer.submit(name, at: clock.now) }
        let first = writer.nextAction(at: clock.now)
        writer.reported(unwritten: Set(numbers(first)), transient: true, at: clock.now)
        #expect(writer.held == ["a", "b", "c"])
        guard case .wait(let until) = writer.nextAction(at: clock.now) else { Issue.record("expected a backoff"); return }
        #expect(until == clock.now.advanced(by: .milliseconds(100)))
        clock.advance(by: .milliseconds(100))
        #expect(written(writer.nextAction(at: clock.now)) == ["a", "b", "c"])
        // A second failure in a row waits longer.
        writer.reported(unwritten: [1, 2, 3], transient: true, at: clock.now)
        guard case .wait(let later) = writer.nextAction(at: clock.now) else { Issue.record("expected a backoff"); return }
        #expect(later == clock.now.advanced(by: .milliseconds(200)))
    }

    @Test func aRefusedOutcomeIsTriedAloneInItsSafeFormThenAsReportedAfterABackoff() {
        var writer = machine()
        for name in ["a", "bad", "c"] { _ = writer.submit(name, at: clock.now) }
        _ = writer.nextAction(at: clock.now)
        // The split write stored a and c; bad failed alone.
        writer.reported(rejected: [2: "22P05"], at: clock.now)
        #expect(writer.held == ["bad"])
        guard case .write(let retry) = writer.nextAction(at: clock.now) else { Issue.record("expected the safe form at once"); return }
        #expect(retry.map(\.payload) == ["bad"])
        #expect(retry[0].safe && retry[0].problem == "22P05")
        // New outcomes are not held back by it.
        writer.reported(rejected: [2: "23514"], at: clock.now)
        let wakes = writer.submit("d", at: clock.now)
        #expect(wakes, "a fresh outcome wakes a writer that waits for a stuck one")
        clock.advance(by: .milliseconds(10))
        #expect(written(writer.nextAction(at: clock.now)) == ["d"])
        writer.reported(at: clock.now)
        guard case .wait(let until) = writer.nextAction(at: clock.now) else { Issue.record("expected the stuck one to wait"); return }
        #expect(until == clock.now.advanced(by: .milliseconds(190)))   // second failure: 200 ms after it
        clock.advance(by: .milliseconds(190))
        guard case .write(let third) = writer.nextAction(at: clock.now) else { Issue.record("expected the retry"); return }
        #expect(third.map(\.payload) == ["bad"])
        #expect(!third[0].safe, "after a backoff the outcome is tried as reported first")
        writer.reported(at: clock.now)
        #expect(writer.held.isEmpty)
    }

    @Test func lockedRowsAreRetriedAloneLater() {
        var writer = machine()
        for name in ["a", "b"] { _ = writer.submit(name, at: clock.now) }
        clock.advance(by: .milliseconds(10))
        _ = writer.nextAction(at: clock.now)
        writer.reported(locked: [2], at: clock.now)
        #expect(writer.held == ["b"])
        guard case .wait = writer.nextAction(at: clock.now) else { Issue.record("expected a backoff"); return }
        clock.advance(by: .milliseconds(100))
        #expect(written(writer.nextAction(at: clock.now)) == ["b"])
    }

    @Test func drainingWritesPartialBatchesAtOnceAndGivesUpAtTheDeadline() {
        var writer = machine(batchSize: 10)
        _ = writer.submit("a", at: clock.now)
        writer.beginDrain(deadline: clock.now.advanced(by: .seconds(1)))
        #expect(written(writer.nextAction(at: clock.now)) == ["a"])
        writer.reported(unwritten: [1], transient: true, at: clock.now)
        clock.advance(by: .milliseconds(100))
        _ = writer.nextAction(at: clock.now)
        writer.reported(unwritten: [1], transient: true, at: clock.now)
        clock.advance(by: .seconds(1))
        guard case .gaveUp(let left) = writer.nextAction(at: clock.now) else { Issue.record("expected to give up"); return }
        #expect(left.map(\.payload) == ["a"])
        guard case .finished = writer.nextAction(at: clock.now) else { Issue.record("expected the end"); return }
    }

    @Test func aBackoffNeverWaitsPastTheDrainDeadline() {
        var writer = Machine(batchSize: 1, flushInterval: .zero, backoff: RetryBackoff(initial: .seconds(60), maximum: .seconds(60), jitter: 0))
        _ = writer.submit("a", at: clock.now)
        _ = writer.nextAction(at: clock.now)
        writer.reported(unwritten: [1], transient: true, at: clock.now)
        writer.beginDrain(deadline: clock.now.advanced(by: .seconds(2)))
        guard case .wait(let until) = writer.nextAction(at: clock.now) else { Issue.record("expected a wait"); return }
        #expect(until == clock.now.advanced(by: .seconds(2)))
    }
}
