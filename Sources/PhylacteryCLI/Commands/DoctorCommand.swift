import ArgumentParser
import Foundation
import Phylactery
import PhylacteryEmbedded

/// `phylactery doctor`: checks the database Phylactery would use and says what is wrong.
struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check server version, pgvector, chambers, the protection of facts and pool health. Exit 1 when a check fails.")

    func run() async throws {
        try await reportingErrors {
            let url = try EmbeddedServer.resolveDatabaseURL()
            let report = try await PhylacteryClient.withClient(configuration: .init(url: url)) { client in
                await client.healthReport()
            }
            print(report)
            if !report.isHealthy { throw ExitCode.failure }
        }
    }
}
