import Foundation
import Phylactery
import PhylacteryBackup
import PhylacteryEmbedded
import PhylacteryTestSupport
import PostgresNIO
#if canImport(Glibc)
import Glibc
#endif

/// A private embedded server in a temporary home with a backup directory beside it, started with WAL
/// archiving configured (so `archive_mode` is on from the first start).
struct BackupFixture {
    let server: EmbeddedServer
    let backupDirectory: String

    /// The `phylactery` executable built next to the test bundle (the server runs it to encrypt WAL).
    static var executable: String {
        let binDirectory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
        return ProcessInfo.processInfo.environment["PHYLACTERY_CLI"] ?? binDirectory + "/phylactery"
    }

    static func make(_ label: String, archiveTimeout: Duration = .seconds(60), key: BackupKey? = nil, start: Bool = true) async throws -> BackupFixture {
        let home = try TestDatabase.temporaryHome(label)
        let backups = try TestDatabase.temporaryHome(label + "bk")
        try FileManager.default.removeItem(atPath: backups)  // configure creates it, for the server's user
        let server = EmbeddedServer(configuration: .init(home: home, pgBinOverride: try TestDatabase.installedBinaries()))
        let settings = BackupSettings(directory: backups, archiveTimeout: archiveTimeout, encrypted: key != nil,
                                      archiveHelper: key == nil ? nil : [executable, "db", "archive-wal"])
        try await WALArchiving.configure(settings, for: server, key: key)
        if start { _ = try await server.start(installIfNeeded: false) }
        return BackupFixture(server: server, backupDirectory: backups)
    }

    /// The environment that points the `phylactery` CLI at this home.
    var environment: [String: String] {
        ["PHYLACTERY_HOME": server.configuration.home, "PHYLACTERY_PG_BIN": server.configuration.pgBinOverride ?? "", "PHYLACTERY_DATABASE_URL": ""]
    }

    func cleanUp() {
        _ = try? server.stop()
        try? FileManager.default.removeItem(atPath: server.configuration.home)
        try? FileManager.default.removeItem(atPath: backupDirectory)
    }

    func withClient<R: Sendable>(_ body: (PhylacteryClient) async throws -> R) async throws -> R {
        try await PhylacteryClient.withClient(configuration: .init(url: server.url), body)
    }

    /// The server's clock now, exactly (text, so no microsecond is lost on the way).
    static func serverNow(_ client: PhylacteryClient) async throws -> RecoveryTime {
        let text = try await client.query("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")
            .collect().first!.decode(String.self)
        return try RecoveryTime(parsing: text)
    }

    /// Forces a WAL segment switch and waits (bounded) until the segment is archived.
    func archiveCurrentWAL(_ client: PhylacteryClient) async throws {
        let segment = try await client.query("SELECT pg_walfile_name(pg_switch_wal())").collect().first!.decode(String.self)
        try await eventually("segment \(segment) archived", timeout: .seconds(60)) {
            let status = await WALArchiving.status(of: server)
            return (status.lastArchived ?? "") >= segment
        }
    }

    /// Runs the CLI against this home.
    func phylactery(_ arguments: [String], extra: [String: String] = [:]) -> (status: Int32, output: String) {
        var environment = ProcessInfo.processInfo.environment
        environment.merge(self.environment) { $1 }
        environment.merge(extra) { $1 }
        do {
            let outcome = try Subprocess.run(Self.executable, arguments, environment: environment)
            return (outcome.status, outcome.output)
        } catch {
            return (127, "could not run \(Self.executable): \(error)")
        }
    }
}

/// Whether `marker` occurs in any file below `directory`, in its bytes or — for gzip files — in its
/// decompressed contents.
func directoryContains(_ directory: String, marker: String) throws -> [String] {
    var found: [String] = []
    let needle = Data(marker.utf8)
    for case let relative as String in FileManager.default.enumerator(atPath: directory) ?? FileManager.DirectoryEnumerator() {
        let path = directory + "/" + relative
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue,
              let data = FileManager.default.contents(atPath: path) else { continue }
        if data.range(of: needle) != nil { found.append(relative); continue }
        if data.starts(with: [0x1f, 0x8b]) {
            let outcome = try Subprocess.run("/bin/sh", ["-c", "gzip -dc \"$0\" | grep -c -a -F \"$1\" || true", path, marker])
            if (Int(outcome.output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0) > 0 { found.append(relative + " (decompressed)") }
        }
    }
    return found
}
