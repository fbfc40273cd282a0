import ArgumentParser
import Foundation
import Phylactery
import PhylacteryTestSupport

/// `phylactery-chaos pgbouncer start|stop`: a private PgBouncer in transaction mode in front of the test
/// server, for the test command's pass through a pooler (the same one the pooler tests start: see
/// `PgBouncer` in PhylacteryTestSupport). It keeps running after `start` returns, until `stop`.
struct PgBouncerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pgbouncer", abstract: "Start or stop a private PgBouncer in front of the test server.",
        subcommands: [Start.self, Stop.self])

    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start one in front of PHYLACTERY_DATABASE_URL (or the embedded server); print its home and its URL (password included) on one line.")
        @Option(help: "pool_mode: transaction or session.") var poolMode = "transaction"

        func run() async throws {
            let bouncer = try await PgBouncer.start("pass", poolMode: self.poolMode)
            print("\(bouncer.home) \(bouncer.url.unredacted)")
        }
    }

    struct Stop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop the one whose home is HOME and remove the home.")
        @Argument var home: String

        func run() async throws {
            await PgBouncer.stop(home: self.home)
        }
    }
}
