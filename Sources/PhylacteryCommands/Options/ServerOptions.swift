public import ArgumentParser
import Foundation
public import PhylacteryEmbedded

/// Where the local server lives: `--home`, `--pg-bin`, `--port`.
public struct ServerOptions: ParsableArguments {
    public init() {}

    @Option(help: "The data directory (default: $PHYLACTERY_HOME; as root /var/lib/phylactery; else $XDG_DATA_HOME/phylactery or ~/.local/share/phylactery).")
    var home: String?

    @Option(help: "A PostgreSQL bin directory to use instead of the embedded one (default: $PHYLACTERY_PG_BIN).")
    var pgBin: String?

    @Option(help: "Port number; over the Unix socket it only names the socket file.")
    var port: Int = 5432

    @Flag(help: "Also listen on TCP at 127.0.0.1:<port> (password required there).")
    var tcp = false

    public func validate() throws {
        guard (1...65535).contains(port) else { throw ValidationError("--port must be between 1 and 65535.") }
    }

    /// The embedded server's configuration these options (and the environment) name.
    public var configuration: EmbeddedServer.Configuration {
        var configuration = EmbeddedServer.Configuration.fromEnvironment()
        let cwd = FileManager.default.currentDirectoryPath
        func absolute(_ path: String) -> String { path.hasPrefix("/") ? path : cwd + "/" + path }
        if let home { configuration = .init(home: absolute(home), pgBinOverride: configuration.pgBinOverride) }
        if let pgBin { configuration.pgBinOverride = absolute(pgBin) }
        configuration.port = port
        configuration.listensOnTCP = tcp
        return configuration
    }
}
