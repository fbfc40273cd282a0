import ArgumentParser
import Foundation
import Logging
import Phylactery
import PhylacteryEmbedded

/// `phylactery`: the operator's tool. Parsing and printing only; the work is in the libraries.
@main
struct PhylacteryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "phylactery",
        abstract: "One PostgreSQL for everything a daemon remembers.",
        discussion: """
            Uses the server named by PHYLACTERY_DATABASE_URL, or else the local server in \
            $PHYLACTERY_HOME (default: as root /var/lib/phylactery, else $XDG_DATA_HOME/phylactery or \
            ~/.local/share/phylactery).
            """,
        subcommands: [DemoCommand.self, DatabaseCommand.self, MigrateCommand.self, ExtensionCommand.self, WorkerCommand.self, QueueCommand.self, TracesCommand.self, FactsCommand.self, MemoryCommand.self, DoctorCommand.self]
    )

    /// Quiet logs by default (warnings and errors); PHYLACTERY_VERBOSE=1 shows everything.
    static func main() async {
        let verbose = ProcessInfo.processInfo.environment["PHYLACTERY_VERBOSE"] != nil
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = verbose ? .debug : .warning
            return handler
        }
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}

/// Runs a command body and turns Phylactery's errors into one readable line and exit code 1,
/// instead of a dump of nested descriptions.
func reportingErrors(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as ExitCode {
        throw error
    } catch let error as CleanExit {
        throw error
    } catch let error as ValidationError {
        throw error
    } catch {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        if ProcessInfo.processInfo.environment["PHYLACTERY_VERBOSE"] != nil {
            if let embedded = error as? EmbeddedServerError, let details = embedded.details {
                FileHandle.standardError.write(Data("\(details)\n".utf8))
            } else {
                FileHandle.standardError.write(Data("\(String(reflecting: error))\n".utf8))
            }
        }
        throw ExitCode.failure
    }
}
