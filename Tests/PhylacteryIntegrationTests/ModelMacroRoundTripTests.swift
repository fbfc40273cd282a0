import Foundation
import Phylactery
import PhylacteryTestSupport
import PostgresNIO
import Testing

/// `@Model` structs end to end: migrated by the core, written and read through typed access.
@Suite struct ModelMacroRoundTripTests {
    enum Mood: String, PersistentEnum { case calm, restless }

    struct Detail: Codable, Sendable, Hashable {
        var tags: [String]
        var weights: [String: Double]
    }

    @Model(table: "journal_entries", storage: ["fillfactor": "90"])
    struct Entry: Hashable {
        @References(Workspace.self, onDelete: .cascade) @Index var workspaceID: UUID
        @Unique var slug: String
        var mood: Mood
        var detail: Detail
        var extras: [Detail]?
        @Column(type: "varchar(80)", default: "'untitled'") var heading: String
        var score: Double?
        var blob: [UInt8]
        @Transient var scratch: Int = 0
    }

    @Test func migrateWriteAndReadBack() async throws {
        try await TestDatabase.withFreshDatabase("macro_round_trip") { client in
            let federation = try Federation(core: Federation.coreModels + [ModelRegistration(Entry.self)])
            let migrator = Migrator(client: client, federation: federation)
            #expect(try await migrator.auto() != nil)
            #expect(try await migrator.plan().isEmpty)

            let workspace = try await client.insert(Workspace(name: "journal"))
            let entry = Entry(workspaceID: workspace.id, slug: "first", mood: .restless,
                              detail: Detail(tags: ["a", "b"], weights: ["x": 0.5]), extras: nil,
                              heading: "Day one", score: 4.5, blob: [0, 1, 255])
            let stored = try await client.insert(entry)
            #expect(stored.id == entry.id)
            #expect(stored.slug == "first" && stored.mood == .restless && stored.detail == entry.detail)
            #expect(stored.extras == nil && stored.blob == [0, 1, 255] && stored.score == 4.5)
            let found = try #require(try await client.find(Entry.self, id: entry.id))
            #expect(found == stored)

            // The database keeps what the model declares: the enum CHECK, the unique slug, the cascade.
            let badMood = await #expect(throws: PhylacteryError.self) {
                try await client.execute("UPDATE public.journal_entries SET mood = 'furious'")
            }
            #expect(badMood?.sqlState == "23514")
            let duplicate = await #expect(throws: PhylacteryError.self) {
                var twin = entry
                twin.id = .v7()
                _ = try await client.insert(twin)
            }
            #expect(duplicate?.sqlState == "23505")
            try await client.delete(workspace)
            #expect(try await client.count(Entry.self) == 0)
        }
    }
}
