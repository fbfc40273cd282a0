import ArgumentParser
import Foundation
import Phylactery
import PhylacteryBackup
import PhylacteryEmbedded

/// `phylactery doctor`: checks the database Phylactery would use and says what is wrong.
struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check server version, pgvector, chambers, the protection of facts, sessions (a transaction pooler in the way) and pool health. Exit 1 when a check fails.")

    func run() async throws {
        try await reportingErrors {
            let url = try EmbeddedServer.resolveDatabaseURL()
            var configuration = PhylacteryClient.Configuration(url: url)
            configuration.options.sessionURL = try PhylacteryClient.Configuration.sessionURLFromEnvironment()
            var report = try await PhylacteryClient.withClient(configuration: configuration) { client in
                await client.healthReport()
            }
            // The local server's WAL archiving: fails once a segment waited longer than archive_timeout.
            if try PhylacteryClient.Configuration.fromEnvironment() == nil {
                report.checks.append(await WALArchiving.status(of: EmbeddedServer()).check)
            }
            print(report)
            if !report.isHealthy { throw ExitCode.failure }
        }
    }
}
