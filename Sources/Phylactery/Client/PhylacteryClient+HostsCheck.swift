import Foundation
import Logging
import PostgresNIO

/// The health report's `hosts` check: with several hosts in the URL, what each one is now.
extension PhylacteryClient {
    /// What one host answered when the health report asked it: its role and lag (`observation`), or
    /// why it could not be asked.
    struct HostFinding: Sendable {
        var endpoint: String
        var observation: TopologyStateMachine<ContinuousClock>.Observation?
        var failure: String?
    }

    /// Asks every host of the URL its role and replay lag, each on a connection of its own opened for
    /// the question (the client's own probes may not run yet: the report works before ``run()``).
    func probeHosts(_ topology: ClientTopology) async -> [HostFinding] {
        var findings: [HostFinding] = []
        for (index, url) in topology.hosts.enumerated() {
            var connection: PostgresConnection?
            do {
                connection = try await PostgresConnection.connect(
                    configuration: try url.connectionConfiguration(options: self.configuration.options), id: index, logger: self.logger)
                let observation = try await ClientTopology.observe(on: connection!, timeout: self.configuration.options.connectTimeout, logger: self.logger)
                findings.append(HostFinding(endpoint: url.endpointDescription, observation: observation))
            } catch {
                findings.append(HostFinding(endpoint: url.endpointDescription, failure: ClientTopology.reason(error)))
            }
            try? await connection?.close()
        }
        return findings
    }

    /// The `hosts` check of `findings`: each host's role (`primary`, `standby` with its replay lag,
    /// `read-only`, or unreachable with the reason).
    ///
    /// Which hosts take writes is the client's own rule (``TopologyStateMachine/takesWrites(_:target:)``
    /// under the URL's `target_session_attrs`). Failed when none does (nothing can be written until a
    /// standby is promoted) or, unless the target is `any`, when more than one does (a split brain:
    /// they diverge). A warning when a host cannot be reached or a standby is not streaming or lags
    /// beyond `maximumReplicaLag` (reads do not go there then).
    static func hostsCheck(
        _ findings: [HostFinding], target: DatabaseURL.TargetSessionAttributes, maximumReplicaLag: Duration
    ) -> HealthReport.Check {
        var parts: [String] = []
        var primaries: [String] = []
        var troubled: [String] = []
        for finding in findings {
            guard let observation = finding.observation else {
                parts.append("\(finding.endpoint) unreachable (\(finding.failure ?? "no answer"))")
                troubled.append(finding.endpoint)
                continue
            }
            if TopologyStateMachine<ContinuousClock>.takesWrites(observation, target: target) { primaries.append(finding.endpoint) }
            if !observation.inRecovery && !observation.readOnly {
                parts.append("\(finding.endpoint) primary" + (observation.timeline.map { " (timeline \($0))" } ?? ""))
            } else if observation.inRecovery {
                if let lag = observation.replayLag {
                    parts.append("\(finding.endpoint) standby, replay lag \(String(format: "%.3f", lag.seconds)) s")
                    if lag > maximumReplicaLag { troubled.append(finding.endpoint) }
                } else {
                    parts.append("\(finding.endpoint) standby, not streaming (replay lag unknown)")
                    troubled.append(finding.endpoint)
                }
            } else {
                parts.append("\(finding.endpoint) read-only (default_transaction_read_only)")
            }
        }
        let detail = parts.joined(separator: "; ")
        if primaries.isEmpty {
            return .init(name: "hosts", status: .failed, detail: detail,
                         fix: "No host takes writes: start the primary, or promote a standby (`phylactery db promote --home …`).")
        }
        if primaries.count > 1 && target != .any {
            return .init(name: "hosts", status: .failed, detail: detail,
                         fix: "Several hosts take writes (\(primaries.joined(separator: ", "))) and diverge: stop the former primary and make it follow the new one (`phylactery db replica rejoin`).")
        }
        if !troubled.isEmpty {
            return .init(name: "hosts", status: .warning, detail: detail,
                         fix: "Reads avoid \(troubled.joined(separator: ", ")): start it, or see why it lags (`phylactery db replica status --home …`).")
        }
        return .init(name: "hosts", status: .ok, detail: detail)
    }
}
