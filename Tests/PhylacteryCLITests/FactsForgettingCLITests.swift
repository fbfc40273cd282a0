import Foundation
import Phylactery
import PhylacteryTestSupport
import Testing

/// `phylactery facts retract | erase | recall` and the label options, end to end, as separate processes.
@Suite struct FactsForgettingCLITests {
    @Test func retractEraseLabelsAndRecallFromTheCommandLine() async throws {
        try await TestDatabase.withFreshDatabase("cli_facts_forget") { client in
            let environment = ["PHYLACTERY_DATABASE_URL": client.configuration.url.unredacted]
            func run(_ arguments: String...) throws -> PhylacteryProcess { try PhylacteryProcess.run(arguments, environment: environment) }
            #expect(try run("migrate", "auto").status == 0)

            // Retract: a tombstone in the history, nothing for get, put starts again after it.
            #expect(try run("facts", "put", "network", "gateway.ip", #""10.0.0.1""#, "--source", "operator").status == 0)
            let retract = try run("facts", "retract", "network", "gateway.ip", "--reason", "moved to the cloud", "--source", "operator")
            #expect(retract.status == 0 && retract.output.hasPrefix("retracted network/gateway.ip v2 = (retracted: moved to the cloud)"), "\(retract.output)")
            let gone = try run("facts", "get", "network", "gateway.ip")
            #expect(gone.status == 1 && gone.output.contains("no fact network/gateway.ip"), "\(gone.output)")
            let supersede = try run("facts", "supersede", "network", "gateway.ip", #""10.0.0.9""#)
            #expect(supersede.status == 1 && supersede.output.contains("record it again with put"), "\(supersede.output)")
            let again = try run("facts", "put", "network", "gateway.ip", #""10.0.0.2""#)
            #expect(again.output.hasPrefix(#"recorded network/gateway.ip v3 = "10.0.0.2""#), "\(again.output)")
            let history = try run("facts", "history", "network", "gateway.ip")
            #expect(history.output.split(separator: "\n").map { String($0.prefix(34)) } == [
                #"network/gateway.ip v1 = "10.0.0.1""#.padding(toLength: 34, withPad: " ", startingAt: 0),
                "network/gateway.ip v2 = (retracted",
                #"network/gateway.ip v3 = "10.0.0.2""#.padding(toLength: 34, withPad: " ", startingAt: 0),
            ], "\(history.output)")

            // Labels: a secret is hidden unless asked for.
            #expect(try run("facts", "put", "home", "wifi.password", #""hunter2""#, "--label", "secret").status == 0)
            let hidden = try run("facts", "get", "home", "wifi.password")
            #expect(hidden.status == 1, "\(hidden.output)")
            let shown = try run("facts", "get", "home", "wifi.password", "--visible", "secret")
            #expect(shown.output.hasPrefix(#"home/wifi.password v1 = "hunter2"  (source cli, secret"#), "\(shown.output)")
            let badLabel = try run("facts", "put", "home", "x", "1", "--label", "topsecret")
            #expect(badLabel.status == 64 && badLabel.output.contains("--label is public, private or secret"), "\(badLabel.output)")

            // Recall by question: which chamber answered, and why.
            let recall = try run("facts", "recall", "What is the gateway's IP address?")
            #expect(recall.status == 0 && recall.output.hasPrefix("answered by verbatim [fact]: text match, score 0."), "\(recall.output)")
            #expect(recall.output.contains(#"network/gateway.ip v3 = "10.0.0.2""#), "\(recall.output)")
            let nothing = try run("facts", "recall", "who painted the kitchen?")
            #expect(nothing.output == "answered by nothing [none]: nothing matched\n", "\(nothing.output)")
            let exact = try run("facts", "recall", "anything", "--namespace", "network", "--key", "gateway.ip")
            #expect(exact.output.hasPrefix("answered by verbatim [fact]: exact key\nnetwork/gateway.ip v3"), "\(exact.output)")

            // Erase: refused without --yes (usage error, nothing changed); with it, audited and compacted.
            let unconfirmed = try run("facts", "erase", "network", "gateway.ip", "--reason", "privacy")
            #expect(unconfirmed.status == 64 && unconfirmed.output.contains("add --yes to confirm"), "\(unconfirmed.output)")
            #expect(try run("facts", "get", "network", "gateway.ip").status == 0)
            let erase = try run("facts", "erase", "network", "gateway.ip", "--reason", "privacy", "--by", "officer", "--yes")
            #expect(erase.status == 0 && erase.output.hasPrefix("erased network/gateway.ip: 3 versions lost their values (audit "), "\(erase.output)")
            #expect(erase.output.contains("rewrote verbatim.facts (VACUUM FULL)"), "\(erase.output)")
            let erased = try run("facts", "history", "network", "gateway.ip")
            #expect(erased.output.split(separator: "\n").allSatisfy { $0.contains("= (erased ") }, "\(erased.output)")
            let audit = try await client.transaction { tx in try await tx.facts.erasures("network", key: "gateway.ip") }
            #expect(audit.map(\.erasedBy) == ["officer"] && audit.map(\.versions) == [3])
        }
    }
}
