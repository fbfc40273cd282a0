import Foundation
import Phylactery
import PhylacteryTestSupport
import Testing

/// A password in the database URL never reaches any command's output, its errors or its debug logs.
@Suite struct SecretsCLITests {
    static let commands: [[String]] = [
        ["demo"], ["doctor"], ["db", "status"], ["config", "show"], ["migrate", "plan"], ["migrate", "status"], ["migrate", "check"],
        ["queue", "stats"], ["queue", "list"], ["traces", "list"], ["facts", "put", "secrets", "k", "1"], ["facts", "history", "secrets", "k"],
        ["facts", "list", "secrets"], ["memory", "stats"], ["extension", "export", "notebook", "--to", "/dev/null"],
    ]

    @Test func noCommandPrintsThePasswordOfTheURL() async throws {
        try await TestDatabase.withFreshDatabase("cli_secrets") { client in
            // Over the Unix socket the server trusts the user, so the password is carried and ignored.
            var url = client.configuration.url
            let secret = "pw-\(UInt64.random(in: 1_000_000_000...9_999_999_999))"
            url.password = secret
            var missing = url
            missing.database = "no_such_db_\(UInt32.random(in: 1000...9999))"
            for command in Self.commands {
                for (label, target) in [("working", url), ("missing database", missing)] {
                    let run = try PhylacteryProcess.run(command, environment: ["PHYLACTERY_DATABASE_URL": target.unredacted, "PHYLACTERY_VERBOSE": "1"])
                    #expect(!run.output.contains(secret), "`phylactery \(command.joined(separator: " "))` (\(label)) printed the password:\n\(run.output)")
                    // Every command that uses the URL fails on the missing database (an error path
                    // that names the server); `config show` and `db status` (the local server) do not use it.
                    if label == "missing database", command != ["config", "show"], command != ["db", "status"] {
                        #expect(run.status != 0, "`\(command)` against a missing database: \(run.output)")
                    }
                }
            }
            let shown = try PhylacteryProcess.run(["config", "show"], environment: ["PHYLACTERY_DATABASE_URL": url.unredacted])
            #expect(shown.output.contains("database.url") && shown.output.contains("<redacted>"), "\(shown.output)")
            // From a secret file too.
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("secret-url-\(UUID().uuidString)").path
            try url.unredacted.write(toFile: file, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(atPath: file) }
            let fromFile = try PhylacteryProcess.run(["config", "show"], environment: ["PHYLACTERY_DATABASE_URL": "", "PHYLACTERY_DATABASE_URL_FILE": file])
            #expect(fromFile.status == 0, "\(fromFile.output)")
            #expect(!fromFile.output.contains(secret), "\(fromFile.output)")
        }
    }
}
