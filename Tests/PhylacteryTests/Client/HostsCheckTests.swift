@testable import Phylactery
import Testing

/// The health report's `hosts` verdict from what each host answered (no database: the findings are
/// given; `ReadRoutingTests` asks a real primary and standby).
@Suite struct HostsCheckTests {
    typealias Observation = TopologyStateMachine<ContinuousClock>.Observation
    typealias Finding = PhylacteryClient.HostFinding

    static let primary = Observation(inRecovery: false, readOnly: false, timeline: 2)
    static func standby(lag: Duration?) -> Observation { Observation(inRecovery: true, readOnly: true, replayLag: lag) }

    static func check(_ findings: [Finding], target: DatabaseURL.TargetSessionAttributes = .readWrite) -> HealthReport.Check {
        PhylacteryClient.hostsCheck(findings, target: target, maximumReplicaLag: .seconds(5))
    }

    @Test func onePrimaryAndStandbysWithinTheBoundAreOk() {
        let check = Self.check([
            Finding(endpoint: "db1:5432", observation: Self.primary),
            Finding(endpoint: "db2:5432", observation: Self.standby(lag: .milliseconds(1500))),
        ])
        #expect(check.status == .ok)
        #expect(check.detail == "db1:5432 primary (timeline 2); db2:5432 standby, replay lag 1.500 s")
        #expect(check.fix == nil)
    }

    @Test func anUnreachableHostALaggingOrIdleStandbyAreWarnings() {
        for (other, named) in [
            (Finding(endpoint: "db2:5432", failure: "connection refused"), "db2:5432 unreachable (connection refused)"),
            (Finding(endpoint: "db2:5432", observation: Self.standby(lag: .seconds(6))), "db2:5432 standby, replay lag 6.000 s"),
            (Finding(endpoint: "db2:5432", observation: Self.standby(lag: nil)), "db2:5432 standby, not streaming (replay lag unknown)"),
        ] {
            let check = Self.check([Finding(endpoint: "db1:5432", observation: Self.primary), other])
            #expect(check.status == .warning, "\(named)")
            #expect(check.detail.hasSuffix(named), "\(check.detail)")
            #expect(check.fix?.contains("db2:5432") == true)
        }
    }

    @Test func noPrimaryOrSeveralPrimariesFail() {
        let none = Self.check([
            Finding(endpoint: "db1:5432", failure: "connection refused"),
            Finding(endpoint: "db2:5432", observation: Self.standby(lag: .zero)),
        ])
        #expect(none.status == .failed)
        #expect(none.fix?.contains("promote") == true)
        let two = Self.check([
            Finding(endpoint: "db1:5432", observation: Self.primary),
            Finding(endpoint: "db2:5432", observation: Observation(inRecovery: false, readOnly: false, timeline: 3)),
        ])
        #expect(two.status == .failed)
        #expect(two.fix?.contains("db1:5432, db2:5432") == true && two.fix?.contains("rejoin") == true)
        // A host that is read-only but not a standby takes no writes: it neither counts as a primary nor troubles reads.
        let readOnly = Self.check([
            Finding(endpoint: "db1:5432", observation: Self.primary),
            Finding(endpoint: "db2:5432", observation: Observation(inRecovery: false, readOnly: true)),
        ])
        #expect(readOnly.status == .ok)
        #expect(readOnly.detail.hasSuffix("db2:5432 read-only (default_transaction_read_only)"))
        // Which hosts take writes is the client's rule under target_session_attrs: with `primary` a
        // read-only host out of recovery is one (two here), with `any` every host is and none is a split.
        let readOnlyHosts = [Finding(endpoint: "db1:5432", observation: Self.primary), Finding(endpoint: "db2:5432", observation: Observation(inRecovery: false, readOnly: true))]
        #expect(Self.check(readOnlyHosts, target: .primary).status == .failed)
        let pair = [Finding(endpoint: "db1:5432", observation: Self.primary), Finding(endpoint: "db2:5432", observation: Self.standby(lag: .zero))]
        #expect(Self.check(pair, target: .any).status == .ok)
        #expect(Self.check([Finding(endpoint: "db2:5432", observation: Self.standby(lag: .zero))], target: .any).status == .ok)
    }
}
