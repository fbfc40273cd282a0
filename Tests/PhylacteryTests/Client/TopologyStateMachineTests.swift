@testable import Phylactery
import PhylacteryTestSupport
import Testing

/// The client's view of a primary and its standbys, driven by a manual clock: no database, no sleeping.
@Suite struct TopologyStateMachineTests {
    typealias Machine = TopologyStateMachine<ManualClock>
    let clock = ManualClock()

    static let primary = Machine.Observation(inRecovery: false, readOnly: false, timeline: 1)
    static func standby(lag: Duration?) -> Machine.Observation {
        Machine.Observation(inRecovery: true, readOnly: true, replayLag: lag)
    }

    func machine(hosts: Int = 2, target: DatabaseURL.TargetSessionAttributes = .readWrite) -> Machine {
        Machine(settings: .init(
            hostCount: hosts, target: target, maximumReplicaLag: .seconds(5),
            checkInterval: .seconds(1), failoverTimeout: .seconds(30)))
    }

    /// A machine whose first probes found host 0 primary and host 1 a standby with `lag`.
    func started(lag: Duration? = .zero) -> Machine {
        var topology = machine()
        #expect(topology.start(at: clock.now) == [.probe(0), .probe(1)])
        #expect(topology.probeSucceeded(0, Self.primary, at: clock.now) == [.primaryChanged(from: nil, to: 0)])
        _ = topology.probeSucceeded(1, Self.standby(lag: lag), at: clock.now)
        return topology
    }

    func deadline(_ after: Duration = .seconds(30)) -> ManualClock.Instant { clock.now.advanced(by: after) }

    @Test func writesGoToThePrimaryAndReadsToAStandbyWithinTheBound() {
        var topology = started()
        #expect(topology.primary == 0)
        #expect(topology.route(.write, deadline: deadline(), at: clock.now).0 == .host(0))
        #expect(topology.route(.read, deadline: deadline(), at: clock.now).0 == .host(1))
    }

    @Test func aLaggingStandbyIsNotReadFrom() {
        var topology = started(lag: .seconds(6))
        #expect(topology.readableReplicas(at: clock.now) == [])
        #expect(topology.route(.read, deadline: deadline(), at: clock.now).0 == .host(0), "reads fall back to the primary")
        // Back within the bound at the next probe.
        clock.advance(by: .seconds(1))
        _ = topology.tick(at: clock.now)
        _ = topology.probeSucceeded(1, Self.standby(lag: .milliseconds(200)), at: clock.now)
        #expect(topology.route(.read, deadline: deadline(), at: clock.now).0 == .host(1))
    }

    @Test func aStandbyNotStreamingIsNotReadFrom() {
        var topology = started(lag: nil)
        #expect(topology.route(.read, deadline: deadline(), at: clock.now).0 == .host(0))
    }

    @Test func anObservationAgesBetweenProbes() {
        var topology = started(lag: .seconds(3))
        clock.advance(by: .milliseconds(1900))
        #expect(topology.readableReplicas(at: clock.now) == [1], "3 s + 1.9 s is within 5 s")
        clock.advance(by: .milliseconds(200))
        #expect(topology.readableReplicas(at: clock.now) == [], "a standby whose probes stop answering is assumed to fall behind")
        #expect(topology.pick(.read, at: clock.now) == 0)
    }

    @Test func readsAreSpreadOverEveryStandbyWithinTheBound() {
        var topology = machine(hosts: 3)
        _ = topology.start(at: clock.now)
        _ = topology.probeSucceeded(0, Self.primary, at: clock.now)
        _ = topology.probeSucceeded(1, Self.standby(lag: .zero), at: clock.now)
        _ = topology.probeSucceeded(2, Self.standby(lag: .seconds(1)), at: clock.now)
        let picks = (0..<4).map { _ in topology.pick(.read, at: clock.now) }
        #expect(Set(picks) == [1, 2])
        #expect(!picks.contains(0))
    }

    @Test func everyHostIsProbedEveryIntervalAndNeverTwiceAtOnce() {
        var topology = started()
        #expect(topology.tick(at: clock.now) == [], "nothing is due yet")
        #expect(topology.nextTick() == clock.now.advanced(by: .seconds(1)))
        clock.advance(by: .seconds(1))
        #expect(topology.tick(at: clock.now) == [.probe(0), .probe(1)])
        #expect(topology.tick(at: clock.now) == [], "probes in flight are not started again")
        // A failure reported during a probe asks for another one after it.
        #expect(!topology.connectionFailed(1, at: clock.now).contains(.probe(1)))
        #expect(topology.probeSucceeded(1, Self.standby(lag: .zero), at: clock.now).contains(.probe(1)))
    }

    @Test func losingThePrimaryMakesWritesWaitUntilAStandbyIsPromoted() {
        var topology = started()
        // A transaction's connection breaks: the primary is suspect at once and every host is probed.
        let failed = topology.connectionFailed(0, at: clock.now)
        #expect(failed.contains(.abandon(host: 0)))
        #expect(failed.contains(.primaryChanged(from: 0, to: nil)))
        #expect(failed.contains(.probe(0)) && failed.contains(.probe(1)))
        #expect(topology.primary == nil)
        // New work waits.
        let (route, actions) = topology.route(.write, deadline: deadline(), at: clock.now)
        #expect(actions == [])
        guard case .wait(let waiter) = route else { Issue.record("expected to wait, got \(route)"); return }
        #expect(topology.waitingRequests == 1)
        // The primary refuses connections; the standby is not promoted yet.
        #expect(topology.probeFailed(0, reason: "connection refused", at: clock.now) == [])
        _ = topology.probeSucceeded(1, Self.standby(lag: nil), at: clock.now)
        // Without a primary the hosts are probed four times as often.
        #expect(topology.nextTick() == clock.now.advanced(by: .milliseconds(250)))
        clock.advance(by: .milliseconds(250))
        #expect(topology.tick(at: clock.now) == [.probe(0), .probe(1)])
        _ = topology.probeFailed(0, reason: "connection refused", at: clock.now)
        // Promoted: on a newer timeline.
        let promoted = topology.probeSucceeded(1, .init(inRecovery: false, readOnly: false, timeline: 2), at: clock.now)
        #expect(promoted == [.primaryChanged(from: nil, to: 1), .resume(waiter: waiter, host: 1)])
        #expect(topology.waitingRequests == 0)
        #expect(topology.route(.write, deadline: deadline(), at: clock.now).0 == .host(1))
    }

    @Test func aWaiterTimesOutAfterTheFailoverTimeout() {
        var topology = machine()
        _ = topology.start(at: clock.now)
        _ = topology.probeFailed(0, reason: "refused", at: clock.now)
        _ = topology.probeSucceeded(1, Self.standby(lag: nil), at: clock.now)
        let (route, _) = topology.route(.write, deadline: deadline(.seconds(30)), at: clock.now)
        guard case .wait(let waiter) = route else { Issue.record("expected to wait"); return }
        clock.advance(by: .milliseconds(29_900))
        #expect(!topology.tick(at: clock.now).contains(.timeOut(waiter: waiter)))
        clock.advance(by: .milliseconds(100))
        #expect(topology.tick(at: clock.now).contains(.timeOut(waiter: waiter)))
        #expect(topology.waitingRequests == 0)
        // A deadline already past times out at once.
        let (late, lateActions) = topology.route(.write, deadline: clock.now, at: clock.now)
        guard case .wait(let id) = late else { Issue.record("expected to wait"); return }
        #expect(lateActions == [.timeOut(waiter: id)])
    }

    @Test func aReadWaiterIsServedByTheFirstStandbyThatCatchesUp() {
        var topology = machine()
        _ = topology.start(at: clock.now)
        _ = topology.probeFailed(0, reason: "refused", at: clock.now)
        _ = topology.probeSucceeded(1, Self.standby(lag: .seconds(60)), at: clock.now)
        let (route, _) = topology.route(.read, deadline: deadline(), at: clock.now)
        guard case .wait(let waiter) = route else { Issue.record("expected to wait"); return }
        #expect(topology.probeSucceeded(1, Self.standby(lag: .zero), at: clock.now) == [.resume(waiter: waiter, host: 1)])
    }

    @Test func aCancelledWaiterIsForgotten() {
        var topology = machine()
        _ = topology.start(at: clock.now)
        let (route, _) = topology.route(.write, deadline: deadline(), at: clock.now)
        guard case .wait(let waiter) = route else { Issue.record("expected to wait"); return }
        topology.cancel(waiter: waiter)
        #expect(topology.probeSucceeded(0, Self.primary, at: clock.now) == [.primaryChanged(from: nil, to: 0)])
    }

    @Test func aWriteRefusedAsReadOnlyDemotesThePrimaryUntilProbed() {
        var topology = started()
        let actions = topology.connectionFailed(0, refusedWrite: true, at: clock.now)
        #expect(actions.contains(.primaryChanged(from: 0, to: nil)))
        #expect(topology.primary == nil)
        // It was demoted (rejoined as a standby): it stays out.
        _ = topology.probeSucceeded(0, Self.standby(lag: .zero), at: clock.now)
        #expect(topology.primary == nil)
        #expect(topology.pick(.read, at: clock.now) == 0, "a demoted host within the bound serves reads")
    }

    @Test func aTerminatedSessionOnAHealthyPrimaryCostsOneProbe() {
        var topology = started()
        _ = topology.connectionFailed(0, at: clock.now)
        #expect(topology.probeSucceeded(0, Self.primary, at: clock.now) == [.primaryChanged(from: nil, to: 0)])
        #expect(topology.primary == 0)
    }

    @Test func theNewestTimelineWinsWhenTwoHostsTakeWrites() {
        var topology = started()
        // The standby is promoted while the old primary still runs (or restarted on its own).
        let actions = topology.probeSucceeded(1, .init(inRecovery: false, readOnly: false, timeline: 2), at: clock.now)
        #expect(actions.contains(.primaryChanged(from: 0, to: 1)))
        #expect(actions.contains(.severalPrimaries([0, 1])))
        #expect(actions.contains(.abandon(host: 0)))
        // Once reported, the split is not reported again at every probe.
        #expect(topology.probeSucceeded(0, Self.primary, at: clock.now) == [])
        #expect(topology.primary == 1)
    }

    @Test func equalTimelinesKeepTheCurrentPrimary() {
        var topology = machine()
        _ = topology.start(at: clock.now)
        _ = topology.probeSucceeded(1, Self.primary, at: clock.now)
        _ = topology.probeSucceeded(0, Self.primary, at: clock.now)
        #expect(topology.primary == 1, "no flapping back to the first host")
    }

    @Test func readWriteSkipsAServerWithReadOnlySessionsButPrimaryTakesIt() {
        let readOnlyPrimary = Machine.Observation(inRecovery: false, readOnly: true, timeline: 1)
        var readWrite = machine(hosts: 1, target: .readWrite)
        _ = readWrite.start(at: clock.now)
        _ = readWrite.probeSucceeded(0, readOnlyPrimary, at: clock.now)
        #expect(readWrite.primary == nil)
        var primary = machine(hosts: 1, target: .primary)
        _ = primary.start(at: clock.now)
        _ = primary.probeSucceeded(0, readOnlyPrimary, at: clock.now)
        #expect(primary.primary == 0)
    }

    @Test func anyTakesTheFirstHostThatAnswers() {
        var topology = machine(target: .any)
        _ = topology.start(at: clock.now)
        _ = topology.probeFailed(0, reason: "refused", at: clock.now)
        _ = topology.probeSucceeded(1, Self.standby(lag: .zero), at: clock.now)
        #expect(topology.primary == 1)
        _ = topology.probeSucceeded(0, Self.primary, at: clock.now)
        #expect(topology.primary == 1, "it stays where it is while that host answers")
    }
}
