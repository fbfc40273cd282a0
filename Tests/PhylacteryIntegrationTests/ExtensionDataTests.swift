import Foundation
import Phylactery
import PhylacteryBackup
import PhylacteryTestSupport
import PostgresNIO
import Testing

/// Export, import and purge of one extension's tables, against the test server.
@Suite struct ExtensionDataTests {
    struct Detail: Codable, Sendable, Hashable {
        var tags: [String]
        var text: String
    }

    @Model(table: "scrolls_entries")
    struct ScrollEntry: Hashable {
        @References(Workspace.self, onDelete: .cascade) var workspaceID: UUID
        var title: String
        var body: Detail
        var note: String?
        var score: Double
        var blob: [UInt8]
        var dueAt: Date?
        var amount: Decimal?
        @Column(type: .vector(3)) var embedding: Vector
    }

    /// Named so the registry lists it before the table it references: the export must reorder.
    @Model(table: "scrolls_annotations")
    struct Annotation: Hashable {
        @References(ScrollEntry.self, onDelete: .cascade) var entryID: UUID
        var text: String
    }

    struct Scrolls: PhylacteryExtension {
        let slug = "scrolls", version = "1.0.0"
        func initialize(_ context: ExtensionContext) throws {
            context.register(Annotation.self)
            context.register(ScrollEntry.self)
        }
    }

    /// The same tables as a later version would declare them: one more column.
    @Model(table: "scrolls_entries")
    struct ScrollEntryV2: Hashable {
        @References(Workspace.self, onDelete: .cascade) var workspaceID: UUID
        var title: String
        var body: Detail
        var note: String?
        var score: Double
        var blob: [UInt8]
        var dueAt: Date?
        var amount: Decimal?
        @Column(type: .vector(3)) var embedding: Vector
        var rating: Int32
    }

    struct ScrollsV2: PhylacteryExtension {
        let slug = "scrolls", version = "2.0.0"
        func initialize(_ context: ExtensionContext) throws {
            context.register(Annotation.self)
            context.register(ScrollEntryV2.self)
        }
    }

    static func exportPath(_ label: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("phyl-\(label)-\(UUID().uuidString.prefix(8)).zip").path
    }

    /// Migrates the core and Scrolls, and writes a workspace, entries (NULLs, tabs, newlines,
    /// backslashes, non-ASCII) and annotations.
    static func populate(_ client: PhylacteryClient, workspaceID: UUID = .v7()) async throws -> (Workspace, [ScrollEntry], [Annotation]) {
        _ = try await Migrator(client: client, federation: try Federation.standard(extensions: [Scrolls()])).auto()
        return try await client.transaction { tx in
            let workspace = try await tx.insert(Workspace(name: "scriptorium", id: workspaceID))
            let first = try await tx.insert(ScrollEntry(
                workspaceID: workspace.id, title: "tab\there, newline\nthere, backslash \\ and ünïcödé ✓",
                body: Detail(tags: ["a", "b\\c"], text: "{\"nested\": \"json\"}"), note: nil, score: 0.1 + 0.2,
                blob: [0, 9, 10, 13, 92, 255], dueAt: Date(timeIntervalSince1970: 1_800_000_000.123456), amount: Decimal(string: "12345.678900"),
                embedding: try Vector([1.5, -2.25, 1e-7])))
            let second = try await tx.insert(ScrollEntry(
                workspaceID: workspace.id, title: "\\N is not null", body: Detail(tags: [], text: ""), note: "\\.",
                score: -0.0, blob: [], dueAt: nil, amount: nil, embedding: try Vector([0, 0, 1])))
            var annotations: [Annotation] = []
            for (entry, text) in [(first, "one"), (first, "two"), (second, "three")] {
                annotations.append(try await tx.insert(Annotation(entryID: entry.id, text: text)))
            }
            return (workspace, [first, second], annotations)
        }
    }

    static func exists(_ table: String, in client: PhylacteryClient) async throws -> Bool {
        try await client.query("SELECT to_regclass(\(table)) IS NOT NULL").collect().first?.decode(Bool.self) ?? false
    }

    static func rows(_ table: String, in client: PhylacteryClient) async throws -> Int {
        try await client.query(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(table)")).collect().first?.decode(Int.self) ?? -1
    }

    @Test func exportThenImportIntoAnotherDatabaseGivesBackEveryRow() async throws {
        let file = Self.exportPath("scrolls")
        defer { try? FileManager.default.removeItem(atPath: file) }
        let (workspace, entries, annotations) = try await TestDatabase.withFreshDatabase("ext_source") { client in
            let (workspace, entries, annotations) = try await Self.populate(client)
            let manifest = try await ExtensionData(client: client).export("scrolls", to: file)
            #expect(manifest.owner == "scrolls" && manifest.ownerVersion == "1.0.0")
            #expect(manifest.tables.map(\.table) == ["scrolls_entries", "scrolls_annotations"], "the referenced table first")
            #expect(manifest.tables.map(\.rows) == [2, 3])
            #expect(Set(manifest.registry.map(\.model)) == ["Annotation", "ScrollEntry"])
            #expect(manifest.tables[0].columns.first { $0.name == "embedding" }?.type == "vector(3)")
            let stored = try await client.fetch(ScrollEntry.self, orderBy: "title")
            return (workspace, stored, try await client.fetch(Annotation.self, orderBy: "text"))
        }
        let verified = try ExtensionData.verify(file)
        #expect(verified.totalRows == 5)

        try await TestDatabase.withFreshDatabase("ext_target") { client in
            // The importing database has the core, and the workspace the entries belong to.
            _ = try await Migrator(client: client, federation: try Federation(core: Federation.coreModels)).auto()
            _ = try await client.insert(Workspace(name: "scriptorium", id: workspace.id))
            let federation = try Federation.standard(extensions: [Scrolls()])
            let outcome = try await ExtensionData(client: client).importArchive(at: file, federation: federation)
            #expect(outcome.migration != nil, "the owner's tables were migrated first")
            #expect(outcome.rows.map(\.rows) == [2, 3])
            #expect(try await client.fetch(ScrollEntry.self, orderBy: "title") == entries)
            #expect(try await client.fetch(Annotation.self, orderBy: "text") == annotations)
            #expect(try await Migrator(client: client, federation: federation).plan().isEmpty)

            // Importing again is refused: the tables hold rows now.
            let again = await #expect(throws: BackupError.self) {
                try await ExtensionData(client: client).importArchive(at: file, federation: federation)
            }
            #expect(again?.code == .targetNotEmpty)
            #expect(try await Self.rows("public.scrolls_annotations", in: client) == 3)
        }
    }

    @Test func importRefusesAnUnregisteredOwnerASchemaMismatchAndLoadsAllOrNothing() async throws {
        let file = Self.exportPath("scrolls-refusals")
        defer { try? FileManager.default.removeItem(atPath: file) }
        let workspaceID = try await TestDatabase.withFreshDatabase("ext_refusal_source") { client in
            let (workspace, _, _) = try await Self.populate(client)
            try await ExtensionData(client: client).export("scrolls", to: file)
            return workspace.id
        }
        try await TestDatabase.withFreshDatabase("ext_refusal_target") { client in
            _ = try await Migrator(client: client, federation: try Federation(core: Federation.coreModels)).auto()
            let data = ExtensionData(client: client)

            let unregistered = await #expect(throws: BackupError.self) {
                try await data.importArchive(at: file, federation: try Federation.standard(extensions: []))
            }
            #expect(unregistered?.code == .ownerRegistration)
            #expect(unregistered?.message.contains("'scrolls'") == true)

            let mismatch = await #expect(throws: BackupError.self) {
                try await data.importArchive(at: file, federation: try Federation.standard(extensions: [ScrollsV2()]))
            }
            #expect(mismatch?.code == .schemaMismatch)
            #expect(mismatch?.message.contains("rating") == true, "\(mismatch?.message ?? "")")
            #expect(try await !Self.exists("public.scrolls_entries", in: client), "refused before any DDL")

            // The second table refuses one of its rows: the first table's rows go too.
            _ = try await Migrator(client: client, federation: try Federation.standard(extensions: [Scrolls()])).auto()
            _ = try await client.insert(Workspace(name: "scriptorium", id: workspaceID))
            try await client.execute("ALTER TABLE public.scrolls_annotations ADD CONSTRAINT no_three CHECK (text <> 'three')")
            let refused = await #expect(throws: PhylacteryError.self) {
                try await data.importArchive(at: file, federation: try Federation.standard(extensions: [Scrolls()]))
            }
            #expect(refused?.sqlState == "23514")
            #expect(try await Self.rows("public.scrolls_entries", in: client) == 0)
            #expect(try await Self.rows("public.scrolls_annotations", in: client) == 0)

            // A damaged file is refused before anything is read into the database.
            var bytes = try Data(contentsOf: URL(fileURLWithPath: file))
            bytes[bytes.count / 3] ^= 0xFF
            let damaged = Self.exportPath("scrolls-damaged")
            defer { try? FileManager.default.removeItem(atPath: damaged) }
            try bytes.write(to: URL(fileURLWithPath: damaged))
            let invalid = await #expect(throws: BackupError.self) {
                try await data.importArchive(at: damaged, federation: try Federation.standard(extensions: [Scrolls()]))
            }
            #expect(invalid?.code == .invalidArchive)
        }
    }

    struct PurgeFact: Decodable {
        struct Table: Decodable { var table: String; var rows: Int }
        struct Export: Decodable { var file: String; var sha256: String }
        var owner: String
        var tables: [Table]
        var export: Export?
        var withoutExport: Bool
        var ledgerRevision: String
    }

    @Test func purgeRefusesARegisteredOwnerExportsFirstAndRecordsWhatItDropped() async throws {
        let file = Self.exportPath("scrolls-purge")
        defer { try? FileManager.default.removeItem(atPath: file) }
        try await TestDatabase.withFreshDatabase("ext_purge") { client in
            let (_, entries, annotations) = try await Self.populate(client)
            let data = ExtensionData(client: client)
            let registered = try Federation.standard(extensions: [Scrolls()])
            let uninstalled = try Federation.standard(extensions: [])

            let inUse = await #expect(throws: BackupError.self) {
                try await data.purge("scrolls", federation: registered, safeguard: .withoutExport)
            }
            #expect(inUse?.code == .ownerRegistration)
            let core = await #expect(throws: BackupError.self) { try await data.purge("core", federation: uninstalled, safeguard: .withoutExport) }
            #expect(core?.code == .ownerRegistration)
            FileManager.default.createFile(atPath: file, contents: Data("in the way".utf8))
            let occupied = await #expect(throws: BackupError.self) {
                try await data.purge("scrolls", federation: uninstalled, safeguard: .exportTo(file))
            }
            #expect(occupied?.code == .targetNotEmpty)
            try FileManager.default.removeItem(atPath: file)
            #expect(try await Self.rows("public.scrolls_entries", in: client) == 2, "nothing was dropped by a refusal")

            let outcome = try await data.purge("scrolls", federation: uninstalled, safeguard: .exportTo(file))
            #expect(outcome.tables.map(\.table) == ["public.scrolls_entries", "public.scrolls_annotations"])
            #expect(outcome.tables.map(\.rows) == [2, 3])
            #expect(outcome.export?.totalRows == 5 && outcome.recordedFact)
            #expect(try await !Self.exists("public.scrolls_entries", in: client))
            #expect(try await !Self.exists("public.scrolls_annotations", in: client))
            #expect(try await client.query("SELECT count(*) FROM public.phylactery_registry WHERE owner = 'scrolls'").collect().first?.decode(Int.self) == 0)
            #expect(try ExtensionData.verify(file).totalRows == 5)

            let ledger = try await Migrator(client: client, federation: uninstalled).history()
            let entry = try #require(ledger.last)
            #expect(entry.source == "purge" && entry.revision == outcome.ledgerEntry.revision)
            #expect(entry.message.contains(file) && entry.text.contains("DROP TABLE \"public\".\"scrolls_entries\""))
            #expect(entry.parent == ledger.dropLast().last?.revision)

            let fact = try await client.transaction { tx in try await tx.facts.get(ExtensionData.factNamespace, key: "scrolls.purged") }
            let recorded = try #require(try fact?.decode(PurgeFact.self))
            #expect(recorded.owner == "scrolls" && !recorded.withoutExport && recorded.export?.file == file)
            #expect(recorded.tables.map(\.rows) == [2, 3] && recorded.ledgerRevision == entry.revision)
            #expect(recorded.export?.sha256 == outcome.exportSHA256)

            let gone = await #expect(throws: BackupError.self) { try await data.purge("scrolls", federation: uninstalled, safeguard: .withoutExport) }
            #expect(gone?.code == .ownerUnknown)

            // The export brings everything back; a purge without an export is then recorded as such.
            try await data.importArchive(at: file, federation: registered)
            #expect(Set(try await client.fetch(ScrollEntry.self)) == Set(entries))
            #expect(Set(try await client.fetch(Annotation.self)) == Set(annotations))
            let blind = try await data.purge("scrolls", federation: uninstalled, safeguard: .withoutExport)
            #expect(blind.export == nil && blind.tables.map(\.rows) == [2, 3])
            let second = try await client.transaction { tx in try await tx.facts.get(ExtensionData.factNamespace, key: "scrolls.purged") }
            #expect(second?.version == 2)
            #expect(try second?.decode(PurgeFact.self).withoutExport == true)
            #expect(try await Migrator(client: client, federation: uninstalled).history().last?.message.contains("without an export") == true)
        }
    }
}
