import Foundation
import PhylacteryEmbedded
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Running the programs of physical backups (pg_basebackup, pg_verifybackup, pg_combinebackup,
/// pg_waldump, pg_amcheck, pg_ctl, pg_controldata) while reading what they print, so their progress
/// can be shown.
extension PostgresTools {
    /// The installation `server` runs, which must have pg_combinebackup (PostgreSQL 17 or newer).
    static func forPhysicalBackups(of server: EmbeddedServer) throws(BackupError) -> PostgresTools {
        let tools = try PostgresTools.locate(server.configuration)
        guard FileManager.default.isExecutableFile(atPath: tools.binDirectory + "/pg_combinebackup") else {
            throw BackupError(.toolUnavailable, "The PostgreSQL in \(tools.binDirectory) (\(tools.version)) has no pg_combinebackup; physical backups need PostgreSQL 17 or newer (the embedded server is 18).")
        }
        return tools
    }

    /// The user `server`'s cluster belongs to when this process is root (`nil` otherwise: it is ours).
    static func serverUser(of server: EmbeddedServer) -> String? {
        ServerUser.isRoot ? server.configuration.serverUser : nil
    }

    /// The environment these programs run in: English messages (they are parsed), UTC times, and no
    /// `PG*` variables of the caller's (the arguments alone decide where they connect).
    static var watchedEnvironment: [String: String] {
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("PG") }
        environment["LC_ALL"] = "C"
        environment["LANG"] = "C"
        environment["TZ"] = "UTC"
        environment["PGTZ"] = "UTC"
        return environment
    }

    /// Runs `tool` (as `user` when given) and returns what it printed; an exit status outside
    /// `accepting` throws ``BackupError/Code/toolFailed`` with its last lines. `watch` is called every
    /// quarter second with everything printed so far while it runs. Cancelling the task interrupts it.
    @discardableResult
    func runWatching(
        _ tool: String, _ arguments: [String], as user: String? = nil, accepting: Set<Int32> = [0],
        failure: String, watch: (String) -> Void = { _ in }
    ) async throws(BackupError) -> String {
        let program = try self.path(tool)
        let running: Subprocess.Running
        do {
            running = try Subprocess.spawn(program, arguments, as: user, environment: Self.watchedEnvironment)
        } catch {
            throw BackupError(.toolFailed, "Could not run \(program): \(error).")
        }
        var outcome: Subprocess.Outcome?
        var interrupted = false
        while outcome == nil {
            do {
                outcome = try running.poll()
            } catch {
                throw BackupError(.toolFailed, "Lost track of \(tool): \(error).")
            }
            if outcome != nil { break }
            watch(running.output(from: 0))
            if Task.isCancelled && !interrupted {
                interrupted = true
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
