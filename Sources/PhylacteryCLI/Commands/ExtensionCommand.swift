import ArgumentParser
import Foundation
import Phylactery
import PhylacteryBackup
import PhylacteryEmbedded

/// `phylactery extension …`: one extension's tables, exported, imported or purged.
struct ExtensionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "extension",
        abstract: "Export, import and purge the tables of one extension.",
        discussion: """
            An export is one file: a zip of manifest.json (owner, version, registry rows, per table its columns, \
            row count and SHA-256) and one COPY text entry per table. This binary registers \
            \(Extensions.all.map(\.slug).joined(separator: ", ")).
            """,
        subcommands: [Export.self, Import.self, Purge.self, Verify.self]
    )

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write an owner's tables and registry rows to a new file (registered or not).")

        @Argument(help: "The extension's slug.")
        var slug: String

        @Option(name: .customLong("to"), help: "The export file to create.")
        var file: String

        func run() async throws {
            try await reportingErrors {
                let manifest = try await ExtensionCommand.withClient { try await ExtensionData(client: $0).export(slug, to: file) }
                print("Exported \(manifest.owner) \(manifest.ownerVersion ?? "") from \(manifest.database) into \(file): \(Printer.tableRows(manifest.tables.map { ($0.qualifiedName, $0.rows) })).")
            }
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Load an export into this database: migrate the owner's tables, check their shape, load every table in one transaction.")

        @Argument(help: "The export file.")
        var file: String

        func run() async throws {
            try await reportingErrors {
                let outcome = try await ExtensionCommand.withClient { try await ExtensionData(client: $0).importArchive(at: file, federation: try Extensions.federation()) }
                if let migration = outcome.migration {
                    print("Migrated \(outcome.manifest.owner) first (revision \(migration.revision), \(migration.up.count) statements).")
                }
                print("Imported \(outcome.manifest.owner) \(outcome.manifest.ownerVersion ?? ""): \(Printer.tableRows(outcome.rows)).")
            }
        }
    }

    struct Purge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Drop the tables and registry rows of an owner that is no longer registered.",
            discussion: """
                Refused for a registered owner. With --to FILE the tables are exported and the file read back \
                first, in the same transaction; --without-export is the explicit consent to drop without one. \
                The purge is recorded in the migration ledger (migrate history) and as the fact \
                core.extensions / <slug>.purged.
                """)

        @Argument(help: "The owner's slug.")
        var slug: String

        @Option(name: .customLong("to"), help: "Export the tables into this new file first.")
        var file: String?

        @Flag(help: "Drop the tables without exporting them first.")
        var withoutExport = false

        func validate() throws {
            guard (file == nil) != (!withoutExport) else {
                throw ValidationError("Give --to FILE (export first) or --without-export (drop without an export), not both and not neither.")
            }
        }

        func run() async throws {
            try await reportingErrors {
                let safeguard: ExtensionData.PurgeSafeguard = file.map { .exportTo($0) } ?? .withoutExport
                let outcome = try await ExtensionCommand.withClient { try await ExtensionData(client: $0).purge(slug, federation: try Extensions.federation(), safeguard: safeguard) }
                if let export = outcome.export, let file {
                    print("Exported \(export.owner) into \(file) (sha256 \(outcome.exportSHA256 ?? "")) and read it back.")
                }
                print("Purged \(outcome.owner): dropped \(Printer.tableRows(outcome.tables)).")
                print("Recorded as ledger entry \(outcome.ledgerEntry.revision)\(outcome.recordedFact ? " and fact \(ExtensionData.factNamespace)/\(outcome.owner).purged" : "").")
            }
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Read an export back and check every table against its manifest (no database needed).")

        @Argument(help: "The export file.")
        var file: String

        func run() async throws {
            try await reportingErrors {
                let manifest = try ExtensionData.verify(file)
                print("\(file): \(manifest.owner) \(manifest.ownerVersion ?? ""), exported \(manifest.exportedAt.formatted(.iso8601)) from \(manifest.database) (PostgreSQL \(manifest.serverVersion)): \(Printer.tableRows(manifest.tables.map { ($0.qualifiedName, $0.rows) })). Every entry matches.")
            }
        }
    }

    static func withClient<R: Sendable>(_ body: (PhylacteryClient) async throws -> R) async throws -> R {
        try await PhylacteryClient.withClient(configuration: .init(url: try EmbeddedServer.resolveDatabaseURL()), body)
    }
}

extension Printer {
    /// `public.tasks_items (3 rows), …`, or `no tables`.
    static func tableRows(_ tables: [(String, Int)]) -> String {
        tables.isEmpty ? "no tables" : tables.map { "\($0.0) (\($0.1) row\($0.1 == 1 ? "" : "s"))" }.joined(separator: ", ")
    }
}
