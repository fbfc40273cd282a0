import Phylactery
@testable import PhylacteryRuntime
import PhylacteryTestSupport
import Testing

/// Every transition of the embedded server's supervision, driven by a manual clock: no server, no sleeping.
@Suite struct RestartStateMachineTests {
    typealias Machine = RestartStateMachine<ManualClock>
    let clock = ManualClock()
    /// 1 s doubling to 8 s, no jitter: delays are exact.
    static let backoff = RetryBackoff(initial: .seconds(1), multiplier: 2, maximum: .seconds(8), jitter: 0)

    func machine(maximumStartFailures: Int = 3) -> Machine {
        Machine(backoff: Self.backoff, maximumStartFailures: maximumStartFailures, stablePeriod: .seconds(60))
    }

    @Test func startsOnceAndRunsUntilAskedToStop() {
        var supervision = machine()
        #expect(supervision.begin() == [.start])
        #expect(supervision.begin() == [], "a second begin does nothing")
        #expect(supervision.ready(at: clock.now) == [])
        #expect(supervision.state == .running(since: clock.now))
        #expect(supervision.stopRequested() == [.stop])
        #expect(supervision.state == .stopping)
        #expect(supervision.exited(at: clock.now, requested: true, random: 0.5) == [.finish])
        #expect(supervision.state == .finished)
        #expect(supervision.restarts == 0)
    }

    @Test func aServerThatDiesIsRestartedWithGrowingDelays() {
        var supervision = machine()
        _ = supervision.begin()
        _ = supervision.ready(at: clock.now)
        // Killed: restart after the first delay.
        clock.advance(by: .seconds(5))
        #expect(supervision.exited(at: clock.now, requested: false, random: 0.5) == [.wait(until: clock.now.advanced(by: .seconds(1)))])
        // Too early: keep waiting.
        #expect(supervision.delayElapsed(at: clock.now) == [.wait(until: clock.now.advanced(by: .seconds(1)))])
        clock.advance(by: .seconds(1))
        #expect(supervision.delayElapsed(at: clock.now) == [.start])
        _ = supervision.ready(at: clock.now)
        // Dies again at once: the delay doubles.
        #expect(supervision.exited(at: clock.now, requested: false, random: 0.5) == [.wait(until: clock.now.advanced(by: .seconds(2)))])
        clock.advance(by: .seconds(2))
        _ = supervision.delayElapsed(at: clock.now)
        _ = supervision.ready(at: clock.now)
        #expect(supervision.exited(at: clock.now, requested: false, random: 0.5) == [.wait(until: clock.now.advanced(by: .seconds(4)))])
        clock.advance(by: .seconds(4))
        _ = supervision.delayElapsed(at: clock.now)
        _ = supervision.ready(at: clock.now)
        #expect(supervision.exited(at: clock.now, requested: false, random: 0.5) == [.wait(until: clock.now.advanced(by: .seconds(8)))])
        clock.advance(by: .seconds(8))
        _ = supervision.delayElapsed(at: clock.now)
        _ = supervision.ready(at: clock.now)
        // Capped at the maximum.
        #expect(supervision.exited(at: clock.now, requested: false, random: 0.5) == [.wait(until: clock.now.advanced(by: .seconds(8)))])
        #expect(supervision.restarts == 5)
    }

    @Test func aServerThatStayedUpRestartsAfterTheFirstDelayAgain() {
        var supervision = machine()
        _ = supervision.begin()
        _ = supervision.ready(at: clock.now)
        _ = supervision.exited(at: clock.now, requested: false, random: 0.5)
        clock.advance(by: .seconds(1))
        _ = supervision.delayElapsed(at: clock.now)
        _ = supervision.ready(at: clock.now)
        #expect(supervision.restartsInARow == 1)
        // Up for longer than the stable period, then killed: back to 1 s, not 2 s.
        clock.advance(by: .seconds(61))
        #expect(supervision.exited(at: clock.now, requested: false, random: 0.5) == [.wait(until: clock.now.advanced(by: .seconds(1)))])
    }

    @Test func jitterSpreadsTheDelay() {
        let jittered = RetryBackoff(initial: .seconds(10), multiplier: 2, maximum: .seconds(60), jitter: 0.2)
        var low = Machine(backoff: jittered, maximumStartFailures: 3), high = Machine(backoff: jittered, maximumStartFailures: 3)
        _ = low.begin()
        _ = low.ready(at: clock.now)
        _ = high.begin()
        _ = high.ready(at: clock.now)
        #expect(low.exited(at: clock.now, requested: false, random: 0) == [.wait(until: clock.now.advanced(by: .seconds(8)))])
        #expect(high.exited(at: clock.now, requested: false, random: 1) == [.wait(until: clock.now.advanced(by: .seconds(12)))])
    }

    @Test func givesUpAfterTooManyFailedStartsInARow() {
        var supervision = machine(maximumStartFailures: 3)
        _ = supervision.begin()
        #expect(supervision.startFailed(at: clock.now, random: 0.5) == [.wait(until: clock.now.advanced(by: .seconds(1)))])
        clock.advance(by: .seconds(1))
        #expect(supervision.delayElapsed(at: clock.now) == [.start])
        #expect(supervision.startFailed(at: clock.now, random: 0.5) == [.wait(until: clock.now.advanced(by: .seconds(2)))])
        clock.advance(by: .seconds(2))
        _ = supervision.delayElapsed(at: clock.now)
        #expect(supervision.startFailed(at: clock.now, random: 0.5) == [.giveUp(failures: 3)])
        #expect(supervision.state == .failed)
        #expect(supervision.delayElapsed(at: clock.now) == [])
    }

    @Test func aSuccessfulStartResetsTheFailureCount() {
        var supervision = machine(maximumStartFailures: 2)
        _ = supervision.begin()
        _ = supervision.startFailed(at: clock.now, random: 0.5)
        clock.advance(by: .seconds(1))
        _ = supervision.delayElapsed(at: clock.now)
        _ = supervision.ready(at: clock.now)
        #expect(supervision.consecutiveStartFailures == 0)
        _ = supervision.exited(at: clock.now, requested: false, random: 0.5)
        clock.advance(by: .seconds(10))
        _ = supervision.delayElapsed(at: clock.now)
        // One failure after a good run is not the second in a row.
        #expect(supervision.startFailed(at: clock.now, random: 0.5) != [.giveUp(failures: 2)])
    }

    @Test func stoppingWhileWaitingToRestartFinishesAtOnce() {
        var supervision = machine()
        _ = supervision.begin()
        _ = supervision.ready(at: clock.now)
        _ = supervision.exited(at: clock.now, requested: false, random: 0.5)
        #expect(supervision.stopRequested() == [.finish])
        #expect(supervision.state == .finished)
        #expect(supervision.delayElapsed(at: clock.now.advanced(by: .seconds(5))) == [], "no start after the stop")
    }

    @Test func stoppingDuringAStartStopsTheServerOnceItIsUp() {
        var supervision = machine()
        _ = supervision.begin()
        #expect(supervision.stopRequested() == [.stop])
        // The start finishes anyway: stop it.
        #expect(supervision.ready(at: clock.now) == [.stop])
        #expect(supervision.exited(at: clock.now, requested: true, random: 0.5) == [.finish])
    }

    @Test func stoppingDuringAStartThatFailsFinishes() {
        var supervision = machine()
        _ = supervision.begin()
        _ = supervision.stopRequested()
        #expect(supervision.startFailed(at: clock.now, random: 0.5) == [.finish])
        #expect(supervision.state == .finished)
    }

    @Test func anExitWhileStoppingIsTheEnd() {
        var supervision = machine()
        _ = supervision.begin()
        _ = supervision.ready(at: clock.now)
        _ = supervision.stopRequested()
        // Even if it looks unrequested (it died during the fast shutdown), no restart.
        #expect(supervision.exited(at: clock.now, requested: false, random: 0.5) == [.finish])
    }
}
