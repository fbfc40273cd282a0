import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Logging
import Phylactery
import PhylacteryEmbedded
import PostgresNIO

extension ServerUpgrade {
    /// The major upgrade: backup first, then `pg_upgrade` into a new directory, swap, start, check.
    /// Before the swap a failure leaves the old cluster as it was (restarted if it was running);
    /// after it, the old directory is put back.
    func majorUpgrade(from old: Installation, to new: Installation, backupDirectory: String) async throws -> MajorUpgrade {
        let oldServer = self.server(on: old.binDirectory)
        let newServer = self.server(on: nil)
        let data = configuration.dataDirectory
        let stamp = Self.stamp()
        let newData = "\(configuration.home)/data.upgrade-\(stamp)"
        let keptData = "\(configuration.home)/data.pg\(old.majorVersion)-\(stamp)"
        let workDirectory = "\(configuration.home)/upgrade-\(stamp)"
        let user: ServerUser? = ServerUser.isRoot ? try ServerUser.ensure(configuration.serverUser) : nil
        let tools = try PostgresTools(binDirectory: new.binDirectory)
        for tool in ["pg_upgrade", "pg_controldata", "psql", "vacuumdb"] { _ = try tools.path(tool) }
        var steps: [String] = []
        let wasRunning: Bool
        if case .running = oldServer.pidFileState() { wasRunning = true } else { wasRunning = false }

        // 1. A verified logical backup, taken from the cluster running on its own binaries.
        let started = try await oldServer.start(installIfNeeded: false)
        steps.append("started the PostgreSQL \(old.majorVersion) cluster on \(old.binDirectory) (pid \(started.pid))")
        var clientOptions = PhylacteryClient.Configuration.Options()
        clientOptions.createsChambers = false
        clientOptions.maximumConnections = 2
        let backup: LogicalBackupManifest
        do {
            backup = try await PhylacteryClient.withClient(configuration: .init(url: oldServer.url, options: clientOptions), logger: self.logger) { client in
                try await LogicalBackup(client: client, tools: tools).backup(to: backupDirectory)
            }
        } catch {
            if !wasRunning { _ = try? oldServer.stop() }
            throw BackupError(.upgradeRefused, "The backup a major upgrade needs first failed, so nothing was upgraded: \(Self.reason(error)) The cluster is as it was.", details: (error as? BackupError)?.details)
        }
        let tablesBefore = backup.chambers.reduce(0) { $0 + $1.tables.count }
        steps.append("backed up \(backup.database) (\(backup.chambers.map(\.chamber).joined(separator: ", ")); \(tablesBefore) tables) into \(backupDirectory) and read it back")

        // 2–4. Stop, initialise the new cluster beside the old one, pg_upgrade (copy mode).
        do {
            _ = try oldServer.stop()
            steps.append("stopped the PostgreSQL \(old.majorVersion) server")
            try FileSystem.requireFreeSpace(at: configuration.home, bytes: FileSystem.size(of: data) + (200 << 20))
            let owner = user.map { (uid: $0.uid, gid: $0.gid) } ?? (uid: UInt32(geteuid()), gid: UInt32(getegid()))
            for directory in [newData, workDirectory] {
                guard try FileSystem.createDirectory(directory, mode: 0o700) else {
                    throw BackupError(.fileSystem, "\(directory) already exists; a previous upgrade may have left it. Move it aside and run the upgrade again.")
                }
                try FileSystem.secureDirectory(directory, owner: owner, mode: 0o700, created: true, ownerName: user?.name ?? "this user")
            }
            let checksums = try Self.checksumsEnabled(data, old: old, user: user)
            var initdbArguments: [String] = []
            if checksums { initdbArguments.append("--data-checksums") } else if new.majorVersion >= 18 { initdbArguments.append("--no-data-checksums") }
            try await newServer.initializeCluster(installation: new, user: user, dataDirectory: newData, extraArguments: initdbArguments)
            steps.append("initialised a PostgreSQL \(new.majorVersion) cluster in \(newData) (data checksums \(checksums ? "on" : "off"), as before)")
            let upgradeArguments = [
                "--old-bindir=\(old.binDirectory)", "--new-bindir=\(new.binDirectory)",
                "--old-datadir=\(data)", "--new-datadir=\(newData)",
                "--username=\(configuration.superuser)", "--socketdir=\(workDirectory)", "--copy",
            ]
            try Self.pgUpgrade(tools: tools, upgradeArguments + ["--check"], in: workDirectory, user: user, doing: "pg_upgrade --check")
            steps.append("pg_upgrade --check passed")
            try Self.pgUpgrade(tools: tools, upgradeArguments, in: workDirectory, user: user, doing: "pg_upgrade")
            steps.append("pg_upgrade copied the cluster into \(newData)")
            try FileManager.default.moveItem(atPath: data, toPath: keptData)
            try FileManager.default.moveItem(atPath: newData, toPath: data)
            steps.append("kept the old data directory as \(keptData)")
        } catch {
            try? FileManager.default.removeItem(atPath: newData)
            try? FileManager.default.removeItem(atPath: workDirectory)
            if !FileManager.default.fileExists(atPath: data), FileManager.default.fileExists(atPath: keptData) {
                try? FileManager.default.moveItem(atPath: keptData, toPath: data)
            }
            let restarted = wasRunning ? (try? await oldServer.start(installIfNeeded: false)) != nil : false
            throw BackupError(.upgradeFailed, "The major upgrade stopped before the new cluster was put in place: \(Self.reason(error)) The PostgreSQL \(old.majorVersion) cluster in \(data) is as it was\(restarted ? " and running again" : ""); the backup in \(backupDirectory) is complete.", details: (error as? BackupError)?.details)
        }

        // 5–6. Start on the new binaries, update extensions, refresh statistics, check the chambers.
        do {
            try ClusterBinaries.record(new, kind: "major-upgrade", configuration: configuration)
            let running = try await newServer.start(installIfNeeded: false)
            steps.append("started PostgreSQL \(new.version) (pid \(running.pid))")
            let admin = newServer.url.with(database: "postgres")
            let script = workDirectory + "/update_extensions.sql"
            if FileManager.default.fileExists(atPath: script) {
                _ = try await tools.run("psql", ["--no-psqlrc", "--set=ON_ERROR_STOP=1", "--file=\(script)"], connectingTo: admin, doing: "Updating extensions")
                steps.append("updated extensions (pg_upgrade's update_extensions.sql)")
            }
            let analyze = new.majorVersion >= 18 ? ["--all", "--analyze-in-stages", "--missing-stats-only"] : ["--all", "--analyze-in-stages"]
            _ = try await tools.run("vacuumdb", analyze, connectingTo: admin, doing: "Refreshing planner statistics")
            steps.append("refreshed planner statistics (vacuumdb \(analyze.joined(separator: " ")))")
            let tablesAfter = try await PhylacteryClient.withClient(configuration: .init(url: newServer.url.with(database: backup.database), options: clientOptions), logger: self.logger) { client in
                try await client.rows("""
                    SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(\(backup.chambers.map(\.chamber)))
                    """).first?.decode(Int.self) ?? -1
            }
            guard tablesAfter == tablesBefore else {
                throw BackupError(.upgradeFailed, "the upgraded database \(backup.database) has \(tablesAfter) tables in its chambers, the backup \(tablesBefore)")
            }
            steps.append("checked \(backup.database): \(tablesAfter) tables in its chambers, as in the backup")
            if !wasRunning {
                _ = try newServer.stop()
                steps.append("stopped the server again (it was not running before)")
            }
            try? FileManager.default.removeItem(atPath: workDirectory)
            return MajorUpgrade(from: old, to: new, backupDirectory: backupDirectory, backup: backup, oldDataDirectory: keptData, pid: wasRunning ? running.pid : nil, steps: steps)
        } catch {
            _ = try? newServer.stop()
            let failed = "\(configuration.home)/data.failed-upgrade-\(stamp)"
            try? FileManager.default.moveItem(atPath: data, toPath: failed)
            try? FileManager.default.moveItem(atPath: keptData, toPath: data)
            _ = try? ClusterBinaries.record(old, kind: "changed", configuration: configuration)
            let restarted = wasRunning ? (try? await oldServer.start(installIfNeeded: false)) != nil : false
            throw BackupError(.upgradeFailed, "The upgraded cluster did not pass: \(Self.reason(error)) The PostgreSQL \(old.majorVersion) directory was put back in \(data)\(restarted ? " and started" : ""); the failed one is in \(failed), the backup in \(backupDirectory).", details: (error as? BackupError)?.details)
        }
    }

    /// Runs pg_upgrade as the server user from `directory` (it writes its scripts and the servers'
    /// sockets there, and must be able to enter the current directory).
    static func pgUpgrade(tools: PostgresTools, _ arguments: [String], in directory: String, user: ServerUser?, doing what: String) throws(BackupError) {
        let program = try tools.path("pg_upgrade")
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("PG") }
        environment["LC_ALL"] = "C"
        let outcome: Subprocess.Outcome
        do {
            outcome = try Subprocess.run("/usr/bin/env", ["-C", directory, program] + arguments, as: user?.name, environment: environment)
        } catch {
            throw BackupError(.toolFailed, "Could not run pg_upgrade: \(error).")
        }
        guard outcome.succeeded else {
            let lines = outcome.output.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            let reason = lines.last(where: { $0.contains("fatal") || $0.contains("Failure") || $0.contains("error") }) ?? lines.last ?? "exit status \(outcome.status)"
            throw BackupError(.toolFailed, "\(what) failed: \(reason)", details: outcome.output)
        }
    }

    /// Whether the old cluster has data checksums (pg_upgrade needs the new one to match).
    static func checksumsEnabled(_ data: String, old: Installation, user: ServerUser?) throws(BackupError) -> Bool {
        let outcome: Subprocess.Outcome
        do {
            var environment = ProcessInfo.processInfo.environment
            environment["LC_ALL"] = "C"
            outcome = try Subprocess.run(old.tool("pg_controldata"), ["-D", data], as: user?.name, environment: environment)
        } catch {
            throw BackupError(.toolFailed, "Could not run pg_controldata: \(error).")
        }
        guard outcome.succeeded, let line = outcome.output.split(separator: "\n").first(where: { $0.hasPrefix("Data page checksum version:") }) else {
            throw BackupError(.toolFailed, "pg_controldata could not read \(data): \(outcome.output.split(separator: "\n").last ?? "")", details: outcome.output)
        }
        return line.split(separator: ":").last?.trimmingCharacters(in: .whitespaces) != "0"
    }

    static func stamp() -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: Date())
        return String(format: "%04d%02d%02dT%02d%02d%02d", c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!)
    }

    static func reason(_ error: any Error) -> String {
        let text = (error as? BackupError)?.message ?? (error as? EmbeddedServerError)?.message ?? String(describing: error)
        return text.hasSuffix(".") ? text : text + "."
    }
}
