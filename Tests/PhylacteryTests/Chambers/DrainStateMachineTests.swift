import Foundation
@testable import Phylactery
import PhylacteryTestSupport
import Testing

/// Every transition of the ghouls' shutdown, driven by a manual clock: no database, no sleeping.
@Suite struct DrainStateMachineTests {
    typealias Machine = DrainStateMachine<ManualClock>
    let clock = ManualClock()
    let a = UUID(), b = UUID()

    func machine() -> Machine {
        Machine(gracePeriod: .seconds(10), abandonAfter: .seconds(5), flushTimeout: .seconds(3))
    }

    @Test func nothingHappensBeforeShutdown() {
        var drain = machine()
        #expect(drain.tick(at: clock.now, running: [a]) == [])
        #expect(drain.outcomesFlushed() == [])
        #expect(drain.state == .running)
        #expect(drain.deadline == nil)
    }

    @Test func idleShutdownFlushesAtOnce() {
        var drain = machine()
        #expect(drain.shutdownRequested(at: clock.now, running: []) == [.stopClaiming, .flushOutcomes(within: .seconds(3))])
        #expect(drain.state == .flushing)
        #expect(drain.outcomesFlushed() == [.finish])
        #expect(drain.state == .finished)
        // A second request, or late ticks, change nothing.
        #expect(drain.shutdownRequested(at: clock.now, running: [a]) == [])
        #expect(drain.tick(at: clock.now, running: [a]) == [])
    }

    @Test func handlersThatFinishWithinTheGracePeriodAreNotCancelled() {
        var drain = machine()
        #expect(drain.shutdownRequested(at: clock.now, running: [a, b]) == [.stopClaiming])
        #expect(drain.deadline == clock.now.advanced(by: .seconds(10)))
        clock.advance(by: .seconds(4))
        #expect(drain.tick(at: clock.now, running: [b]) == [])
        clock.advance(by: .seconds(5))
        #expect(drain.tick(at: clock.now, running: []) == [.flushOutcomes(within: .seconds(3))])
        #expect(drain.state == .flushing)
        #expect(drain.deadline == nil)
    }

    @Test func theGracePeriodEndsInCancellation() {
        var drain = machine()
        _ = drain.shutdownRequested(at: clock.now, running: [a, b])
        clock.advance(by: .seconds(9))
        #expect(drain.tick(at: clock.now, running: [a, b]) == [])
        clock.advance(by: .seconds(1))
        #expect(drain.tick(at: clock.now, running: [a, b]) == [.cancel([a, b])])
        #expect(drain.state == .cancelling(until: clock.now.advanced(by: .seconds(5))))
        // Cancelled handlers that stop end the drain's wait.
        clock.advance(by: .seconds(1))
        #expect(drain.tick(at: clock.now, running: []) == [.flushOutcomes(within: .seconds(3))])
    }

    @Test func handlersIgnoringCancellationAreAbandoned() {
        var drain = machine()
        _ = drain.shutdownRequested(at: clock.now, running: [a, b])
        clock.advance(by: .seconds(10))
        #expect(drain.tick(at: clock.now, running: [a, b]) == [.cancel([a, b])])
        clock.advance(by: .seconds(2))
        #expect(drain.tick(at: clock.now, running: [a]) == [])
        clock.advance(by: .seconds(3))
        #expect(drain.tick(at: clock.now, running: [a]) == [.abandon([a]), .flushOutcomes(within: .seconds(3))])
        #expect(drain.outcomesFlushed() == [.finish])
    }

    @Test func aLateTickStillGivesCancelledHandlersTheirAbandonAfter() {
        // The driver may wake long after the grace period (a loaded machine): handlers are cancelled
        // then, and still get abandonAfter from that moment to stop.
        var drain = machine()
        _ = drain.shutdownRequested(at: clock.now, running: [a])
        clock.advance(by: .seconds(60))
        #expect(drain.tick(at: clock.now, running: [a]) == [.cancel([a])])
        clock.advance(by: .seconds(60))
        #expect(drain.tick(at: clock.now, running: [a]) == [.abandon([a]), .flushOutcomes(within: .seconds(3))])
    }

    @Test func zeroGraceCancelsAtOnce() {
        var drain = Machine(gracePeriod: .zero, abandonAfter: .seconds(1), flushTimeout: .seconds(1))
        #expect(drain.shutdownRequested(at: clock.now, running: [a]) == [.stopClaiming, .cancel([a])])
    }

    @Test func shutdownIsBoundedWhateverHandlersDo() {
        // The longest drain: grace + abandonAfter, then the flush's own bound.
        var drain = machine()
        let start = clock.now
        var actions = drain.shutdownRequested(at: start, running: [a])
        while drain.state != .flushing {
            clock.advance(by: .milliseconds(500))
            actions += drain.tick(at: clock.now, running: [a])
        }
        #expect(start.duration(to: clock.now) == .seconds(15))
        #expect(actions.contains(.abandon([a])))
    }
}
