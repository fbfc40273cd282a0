import Foundation
import Phylactery
import PhylacteryBackup
import PhylacteryEmbedded
import PhylacteryTestSupport
import PostgresNIO
import Testing

/// Upgrades of the server binaries, each on its own server in a temporary home. Serialized: servers
/// and pg_upgrade are heavy on a 2-core machine.
@Suite(.serialized) struct ServerUpgradeTests {
    static func cleanUp(_ home: String, servers: [EmbeddedServer]) {
        for server in servers { _ = try? server.stop() }
        try? FileManager.default.removeItem(atPath: home)
    }

    /// The cluster's system identifier: changes only when `initdb` runs again.
    static func systemIdentifier(_ url: DatabaseURL) async throws -> (Int64, Int) {
        try await PhylacteryClient.withClient(configuration: .init(url: url, options: Self.plainOptions)) { client in
            let id = try await client.query("SELECT system_identifier FROM pg_control_system()").collect().first?.decode(Int64.self) ?? 0
            let rows = try await client.query("SELECT count(*) FROM public.kept").collect().first?.decode(Int.self) ?? -1
            return (id, rows)
        }
    }

    static var plainOptions: PhylacteryClient.Configuration.Options {
        var options = PhylacteryClient.Configuration.Options()
        options.createsChambers = false
        options.maximumConnections = 2
        return options
    }

    @Test func aNewerMinorVersionRestartsTheClusterOnItsBinariesWithoutInitdb() async throws {
        let home = try TestDatabase.temporaryHome("minor")
        let server = EmbeddedServer(configuration: .init(home: home))
        defer { Self.cleanUp(home, servers: [server]) }
        let oldBin = try TestDatabase.copyInstalledWheel(into: home, as: "18.6.3")
        let first = try await server.start(installIfNeeded: false)
        #expect(first.installation.binDirectory == oldBin)
        try await PhylacteryClient.withClient(configuration: .init(url: server.url, options: Self.plainOptions)) { client in
            try await client.execute("CREATE TABLE public.kept (note text)")
            try await client.execute("INSERT INTO public.kept VALUES ('written on 18.6.3'), ('and this')")
        }
        let (identifier, _) = try await Self.systemIdentifier(server.url)
        #expect(ClusterBinaries.read(server.configuration)?.wheelVersion == "18.6.3")
        #expect(ClusterBinaries.read(server.configuration)?.history.map(\.kind) == ["initdb"])

        // A newer minor version appears beside it; installing alone never moves the cluster.
        let newBin = try TestDatabase.copyInstalledWheel(into: home, as: "18.6.4")
        #expect(server.configuration.installedVersions == ["18.6.3", "18.6.4"])
        #expect(try Installation.locate(server.configuration)?.binDirectory == oldBin, "the recorded version wins")

        let switched = try await server.switchBinaries(to: "18.6.4")
        #expect(switched.restarted && !switched.alreadyCurrent)
        #expect(switched.from?.binDirectory == oldBin && switched.to.binDirectory == newBin)
        let pid = try #require(switched.pid)
        #expect(pid != first.pid)
        #expect(ClusterBinaries.runningBinDirectory(pid: pid) == newBin)
        #expect(try String(contentsOfFile: home + "/data/PG_VERSION", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) == "18")
        let (sameIdentifier, rows) = try await Self.systemIdentifier(server.url)
        #expect(sameIdentifier == identifier, "no initdb: the same cluster")
        #expect(rows == 2)
        let record = try #require(ClusterBinaries.read(server.configuration))
        #expect(record.wheelVersion == "18.6.4" && record.binDirectory == newBin && record.majorVersion == 18)
        #expect(record.history.map(\.kind) == ["initdb", "minor-upgrade"])
        #expect(record.history.last?.from == oldBin)

        // Starting again keeps the new binaries; moving back needs explicit consent.
        #expect(try await server.start(installIfNeeded: false).wasAlreadyRunning)
        let again = try await server.switchBinaries(to: "18.6.4")
        #expect(again.alreadyCurrent)
        let downgrade = await #expect(throws: EmbeddedServerError.self) { try await server.switchBinaries(to: "18.6.3") }
        #expect(downgrade?.code == .versionMismatch)
        #expect(ClusterBinaries.runningBinDirectory(pid: pid) == newBin)
        let back = try await server.switchBinaries(to: "18.6.3", allowingDowngrade: true)
        #expect(back.restarted && ClusterBinaries.runningBinDirectory(pid: back.pid ?? 0) == oldBin)
        #expect(try await Self.systemIdentifier(server.url).0 == identifier)

        // A stopped cluster is switched on record and starts on the new binaries next time.
        _ = try server.stop()
        let onRecord = try await server.switchBinaries(to: "18.6.4")
        #expect(!onRecord.restarted)
        let restarted = try await server.start(installIfNeeded: false)
        #expect(ClusterBinaries.runningBinDirectory(pid: restarted.pid) == newBin)
    }

    static let postgres15 = "/usr/lib/postgresql/15/bin"

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/lib/postgresql/15/bin/pg_upgrade"), "needs PostgreSQL 15's server binaries (Debian's postgresql-15) to make a cluster of another major version"))
    func aMajorUpgradeIsRefusedWithThePlanAndRunsOnlyAfterAVerifiedBackup() async throws {
        let home = try TestDatabase.temporaryHome("major")
        let old = EmbeddedServer(configuration: .init(home: home, pgBinOverride: Self.postgres15))
        let plain = EmbeddedServer(configuration: .init(home: home))
        defer { Self.cleanUp(home, servers: [old, plain]) }
        let newBin = try TestDatabase.copyInstalledWheel(into: home, as: Distribution.wheelVersion)

        // A cluster made by PostgreSQL 15, with rows in two chambers.
        let first = try await old.start(installIfNeeded: false)
        #expect(first.installation.majorVersion == 15)
        try await PhylacteryClient.withClient(configuration: .init(url: old.url, options: Self.plainOptions)) { client in
            try await client.execute("CREATE TABLE public.kept (note text)")
            try await client.execute("INSERT INTO public.kept SELECT 'row ' || i FROM generate_series(1, 100) AS i")
            try await client.execute("CREATE SCHEMA verbatim")
            try await client.execute("CREATE TABLE verbatim.notes (id int PRIMARY KEY, body jsonb)")
            try await client.execute("INSERT INTO verbatim.notes VALUES (1, '{\"kept\": true}')")
        }
        #expect(ClusterBinaries.read(old.configuration)?.majorVersion == 15)

        // The PostgreSQL 18 binaries refuse the cluster and say how to upgrade it.
        _ = try old.stop()
        let mismatch = await #expect(throws: EmbeddedServerError.self) { try await plain.start(installIfNeeded: false) }
        #expect(mismatch?.code == .versionMismatch)
        #expect(mismatch?.message.contains("phylactery db upgrade --backup-to DIR") == true, "\(mismatch?.message ?? "")")
        #expect(mismatch?.message.contains("pg_upgrade") == true)
        _ = try await old.start(installIfNeeded: false)

        // Without a backup directory, or with one that is in use, nothing happens.
        let upgrade = ServerUpgrade(configuration: plain.configuration)
        let noBackup = await #expect(throws: BackupError.self) { try await upgrade.run(.init()) }
        #expect(noBackup?.code == .upgradeRefused)
        #expect(noBackup?.message.contains("--backup-to") == true && noBackup?.message.contains("Nothing was changed") == true)
        let used = home + "/used-backup"
        try FileManager.default.createDirectory(atPath: used, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: used + "/something", contents: Data())
        let inUse = await #expect(throws: BackupError.self) { try await upgrade.run(.init(backupDirectory: used)) }
        #expect(inUse?.code == .targetNotEmpty)
        #expect(try String(contentsOfFile: home + "/data/PG_VERSION", encoding: .utf8).hasPrefix("15"))
        guard case .running(let stillPid, _) = old.pidFileState() else { Issue.record("the PostgreSQL 15 server should still run"); return }
        #expect(ClusterBinaries.runningBinDirectory(pid: stillPid) == Self.postgres15)

        // With a backup directory: backup, pg_upgrade, swap, start on 18.
        let backupDirectory = home + "/before-18"
        guard case .major(let done) = try await upgrade.run(.init(backupDirectory: backupDirectory)) else {
            Issue.record("expected a major upgrade")
            return
        }
        #expect(done.from.majorVersion == 15 && done.to.binDirectory == newBin)
        #expect(done.backup.chambers.map(\.chamber) == ["public", "verbatim"])
        #expect(try await LogicalBackup.verify(backupDirectory, tools: try PostgresTools(binDirectory: newBin)).database == "phylactery")
        #expect(try String(contentsOfFile: home + "/data/PG_VERSION", encoding: .utf8).hasPrefix("18"))
        #expect(try String(contentsOfFile: done.oldDataDirectory + "/PG_VERSION", encoding: .utf8).hasPrefix("15"), "the old cluster is kept")
        let pid = try #require(done.pid)
        #expect(ClusterBinaries.runningBinDirectory(pid: pid) == newBin)
        let record = try #require(ClusterBinaries.read(plain.configuration))
        #expect(record.majorVersion == 18 && record.history.last?.kind == "major-upgrade")
        let (version, rows, note) = try await PhylacteryClient.withClient(configuration: .init(url: plain.url, options: Self.plainOptions)) { client in
            (try await client.query("SELECT current_setting('server_version')").collect().first?.decode(String.self) ?? "",
             try await client.query("SELECT count(*) FROM public.kept").collect().first?.decode(Int.self) ?? -1,
             try await client.query("SELECT body->>'kept' FROM verbatim.notes WHERE id = 1").collect().first?.decode(String.self) ?? "")
        }
        #expect(version.hasPrefix("18.") && rows == 100 && note == "true")
        // The restarted server is the one `db start` knows.
        #expect(try await plain.start(installIfNeeded: false).wasAlreadyRunning)
    }
}
