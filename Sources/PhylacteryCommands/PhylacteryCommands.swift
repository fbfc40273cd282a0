public import ArgumentParser
import Foundation
import Logging
public import Phylactery
import Synchronization

/// The operator's commands (`up`, `db`, `doctor`, `migrate`, `extension`, `worker`, `queue`,
/// `traces`, `facts`, `memory`, `config`, `console`) as a library, so a daemon's own executable offers them for its own extensions
/// under its own name.
///
/// ```swift
/// @main enum LychDB {
///     static func main() async {
///         await PhylacteryCommands.main(commandName: "lychd-db", extensions: [Notebook(), Tasks()])
///     }
/// }
/// ```
///
/// A daemon with a root command of its own mounts ``PhylacteryRootCommand`` among its subcommands
/// after ``configure(commandName:abstract:extensions:additionalCommands:)``.
public enum PhylacteryCommands {
    /// What the commands are hosted as: set once, before parsing.
    struct Host: Sendable {
        var commandName = "phylactery"
        var abstract = "One PostgreSQL for everything a daemon remembers."
        var extensions: [any PhylacteryExtension] = []
        var additionalCommands: [CommandType] = []
    }

    /// A command type the host adds beside the built-in ones.
    struct CommandType: @unchecked Sendable {   // a metatype: immutable, safe to share
        let type: any ParsableCommand.Type
    }

    private static let hostState = Mutex(Host())
    private static let level = Mutex(Logger.Level.warning)

    /// The level of loggers made from now on: warning for the short commands, info for `up`.
    static var logLevel: Logger.Level {
        get { level.withLock { $0 } }
        set { level.withLock { $0 = newValue } }
    }
    static var host: Host { hostState.withLock { $0 } }

    /// The extensions the commands work with: `migrate` plans their models, `worker` runs their
    /// handlers, `extension import|purge` checks against them.
    public static var extensions: [any PhylacteryExtension] { host.extensions }

    /// The core's models plus the hosted extensions'.
    public static func federation() throws -> Federation {
        try Federation.standard(extensions: host.extensions)
    }

    /// Sets the name the commands are shown under, the hosted extensions and commands of the host's
    /// own to list beside the built-in ones. Call it before ``PhylacteryRootCommand`` parses.
    public static func configure(
        commandName: String,
        abstract: String? = nil,
        extensions: [any PhylacteryExtension],
        additionalCommands: [any ParsableCommand.Type] = []
    ) {
        hostState.withLock { host in
            host.commandName = commandName
            if let abstract { host.abstract = abstract }
            host.extensions = extensions
            host.additionalCommands = additionalCommands.map(CommandType.init)
        }
    }

    /// Configures the commands, parses the process's arguments and runs the chosen command: a whole
    /// `main` for an operator tool. Logs go to standard error at warning level
    /// (`PHYLACTERY_VERBOSE=1`: everything). Exits the process with the command's status.
    public static func main(
        commandName: String,
        abstract: String? = nil,
        extensions: [any PhylacteryExtension],
        additionalCommands: [any ParsableCommand.Type] = []
    ) async -> Never {
        configure(commandName: commandName, abstract: abstract, extensions: extensions, additionalCommands: additionalCommands)
        if ProcessInfo.processInfo.environment["PHYLACTERY_VERBOSE"] != nil { logLevel = .debug }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = logLevel
            return handler
        }
        do {
            var command = try PhylacteryRootCommand.parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            PhylacteryRootCommand.exit()
        } catch {
            PhylacteryRootCommand.exit(withError: error)
        }
    }

    /// Runs a command body and turns errors into one readable line on standard error and exit
    /// code 1 (`PHYLACTERY_VERBOSE=1` adds the details). For a host's own commands.
    public static func reportingErrors(_ body: () async throws -> Void) async throws {
        try await CommandErrorReport.reporting(body)
    }
}

/// The root of the operator's commands, named as the host configured
/// (``PhylacteryCommands/configure(commandName:abstract:extensions:additionalCommands:)``).
public struct PhylacteryRootCommand: AsyncParsableCommand {
    public static var configuration: CommandConfiguration {
        let host = PhylacteryCommands.host
        return CommandConfiguration(
            commandName: host.commandName,
            abstract: host.abstract,
            discussion: """
                Uses the server named by PHYLACTERY_DATABASE_URL, or else the local server in \
                $PHYLACTERY_HOME (default: as root /var/lib/phylactery, else $XDG_DATA_HOME/phylactery or \
                ~/.local/share/phylactery).
                """,
            subcommands: host.additionalCommands.map(\.type) + [
                UpCommand.self, DatabaseCommand.self, MigrateCommand.self, ExtensionCommand.self, WorkerCommand.self, QueueCommand.self,
                TracesCommand.self, FactsCommand.self, MemoryCommand.self, DoctorCommand.self, ConfigCommand.self, ConsoleCommand.self,
            ])
    }

    public init() {}
}
