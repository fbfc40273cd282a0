import Foundation
import Phylactery
import PhylacteryEmbedded
import PhylacteryTestSupport
import Testing

/// The example daemon (Examples/Daemon): the operator's commands from the `PhylacteryCommands`
/// library under the daemon's own name, for its own extensions.
@Suite struct ExampleDaemonTests {
    static func daemon(_ arguments: [String], environment: [String: String] = [:]) throws -> PhylacteryProcess {
        try PhylacteryProcess.run(executable: PhylacteryProcess.binDirectory + "/ExampleDaemon", arguments, environment: environment)
    }

    @Test func theCommandsGoByTheDaemonsNameAndWorkOnItsDatabase() async throws {
        let help = try Self.daemon(["--help"])
        #expect(help.status == 0, "\(help.output)")
        #expect(help.output.contains("USAGE: example-daemon <subcommand>"), "\(help.output)")
        #expect(help.output.contains("The example daemon's operator tool"), "\(help.output)")
        #expect(!help.output.contains("demo"), "the tour belongs to the phylactery executable: \(help.output)")
        let usage = try Self.daemon(["queue", "show"])
        #expect(usage.status == 64)
        #expect(usage.output.contains("Usage: example-daemon queue show"), "\(usage.output)")

        try await TestDatabase.withFreshDatabase("example_daemon") { client in
            let environment = ["PHYLACTERY_DATABASE_URL": client.configuration.url.unredacted]
            // The local server's status, by the daemon's tool (the test server runs in PHYLACTERY_HOME).
            if ProcessInfo.processInfo.environment["PHYLACTERY_HOME"] != nil {
                let status = try Self.daemon(["db", "status"])
                #expect(status.status == 0, "\(status.output)")
                #expect(status.output.contains("state:          running"), "\(status.output)")
            }
            let plan = try Self.daemon(["migrate", "plan"], environment: environment)
            #expect(plan.status == 0, "\(plan.output)")
            #expect(plan.output.contains("notebook") && plan.output.contains("tasks"), "its extensions' models are planned: \(plan.output)")
            let up = try Self.daemon(["migrate", "auto"], environment: environment)
            #expect(up.status == 0, "\(up.output)")
            let check = try Self.daemon(["migrate", "check"], environment: environment)
            #expect(check.status == 0, "\(check.output)")
            let stats = try Self.daemon(["queue", "stats"], environment: environment)
            #expect(stats.status == 0, "\(stats.output)")
        }
    }

    /// The example's own manifest names products the main package has (it is built alone by users;
    /// the test command compiles its sources in the main build instead of a second package build).
    @Test func theExamplesManifestNamesProductsThePackageHas() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        // The example's manifest through SwiftPM (a scratch path of its own: no lock shared with the
        // running build); the main package's products read from its manifest's text (SwiftPM holds
        // this package's lock while the tests run).
        func manifest(_ path: String) throws -> [String: Any] {
            let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("example-daemon-\(UUID().uuidString)").path
            defer { try? FileManager.default.removeItem(atPath: scratch) }
            let run = try Subprocess.run("/usr/bin/env", ["swift", "package", "--package-path", path, "--scratch-path", scratch, "dump-package"], environment: ProcessInfo.processInfo.environment)
            #expect(run.status == 0, "\(run.output)")
            let start = try #require(run.output.firstIndex(of: "{"))
            return try #require(try JSONSerialization.jsonObject(with: Data(run.output[start...].utf8)) as? [String: Any])
        }
        let packageText = try String(contentsOfFile: root + "/Package.swift", encoding: .utf8)
        let declared = try Regex(#"\.(?:library|executable)\(name: "([^"]+)""#)
        let products = Set(packageText.matches(of: declared).compactMap { $0.output[1].substring.map(String.init) })
        let example = try manifest(root + "/Examples/Daemon")
        let targets = (example["targets"] as? [[String: Any]]) ?? []
        var named: [String] = []
        for target in targets {
            for dependency in (target["dependencies"] as? [[String: Any]]) ?? [] {
                if let product = dependency["product"] as? [Any], let name = product.first as? String { named.append(name) }
            }
        }
        #expect(!named.isEmpty)
        #expect(Set(named).isSubset(of: products), "\(named) not all in \(products.sorted())")
        let daemonSources = try FileManager.default.contentsOfDirectory(atPath: root + "/Examples/Daemon/Sources/ExampleDaemon")
        #expect(daemonSources.contains("ExampleDaemon.swift"))
    }
}
