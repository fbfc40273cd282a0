import Foundation
import HTTPTypes
import HummingbirdTesting
import Phylactery
import PhylacteryConsole
import PhylacteryBackup
import PhylacteryEmbedded
import PhylacteryTestSupport
import PostgresNIO
import Testing

/// What protects backups: a damaged backup is found and refused, encryption keeps every page (WAL
/// included) out of the backup directory in plain text, and an archive that stops working is visible.
/// These run the `phylactery` executable, as an operator would.
@Suite(.serialized) struct BackupSafetyTests {
    /// A console page over the fixture's server with its backups, through the router in-process.
    static func consolePage(_ fixture: BackupFixture, _ path: String) async throws -> String {
        try await fixture.withClient { client in
            var console = try PhylacteryConsole(client: client, configuration: ConsoleConfiguration(home: fixture.server.configuration.home),
                                                access: ConsoleAccess(token: String(repeating: "ab", count: 32)))
            console.backups = try Crypt.open(fixture.server)
            return try await console.application().test(.router) { http in
                let response = try await http.execute(uri: path, method: .get, headers: [.authorization: "Bearer " + String(repeating: "ab", count: 32)])
                #expect(response.status == .ok, "\(String(buffer: response.body))")
                return String(buffer: response.body)
            }
        }
    }

    @Test("a byte flipped in a stored backup is found by db backups --verify and refused by db restore, naming the file")
    func corruptedBackupIsRefused() async throws {
        let fixture = try await BackupFixture.make("corrupt")
        defer { fixture.cleanUp() }
        try await fixture.withClient { client in
            try await client.execute("CREATE TABLE public.ledger_lines (id int PRIMARY KEY, note text)")
            try await client.execute("INSERT INTO public.ledger_lines SELECT g, 'line ' || g FROM generate_series(1, 20000) g")
            // The chambers, for the console's pages below.
            _ = try await Migrator(client: client, federation: try Federation.standard(extensions: [])).auto()
        }
        let backup = fixture.phylactery(["db", "backup"])
        #expect(backup.status == 0, "\(backup.output)")
        let label = try #require(try Crypt.open(fixture.server).catalog().backups.first?.label)

        let clean = fixture.phylactery(["db", "backups", "--verify"])
        #expect(clean.status == 0, "\(clean.output)")
        #expect(clean.output.contains("ok      \(label)"))
        // The verification is recorded in the catalog, and the overview names it as the last one.
        let passed = try #require(try Crypt.open(fixture.server).catalog()[label]?.lastVerification)
        #expect(passed.passed && passed.problems.isEmpty && passed.label == label)
        #expect(try Crypt.open(fixture.server).catalog()[label]?.verifiedAt == passed.at)
        #expect(try await Crypt.open(fixture.server).overview().lastVerification == passed)
        // The console's Backups page and overview show the backup and its verification.
        let page = try await Self.consolePage(fixture, "/backups")
        #expect(page.contains("<tr class=\"backup-row\"><td>\(label)</td>"), "\(page)")
        #expect(page.contains("<p class=\"health-ok\">\(label) at ") && page.contains(": passed</p>"), "\(page)")
        #expect(try await Self.consolePage(fixture, "/").contains("last base backup \(label), ended "))

        // One byte in the middle of the compressed data files.
        let archive = fixture.backupDirectory + "/base/\(label)/base.tar.gz"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: archive))
        bytes[bytes.count / 2] ^= 0x01
        try bytes.write(to: URL(fileURLWithPath: archive))

        let verify = fixture.phylactery(["db", "backups", "--verify"])
        #expect(verify.status == 1, "\(verify.output)")
        #expect(verify.output.contains("FAILED  \(label)"), "\(verify.output)")
        #expect(verify.output.contains("base/\(label)/base.tar.gz has changed since it was stored"), "\(verify.output)")
        let failed = try #require(try Crypt.open(fixture.server).catalog()[label]?.lastVerification)
        #expect(!failed.passed && failed.at > passed.at)
        #expect(failed.problems.contains { $0.contains("base/\(label)/base.tar.gz has changed since it was stored") })
        #expect(try Crypt.open(fixture.server).catalog()[label]?.verifiedAt == passed.at, "a failed verification keeps the last passing time")
        #expect(try await Crypt.open(fixture.server).overview().lastVerification == failed)
        let failedPage = try await Self.consolePage(fixture, "/backups")
        #expect(failedPage.contains("<p class=\"health-failed\">\(label) at ") && failedPage.contains("has changed since it was stored"), "\(failedPage)")
        #expect(try await Self.consolePage(fixture, "/").contains("<p id=\"backup-state\" class=\"health-failed\">"))
        #expect(verify.output.contains("in archive \"base.tar.gz\"") || verify.output.contains("could not decompress") || verify.output.contains("does not unpack"), "pg_verifybackup's own finding: \(verify.output)")

        // A restore refuses a running server, and a home a runtime or worker holds, saying how to stop them.
        let running = fixture.phylactery(["db", "restore", "--latest"])
        #expect(running.status == 1 && running.output.contains("Stop it first: phylactery db stop"), "\(running.output)")
        #expect(fixture.phylactery(["db", "stop"]).status == 0)
        let runtime = try fixture.server.holdUsage(for: "a test runtime")
        let held = await #expect(throws: BackupError.self) { try await Restore(crypt: try Crypt.open(fixture.server)).run(to: .latest) }
        #expect(held?.code == .serverState && held?.message.contains("a runtime or worker is using it") == true, "\(String(describing: held))")
        #expect(held?.message.contains("Stop it first (SIGTERM") == true)
        runtime.release()

        let restore = fixture.phylactery(["db", "restore", "--latest"])
        #expect(restore.status == 1, "\(restore.output)")
        #expect(restore.output.contains("Backup \(label) is damaged, so nothing was restored"), "\(restore.output)")
        #expect(restore.output.contains("base.tar.gz"), "\(restore.output)")
        #expect(Restore.previousDataDirectories(of: fixture.server).isEmpty, "the data directory was not touched")
        #expect(fixture.phylactery(["db", "start"]).status == 0)
        let rows = try await fixture.withClient { try await $0.query("SELECT count(*) FROM public.ledger_lines").collect().first!.decode(Int.self) }
        #expect(rows == 20000)
    }

    @Test("encrypted backups: no plaintext page in the backup directory, WAL included; restore works with the key and fails clearly without it or with another")
    func encryptedBackups() async throws {
        let home = try TestDatabase.temporaryHome("crypt")
        let backups = try TestDatabase.temporaryHome("cryptbk")
        try FileManager.default.removeItem(atPath: backups)
        let keys = try TestDatabase.temporaryHome("keys")
        let server = EmbeddedServer(configuration: .init(home: home, pgBinOverride: try TestDatabase.installedBinaries()))
        let fixture = BackupFixture(server: server, backupDirectory: backups)
        defer {
            fixture.cleanUp()
            try? FileManager.default.removeItem(atPath: keys)
        }
        let configure = fixture.phylactery(["db", "archive", "--to", backups, "--new-key", keys + "/backup.key"])
        #expect(configure.status == 0, "\(configure.output)")
        #expect(configure.output.contains("encrypted (key "), "\(configure.output)")
        #expect(fixture.phylactery(["db", "start"]).status == 0)

        let marker = "PLAINTEXT-MARKER-\(UInt32.random(in: .min ... .max))"
        try await fixture.withClient { client in
            try await client.execute("CREATE TABLE public.secrets (id int PRIMARY KEY, body text)")
            try await client.execute("INSERT INTO public.secrets SELECT g, \(marker) || ' #' || g FROM generate_series(1, 5000) g")
        }
        let backup = fixture.phylactery(["db", "backup"])
        #expect(backup.status == 0, "\(backup.output)")
        #expect(backup.output.contains("encrypted (key"), "\(backup.output)")
        try await fixture.withClient { client in
            try await client.execute("INSERT INTO public.secrets SELECT g, \(marker) || ' after #' || g FROM generate_series(5001, 6000) g")
            try await fixture.archiveCurrentWAL(client)
        }
        let archived = try FileManager.default.contentsOfDirectory(atPath: backups + "/wal")
        #expect(!archived.isEmpty && archived.allSatisfy { $0.hasSuffix(".enc") }, "\(archived)")
        #expect(try directoryContains(backups, marker: marker).isEmpty, "no page of the cluster in plain text")
        #expect(try directoryContains(backups, marker: "PG_VERSION").isEmpty, "not even file names of the cluster")

        // The home is lost: only the backup directory and the operator's key remain.
        #expect(fixture.phylactery(["db", "stop"]).status == 0)
        try FileManager.default.removeItem(atPath: home + "/backup/wal.key")
        let withoutKey = fixture.phylactery(["db", "restore", "--latest"])
        #expect(withoutKey.status == 1, "\(withoutKey.output)")
        #expect(withoutKey.output.contains("encrypted; pass the key file (--key-file KEY)"), "\(withoutKey.output)")
        _ = try BackupKey.generate(at: keys + "/other.key")
        let wrongKey = fixture.phylactery(["db", "restore", "--latest", "--key-file", keys + "/other.key"])
        #expect(wrongKey.status == 1, "\(wrongKey.output)")
        #expect(wrongKey.output.contains("was encrypted with key") && wrongKey.output.contains("not with the key given"), "\(wrongKey.output)")
        #expect(Restore.previousDataDirectories(of: server).isEmpty)

        let restore = fixture.phylactery(["db", "restore", "--latest", "--key-file", keys + "/backup.key"])
        #expect(restore.status == 0, "\(restore.output)")
        #expect(restore.output.contains("Reanimated"), "\(restore.output)")
        let count = try await fixture.withClient { try await $0.query("SELECT count(*) FROM public.secrets WHERE body LIKE \(marker + "%")").collect().first!.decode(Int.self) }
        #expect(count == 6000)
        // The restored server archives again, encrypted, with the key put back.
        try await fixture.withClient { try await fixture.archiveCurrentWAL($0) }
        #expect(try directoryContains(backups, marker: marker).isEmpty)
    }

    @Test("archiving that fails is visible: status, a failed doctor check once a segment waited longer than the bound, and healthy again once repaired")
    func archiveFailureIsVisible() async throws {
        let fixture = try await BackupFixture.make("archfail", archiveTimeout: .seconds(2))
        defer { fixture.cleanUp() }
        let wal = fixture.backupDirectory + "/wal"
        try await fixture.withClient { try await fixture.archiveCurrentWAL($0) }
        #expect(await WALArchiving.status(of: fixture.server).check.status == .ok)

        // The drive goes away.
        try FileManager.default.moveItem(atPath: wal, toPath: wal + "-away")
        try await fixture.withClient { client in
            try await client.execute("CREATE TABLE public.pending (v int)")
            try await client.execute("INSERT INTO public.pending VALUES (1)")
            _ = try await client.query("SELECT pg_switch_wal()").collect()
        }
        try await eventually("archiving to fail") { await WALArchiving.status(of: fixture.server).isFailing }
        try await eventually("a segment to wait longer than the 2 s bound") { await WALArchiving.status(of: fixture.server).check.status == .failed }
        let status = await WALArchiving.status(of: fixture.server)
        #expect(status.check.detail.contains("not archived"), "\(status.check.detail)")
        #expect(status.failedCount > 0)
        let doctor = fixture.phylactery(["doctor"])
        #expect(doctor.status == 1, "\(doctor.output)")
        #expect(doctor.output.contains("[FAIL] backups:"), "\(doctor.output)")
        let dbStatus = fixture.phylactery(["db", "status"])
        #expect(dbStatus.output.contains("backups:        FAILED:"), "\(dbStatus.output)")

        // It comes back; the server catches up by itself.
        try FileManager.default.moveItem(atPath: wal + "-away", toPath: wal)
        try await eventually("archiving to catch up") {
            let status = await WALArchiving.status(of: fixture.server)
            return status.waitingSegments == 0 && status.check.status == .ok
        }
        #expect(fixture.phylactery(["doctor"]).status == 0)
    }
}
