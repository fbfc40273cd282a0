import Phylactery
@testable import PhylacteryRuntime
import PhylacteryTestSupport
import Testing

/// Waiting for an external server, driven by a manual clock: bounded, logged once per change, and a
/// wrong password ends it at once.
@Suite struct ReadinessStateMachineTests {
    typealias Machine = ReadinessStateMachine<ManualClock>
    let clock = ManualClock()
    static let backoff = RetryBackoff(initial: .milliseconds(100), multiplier: 2, maximum: .seconds(2), jitter: 0)

    func machine(timeout: Duration = .seconds(30)) -> Machine {
        Machine(timeout: timeout, backoff: Self.backoff, reminderInterval: .seconds(10))
    }

    @Test func readyAtTheFirstProbeLogsNothing() {
        var waiting = machine()
        #expect(waiting.begin(at: clock.now) == .probe)
        #expect(waiting.probed(.ready, at: clock.now, random: 0.5) == .ready(log: nil))
    }

    @Test func refusedThenStartingUpThenReady() {
        var waiting = machine()
        _ = waiting.begin(at: clock.now)
        // Refused: logged once, probed again after 100 ms, 200 ms, 400 ms…
        #expect(waiting.probed(.refused, at: clock.now, random: 0.5) == .probeAgain(at: clock.now.advanced(by: .milliseconds(100)), log: .changed(.refused)))
        clock.advance(by: .milliseconds(100))
        #expect(waiting.probed(.refused, at: clock.now, random: 0.5) == .probeAgain(at: clock.now.advanced(by: .milliseconds(200)), log: nil))
        clock.advance(by: .milliseconds(200))
        #expect(waiting.probed(.refused, at: clock.now, random: 0.5) == .probeAgain(at: clock.now.advanced(by: .milliseconds(400)), log: nil))
        // The server starts: a new state is logged.
        clock.advance(by: .milliseconds(400))
        #expect(waiting.probed(.startingUp, at: clock.now, random: 0.5) == .probeAgain(at: clock.now.advanced(by: .milliseconds(800)), log: .changed(.startingUp)))
        clock.advance(by: .milliseconds(800))
        #expect(waiting.probed(.recovering, at: clock.now, random: 0.5) == .probeAgain(at: clock.now.advanced(by: .milliseconds(1600)), log: .changed(.recovering)))
        clock.advance(by: .milliseconds(1600))
        #expect(waiting.probed(.ready, at: clock.now, random: 0.5) == .ready(log: .readyAfter(.milliseconds(3100))))
    }

    @Test func probesAreCappedAndRemindersComeEveryTenSeconds() {
        var waiting = machine(timeout: .seconds(60))
        _ = waiting.begin(at: clock.now)
        var logs: [Machine.LogEvent] = []
        var probes = 0
        var action = waiting.probed(.refused, at: clock.now, random: 0.5)
        while case .probeAgain(let at, let log) = action {
            if let log { logs.append(log) }
            probes += 1
            #expect(clock.now.duration(to: at) <= .seconds(2), "never more than the backoff's maximum between probes")
            clock.advance(by: clock.now.duration(to: at))
            action = waiting.probed(.refused, at: clock.now, random: 0.5)
        }
        #expect(action == .fail(.timedOut(last: .refused, waited: .seconds(60))))
        // One "changed" line, then a reminder every ten seconds: not a line per probe.
        #expect(logs.first == .changed(.refused))
        #expect(logs.count == 6, "\(logs)")
        #expect(probes > 30, "it kept probing until the deadline (\(probes) probes)")
    }

    @Test func theLastProbeComesAtTheDeadline() {
        var waiting = machine(timeout: .seconds(1))
        _ = waiting.begin(at: clock.now)
        clock.advance(by: .milliseconds(900))
        // The backoff would say 100 ms later; the deadline is 100 ms away too — never later.
        guard case .probeAgain(let at, _) = waiting.probed(.refused, at: clock.now, random: 0.5) else {
            Issue.record("expected another probe")
            return
        }
        #expect(at <= ManualClock.Instant(offset: .seconds(1)))
        clock.advance(by: .milliseconds(100))
        #expect(waiting.probed(.startingUp, at: clock.now, random: 0.5) == .fail(.timedOut(last: .startingUp, waited: .seconds(1))))
    }

    @Test(arguments: [ProbeOutcome.authenticationFailed, .misconfigured])
    func refusalsThatWaitingCannotFixFailAtOnce(_ outcome: ProbeOutcome) {
        var waiting = machine()
        _ = waiting.begin(at: clock.now)
        #expect(waiting.probed(outcome, at: clock.now, random: 0.5) == .fail(.fatal(outcome)))
        #expect(waiting.attempts == 1, "one attempt: no retry storm")
    }

    @Test func aMissingDatabaseIsWaitedFor() {
        var waiting = machine(timeout: .seconds(5))
        _ = waiting.begin(at: clock.now)
        #expect(waiting.probed(.databaseMissing, at: clock.now, random: 0.5) == .probeAgain(at: clock.now.advanced(by: .milliseconds(100)), log: .changed(.databaseMissing)))
        clock.advance(by: .milliseconds(100))
        #expect(waiting.probed(.ready, at: clock.now, random: 0.5) == .ready(log: .readyAfter(.milliseconds(100))))
    }

    @Test func aWrongPasswordAfterWaitingForTheServerStillFailsAtOnce() {
        var waiting = machine()
        _ = waiting.begin(at: clock.now)
        _ = waiting.probed(.refused, at: clock.now, random: 0.5)
        clock.advance(by: .milliseconds(100))
        #expect(waiting.probed(.authenticationFailed, at: clock.now, random: 0.5) == .fail(.fatal(.authenticationFailed)))
    }

    @Test func classification() {
        #expect(ProbeOutcome.classify(sqlState: "57P03", message: "the database system is starting up", connectionFailure: nil) == .startingUp)
        #expect(ProbeOutcome.classify(sqlState: "57P03", message: "the database system is in recovery mode", connectionFailure: nil) == .recovering)
        #expect(ProbeOutcome.classify(sqlState: "57P03", message: "the database system is not yet accepting connections", connectionFailure: nil) == .recovering)
        #expect(ProbeOutcome.classify(sqlState: "57P03", message: "the database system is shutting down", connectionFailure: nil) == .shuttingDown)
        #expect(ProbeOutcome.classify(sqlState: "57P01", message: "terminating connection due to administrator command", connectionFailure: nil) == .shuttingDown)
        #expect(ProbeOutcome.classify(sqlState: "28P01", message: "password authentication failed for user \"app\"", connectionFailure: nil) == .authenticationFailed)
        #expect(ProbeOutcome.classify(sqlState: "28000", message: "no pg_hba.conf entry", connectionFailure: nil) == .authenticationFailed)
        #expect(ProbeOutcome.classify(sqlState: "3D000", message: "database \"x\" does not exist", connectionFailure: nil) == .databaseMissing)
        #expect(ProbeOutcome.classify(sqlState: "53300", message: "sorry, too many clients already", connectionFailure: nil) == .tooManyConnections)
        #expect(ProbeOutcome.classify(sqlState: nil, message: nil, connectionFailure: "connect(descriptor:addr:size:): Connection refused (errno: 111)") == .refused)
        #expect(ProbeOutcome.classify(sqlState: nil, message: nil, connectionFailure: "connect(descriptor:addr:size:): No such file or directory (errno: 2)") == .refused)
        #expect(ProbeOutcome.classify(sqlState: nil, message: nil, connectionFailure: "connectTimeout(10000 ms)") == .unreachable)
        #expect(ProbeOutcome.classify(sqlState: nil, message: nil, connectionFailure: "tls") == .misconfigured)
        #expect(ProbeOutcome.classify(sqlState: "XX000", message: "internal error", connectionFailure: nil) == .other)
        #expect(!ProbeOutcome.refused.isFatal && !ProbeOutcome.startingUp.isFatal && !ProbeOutcome.recovering.isFatal)
    }
}
