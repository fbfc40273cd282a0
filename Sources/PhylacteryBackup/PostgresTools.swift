import Foundation
import PhylacteryEmbedded
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs the PostgreSQL programs backups need (pg_basebackup, pg_verifybackup, pg_combinebackup,
/// pg_waldump, pg_amcheck, pg_ctl, pg_controldata) from one installation, reading what they print
/// while they run so their progress can be shown.
struct PostgresTools: Sendable {
    let binDirectory: String
    /// The unprivileged user servers run as when this process is root (`nil` otherwise).
    let serverUser: String?

    init(installation: Installation, serverUser: String?) {
        self.binDirectory = installation.binDirectory
        self.serverUser = serverUser
    }

    /// The installation `server` would run, or the fix when there is none.
    static func locate(for server: EmbeddedServer) throws(BackupError) -> PostgresTools {
        let installation: Installation?
        do {
            installation = try Installation.locate(server.configuration)
        } catch {
            throw BackupError(.toolFailed, error.message)
        }
        guard let installation else {
            throw BackupError(.toolFailed, "No PostgreSQL is installed for \(server.configuration.home); run `phylactery db install` first.")
        }
        guard FileManager.default.isExecutableFile(atPath: installation.tool("pg_combinebackup")) else {
            throw BackupError(.toolFailed, "The PostgreSQL in \(installation.binDirectory) (\(installation.version)) has no pg_combinebackup; backups need PostgreSQL 17 or newer (the embedded server is 18).")
        }
        return PostgresTools(installation: installation, serverUser: ServerUser.isRoot ? server.configuration.serverUser : nil)
    }

    func path(_ tool: String) -> String { binDirectory + "/" + tool }

    /// The environment tools run in: English messages (they are parsed) and UTC times.
    static var environment: [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["LC_ALL"] = "C"
        environment["LANG"] = "C"
        environment["TZ"] = "UTC"
        environment["PGTZ"] = "UTC"
        return environment
    }

    /// Runs `tool` and returns what it printed; a non-zero exit throws with its last lines.
    ///
    /// - Parameters:
    ///   - asServerUser: run as the server's user (programs that touch a data directory it owns).
    ///   - accepting: exit statuses that count as success.
    ///   - watch: called every quarter second with everything printed so far, while it runs.
    @discardableResult
    func run(
        _ tool: String, _ arguments: [String], asServerUser: Bool = false, accepting: Set<Int32> = [0],
        failure: String, watch: (String) -> Void = { _ in }
    ) async throws(BackupError) -> String {
        let running: Subprocess.Running
        do {
            running = try Subprocess.spawn(path(tool), arguments, as: asServerUser ? serverUser : nil, environment: Self.environment)
        } catch {
            throw BackupError(.toolFailed, "Could not run \(path(tool)): \(error).")
        }
        var outcome: Subprocess.Outcome?
        var cancelled = false
        while outcome == nil {
            do {
                outcome = try running.poll()
            } catch {
                throw BackupError(.toolFailed, "Lost track of \(tool): \(error).")
            }
            if outcome != nil { break }
            watch(running.output(from: 0))
            if Task.isCancelled && !cancelled {
                cancelled = true
                kill(running.pid, SIGINT)
            }
            try? await Task.sleep(for: .milliseconds(250))
        }
        let result = outcome!
        watch(result.output)
        guard accepting.contains(result.status) else {
            let lines = result.output.split(whereSeparator: { $0 == "\n" || $0 == "\r" })
                .filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty && !$0.contains(" kB (") }
            let tail = lines.suffix(6).joined(separator: "\n")
            throw BackupError(.toolFailed, "\(failure): \(tool) exited with status \(result.status)\(tail.isEmpty ? "." : ":\n\(tail)")", details: result.output)
        }
        return result.output
    }

    /// The last `done/total kB` figure a tool's `--progress` output shows, in bytes.
    static func kilobyteProgress(in output: String) -> (done: UInt64, total: UInt64)? {
        guard let line = output.split(whereSeparator: { $0 == "\n" || $0 == "\r" }).last(where: { $0.contains(" kB") && $0.contains("/") }) else { return nil }
        let figures = line.trimmingCharacters(in: .whitespaces).split(separator: " ").first?.split(separator: "/") ?? []
        guard figures.count == 2, let done = UInt64(figures[0]), let total = UInt64(figures[1]) else { return nil }
        return (done * 1024, total * 1024)
    }
}
