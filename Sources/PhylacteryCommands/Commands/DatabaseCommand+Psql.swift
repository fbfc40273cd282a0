import ArgumentParser
import Foundation
import Phylactery
import PhylacteryEmbedded

extension DatabaseCommand {
    /// `db psql`: PostgreSQL's own shell on the right server, from the installed binaries (newcomers
    /// rarely have `psql` on PATH, and the socket's directory is not the one it looks in).
    struct Psql: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Open psql on the server (the local one, or PHYLACTERY_DATABASE_URL's). Arguments after -- go to psql.",
            discussion: """
                The connection goes through libpq's environment (PGHOST, PGPORT, PGUSER, PGDATABASE and, \
                for a URL that carries one, PGPASSWORD), so no password appears on a command line. \
                Example: phylactery db psql -- -c 'SELECT count(*) FROM queue.jobs'
                """)

        @OptionGroup var server: ServerOptions

        @Argument(parsing: .postTerminator, help: "Arguments for psql.")
        var psqlArguments: [String] = []

        func run() async throws {
            try await reportingErrors {
                let embedded = EmbeddedServer(configuration: server.configuration)
                let url: DatabaseURL
                if let external = try PhylacteryClient.Configuration.fromEnvironment() {
                    url = external.url
                } else {
                    guard case .running = embedded.pidFileState() else {
                        throw PhylacteryError(.connectionFailed, "The local server in \(server.configuration.home) is not running. Start it with `phylactery db start`.")
                    }
                    url = server.tcp ? try embedded.tcpURL() : embedded.url
                }
                let psql = try Self.psqlPath(server.configuration)
                var environment = ProcessInfo.processInfo.environment
                for (key, value) in Self.libpqEnvironment(url) { environment[key] = value }
                if url.password == nil { environment.removeValue(forKey: "PGPASSWORD") }
                try Self.replaceProcess(with: psql, arguments: psqlArguments, environment: environment)
            }
        }

        /// The installed psql, else one on PATH.
        static func psqlPath(_ configuration: EmbeddedServer.Configuration) throws -> String {
            if let installation = try? Installation.locate(configuration), FileManager.default.isExecutableFile(atPath: installation.tool("psql")) {
                return installation.tool("psql")
            }
            let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
            for directory in path.split(separator: ":") where FileManager.default.isExecutableFile(atPath: "\(directory)/psql") {
                return "\(directory)/psql"
            }
            throw EmbeddedServerError(.notInstalled, "No psql found: the embedded server is not installed (run `phylactery db install`) and none is on PATH.")
        }

        /// libpq's variables for `url`.
        static func libpqEnvironment(_ url: DatabaseURL) -> [String: String] {
            var environment = ["PGUSER": url.username, "PGDATABASE": url.database]
            // Every host, and with several the role to look for (the primary), as libpq takes them.
            environment.merge(url.libpqHostEnvironment) { $1 }
            if url.endpoints.contains(where: { $0.socketPath == nil }) {
                environment["PGSSLMODE"] = url.tlsMode.rawValue
            }
            if let password = url.password { environment["PGPASSWORD"] = password }
            return environment
        }

        /// Becomes psql (execve), so it owns the terminal, its signals and the exit status.
        static func replaceProcess(with program: String, arguments: [String], environment: [String: String]) throws -> Never {
            let argv = ([program] + arguments).map { strdup($0) } + [nil]
            let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
            fflush(nil)
            execve(program, argv, envp)
            let reason = String(cString: strerror(errno))
            throw EmbeddedServerError(.notInstalled, "Could not run \(program): \(reason).")
        }
    }
}
