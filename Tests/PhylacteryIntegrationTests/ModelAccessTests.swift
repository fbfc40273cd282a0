import Foundation
import Phylactery
import PhylacteryTestSupport
import PostgresNIO
import Testing

// Models written by hand, the way the `@Model` macro will write them.

enum Mood: String, PersistentEnum {
    case calm, busy, grumpy
}

/// Stored as jsonb.
struct Address: Codable, Equatable, Sendable {
    var street: String
    var number: Int
    var tags: [String]
    var since: Date
}

/// One property of every kind a column can hold.
struct Specimen: PersistentModel, Equatable {
    var id = UUID.v7()
    var createdAt = Date(timeIntervalSince1970: 0)
    var updatedAt = Date(timeIntervalSince1970: 0)
    var title: String
    var count: Int
    var rank: Int32
    var weight: Double
    var isActive: Bool
    var seenAt: Date
    var blob: Data
    var bytes: [UInt8]
    var price: Decimal
    var ownerID: UUID
    var note: String?
    var mood: Mood
    var address: Address
    var aliases: [String]?

    static let schema = ModelSchema(modelName: "Specimen", table: "specimens", columns: [
        ModelSchema.column("title", String.self),
        ModelSchema.column("count", Int.self),
        ModelSchema.column("rank", Int32.self),
        ModelSchema.column("weight", Double.self),
        ModelSchema.column("isActive", Bool.self),
        ModelSchema.column("seenAt", Date.self),
        ModelSchema.column("blob", Data.self),
        ModelSchema.column("bytes", [UInt8].self),
        ModelSchema.column("price", Decimal.self),
        ModelSchema.column("ownerID", UUID.self),
        ModelSchema.column("note", String?.self),
        ModelSchema.column("mood", Mood.self),
        ModelSchema.column("address", Address.self),
        ModelSchema.column("aliases", [String]?.self),
    ])

    func bindColumns(to row: inout ModelRowWriter) throws {
        try row.write(self.title)
        try row.write(self.count)
        try row.write(self.rank)
        try row.write(self.weight)
        try row.write(self.isActive)
        try row.write(self.seenAt)
        try row.write(self.blob)
        try row.write(self.bytes)
        try row.write(self.price)
        try row.write(self.ownerID)
        try row.write(self.note)
        try row.write(self.mood)
        try row.write(self.address)
        try row.write(self.aliases)
    }
}

// In an extension, so the struct keeps its memberwise initialiser.
extension Specimen {
    init(row: inout ModelRowReader) throws {
        (self.id, self.createdAt, self.updatedAt) = try row.readBase()
        self.title = try row.read(String.self)
        self.count = try row.read(Int.self)
        self.rank = try row.read(Int32.self)
        self.weight = try row.read(Double.self)
        self.isActive = try row.read(Bool.self)
        self.seenAt = try row.read(Date.self)
        self.blob = try row.read(Data.self)
        self.bytes = try row.read([UInt8].self)
        self.price = try row.read(Decimal.self)
        self.ownerID = try row.read(UUID.self)
        self.note = try row.read(String?.self)
        self.mood = try row.read(Mood.self)
        self.address = try row.read(Address.self)
        self.aliases = try row.read([String]?.self)
    }

    /// A specimen whose every field depends on `number`.
    static func make(_ number: Int, note: String? = "a note", aliases: [String]? = ["one", "two"]) -> Specimen {
        Specimen(
            title: "specimen \(number) — ✓ 'quoted'", count: number * 1_000_000_007, rank: Int32(number % 100),
            weight: Double(number) / 3, isActive: number % 2 == 0,
            seenAt: Date(timeIntervalSince1970: 1_700_000_000.25 + Double(number)),
            blob: Data([0, 1, 2, 0xFF, UInt8(number % 256)]), bytes: [0xDE, 0xAD, UInt8(number % 256)],
            price: Decimal(string: "\(number).0125")!, ownerID: UUID(), note: note,
            mood: [Mood.calm, .busy, .grumpy][number % 3],
            address: Address(street: "Rue \"\(number)\"\nsecond line", number: number, tags: ["a", "b\tc"],
                             since: Date(timeIntervalSince1970: 1_600_000_000.5)),
            aliases: aliases)
    }
}

/// A second model, in another chamber, with a unique column to upsert on.
struct Tag: PersistentModel, Equatable {
    var id = UUID.v7()
    var createdAt = Date(timeIntervalSince1970: 0)
    var updatedAt = Date(timeIntervalSince1970: 0)
    var label: String
    var uses: Int

    static let schema = ModelSchema(modelName: "Tag", table: "tags", chamber: .verbatim, columns: [
        ModelSchema.column("label", String.self, unique: true),
        ModelSchema.column("uses", Int.self),
    ])

    func bindColumns(to row: inout ModelRowWriter) throws {
        try row.write(self.label)
        try row.write(self.uses)
    }
}

extension Tag {
    init(row: inout ModelRowReader) throws {
        (self.id, self.createdAt, self.updatedAt) = try row.readBase()
        self.label = try row.read(String.self)
        self.uses = try row.read(Int.self)
    }
}

/// Raised on purpose to roll a transaction back.
struct RollBackOnPurpose: Error {}

@Suite struct ModelAccessTests {
    /// The tables, as written DDL (migrations come later). No CHECK on `mood`, so a test can store
    /// a value the enum does not know.
    func createTables(_ client: PhylacteryClient) async throws {
        try await client.execute("""
            CREATE TABLE public.specimens (
                id uuid PRIMARY KEY,
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now(),
                title text NOT NULL,
                count bigint NOT NULL,
                rank integer NOT NULL,
                weight double precision NOT NULL,
                is_active boolean NOT NULL,
                seen_at timestamptz NOT NULL,
                blob bytea NOT NULL,
                bytes bytea NOT NULL,
                price numeric NOT NULL,
                owner_id uuid NOT NULL,
                note text,
                mood text NOT NULL,
                address jsonb NOT NULL,
                aliases jsonb
            )
            """)
        try await client.execute("""
            CREATE TABLE verbatim.tags (
                id uuid PRIMARY KEY,
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now(),
                label text NOT NULL UNIQUE,
                uses bigint NOT NULL
            )
            """)
    }

    /// The model's own fields equal (the times are the database's, not the model's).
    func sameFields(_ a: Specimen, _ b: Specimen) -> Bool {
        var a = a
        a.createdAt = b.createdAt
        a.updatedAt = b.updatedAt
        return a == b
    }

    @Test func insertReturnsTheDatabaseTimestamps() async throws {
        try await TestDatabase.withFreshDatabase("model_insert") { client in
            try await createTables(client)
            let model = Specimen.make(1)
            let stored = try await client.insert(model)
            #expect(stored.id == model.id)
            #expect(sameFields(model, stored))
            // The model's own times (1970) were ignored; the row's default now() was used.
            #expect(stored.createdAt == stored.updatedAt)
            #expect(abs(stored.createdAt.timeIntervalSinceNow) < 300)
            let row = try await client.query("SELECT created_at, updated_at FROM public.specimens WHERE id = \(model.id)").collect().first!.decode((Date, Date).self)
            #expect(row.0 == stored.createdAt)
            #expect(row.1 == stored.updatedAt)
            // A second insert of the same id is the server's error.
            let duplicate = await #expect(throws: PhylacteryError.self) { try await client.insert(model) }
            #expect(duplicate?.code == .queryFailed)
            #expect(duplicate?.sqlState == "23505")
        }
    }

    @Test func insertThenFindRoundTripsEveryField() async throws {
        try await TestDatabase.withFreshDatabase("model_roundtrip") { client in
            try await createTables(client)
            for model in [Specimen.make(7), Specimen.make(8, note: nil, aliases: nil), Specimen.make(9, note: "", aliases: [])] {
                let stored = try await client.insert(model)
                let found = try #require(try await client.find(Specimen.self, id: model.id))
                #expect(found == stored)
                #expect(sameFields(model, found))
            }
            // NULL and an empty array are different things in the table.
            let nulls = try await client.query("SELECT count(*) FROM public.specimens WHERE aliases IS NULL").collect().first!.decode(Int.self)
            #expect(nulls == 1)
            #expect(try await client.find(Specimen.self, id: UUID.v7()) == nil)
            // The other chamber's table is reached through its schema.
            let tag = try await client.insert(Tag(label: "swift", uses: 3))
            #expect(try await client.find(Tag.self, id: tag.id) == tag)
        }
    }

    @Test func batchInsertOfTwentyThousandRowsThenCount() async throws {
        try await TestDatabase.withFreshDatabase("model_batch") { client in
            try await createTables(client)
            #expect(try await client.insert(contentsOf: [Specimen]()) == 0)
            // 15 parameters a row: 300,000 in all, so the rows must be split over several statements.
            let models = (0..<20_000).map { Specimen.make($0, note: $0 % 5 == 0 ? nil : "n\($0)", aliases: $0 % 7 == 0 ? nil : ["x\($0)"]) }
            let inserted = try await client.insert(contentsOf: models)
            #expect(inserted == 20_000)
            #expect(try await client.count(Specimen.self) == 20_000)
            #expect(try await client.count(Specimen.self, where: "note IS NULL") == 4_000)
            // Spot checks: first, last and a row in the middle of a later chunk.
            for index in [0, 4_095, 4_096, 12_345, 19_999] {
                let found = try #require(try await client.find(Specimen.self, id: models[index].id))
                #expect(sameFields(models[index], found))
            }
        }
    }

    @Test func upsertInsertsThenUpdatesKeepingCreatedAt() async throws {
        try await TestDatabase.withFreshDatabase("model_upsert") { client in
            try await createTables(client)
            var model = Specimen.make(1)
            let first = try await client.upsert(model)
            #expect(sameFields(model, first))
            try await Task.sleep(for: .milliseconds(20))
            model.title = "changed"
            model.note = nil
            model.mood = .grumpy
            let second = try await client.upsert(model)
            #expect(second.id == first.id)
            #expect(second.createdAt == first.createdAt)
            #expect(second.updatedAt > first.updatedAt)
            #expect(sameFields(model, second))
            #expect(try await client.count(Specimen.self) == 1)
            #expect(try await client.find(Specimen.self, id: model.id) == second)

            // On another unique column: the existing row keeps its id and created_at.
            let tag = try await client.upsert(Tag(label: "swift", uses: 1), onConflict: ["label"])
            try await Task.sleep(for: .milliseconds(20))
            let again = try await client.upsert(Tag(label: "swift", uses: 2), onConflict: ["label"])
            #expect(again.id == tag.id)
            #expect(again.createdAt == tag.createdAt)
            #expect(again.updatedAt > tag.updatedAt)
            #expect(again.uses == 2)
            #expect(try await client.count(Tag.self) == 1)
        }
    }

    @Test func updateWritesTheRowAndAMissingIdIsNotFound() async throws {
        try await TestDatabase.withFreshDatabase("model_update") { client in
            try await createTables(client)
            var model = try await client.insert(Specimen.make(1))
            try await Task.sleep(for: .milliseconds(20))
            model.count = -5
            model.aliases = nil
            model.address.tags.append("new")
            let updated = try await client.update(model)
            #expect(sameFields(model, updated))
            #expect(updated.createdAt == model.createdAt)
            #expect(updated.updatedAt > model.updatedAt)
            #expect(try await client.find(Specimen.self, id: model.id) == updated)

            let missing = Specimen.make(2)
            let error = await #expect(throws: PhylacteryError.self) { try await client.update(missing) }
            #expect(error?.code == .notFound)
            #expect(error?.description.contains("\(missing.id)") == false)
            #expect(try await client.count(Specimen.self) == 1)

            // Inside a transaction the miss leaves the transaction usable.
            try await client.transaction { tx in
                await #expect(throws: PhylacteryError.self) { try await tx.update(missing) }
                try await tx.insert(missing)
            }
            #expect(try await client.count(Specimen.self) == 2)
        }
    }

    @Test func deleteReturnsTrueThenFalse() async throws {
        try await TestDatabase.withFreshDatabase("model_delete") { client in
            try await createTables(client)
            let kept = try await client.insert(Specimen.make(1))
            let gone = try await client.insert(Specimen.make(2))
            #expect(try await client.delete(gone))
            #expect(try await client.delete(Specimen.self, id: gone.id) == false)
            #expect(try await client.delete(gone) == false)
            #expect(try await client.find(Specimen.self, id: gone.id) == nil)
            #expect(try await client.find(Specimen.self, id: kept.id) == kept)
            #expect(try await client.delete(Specimen.self, id: kept.id))
            #expect(try await client.count(Specimen.self) == 0)
        }
    }

    @Test func fetchWithFilterOrderByAndLimit() async throws {
        try await TestDatabase.withFreshDatabase("model_fetch") { client in
            try await createTables(client)
            let models = (0..<10).map { Specimen.make($0) }
            try await client.insert(contentsOf: models)

            let top = try await client.fetch(Specimen.self, where: "rank >= \(Int32(3)) AND is_active = \(true)", orderBy: "rank DESC", limit: 2)
            #expect(top.map(\.rank) == [8, 6])
            #expect(sameFields(models[8], top[0]))

            let byTitle = try await client.fetch(Specimen.self, where: "title = \(models[4].title)")
            #expect(byTitle.map(\.id) == [models[4].id])
            // Filters over jsonb and enum columns, with several binds.
            let jsonb = try await client.fetch(Specimen.self, where: "(address->>'number')::int BETWEEN \(2) AND \(4) AND mood <> \(Mood.busy.rawValue)", orderBy: "count")
            #expect(jsonb.map(\.address.number) == [2, 3])

            let all = try await client.fetch(Specimen.self, orderBy: "count DESC")
            #expect(all.map(\.id) == models.reversed().map(\.id))
            #expect(Set(try await client.fetch(Specimen.self).map(\.id)) == Set(models.map(\.id)))
            #expect(try await client.fetch(Specimen.self, limit: 0).isEmpty)
            #expect(try await client.fetch(Specimen.self, where: "false").isEmpty)

            // A hostile value stays a value.
            #expect(try await client.fetch(Specimen.self, where: "title = \("x'); DROP TABLE public.specimens; --")").isEmpty)
            #expect(try await client.count(Specimen.self) == 10)

            let refused = await #expect(throws: PhylacteryError.self) {
                try await client.fetch(Specimen.self, orderBy: "rank; DROP TABLE public.specimens")
            }
            #expect(refused?.code == .invalidArgument)
            #expect(try await client.count(Specimen.self) == 10)
        }
    }

    @Test func countWithAFilter() async throws {
        try await TestDatabase.withFreshDatabase("model_count") { client in
            try await createTables(client)
            #expect(try await client.count(Specimen.self) == 0)
            try await client.insert(contentsOf: (0..<30).map { Specimen.make($0) })
            #expect(try await client.count(Specimen.self) == 30)
            #expect(try await client.count(Specimen.self, where: "is_active") == 15)
            #expect(try await client.count(Specimen.self, where: "mood = \(Mood.calm.rawValue) AND rank < \(Int32(15))") == 5)
            #expect(try await client.count(Tag.self) == 0)
        }
    }

    @Test func rolledBackTransactionLeavesNothing() async throws {
        try await TestDatabase.withFreshDatabase("model_rollback") { client in
            try await createTables(client)
            await #expect(throws: RollBackOnPurpose.self) {
                try await client.transaction { tx in
                    var one = try await tx.insert(Specimen.make(1))
                    try await tx.insert(contentsOf: (2..<5_000).map { Specimen.make($0) })
                    one.title = "updated"
                    try await tx.update(one)
                    try await tx.upsert(Specimen.make(6_000))
                    try await tx.upsert(Tag(label: "t", uses: 1), onConflict: ["label"])
                    #expect(try await tx.delete(Specimen.self, id: one.id))
                    // The transaction sees its own writes...
                    #expect(try await tx.count(Specimen.self) == 4_999)
                    #expect(try await tx.fetch(Tag.self).count == 1)
                    // ...and the client's own calls on this task join it as savepoints.
                    #expect(try await client.count(Specimen.self) == 4_999)
                    throw RollBackOnPurpose()
                }
            }
            #expect(try await client.count(Specimen.self) == 0)
            #expect(try await client.count(Tag.self) == 0)
        }
    }

    @Test func unknownEnumValueIsADecodingFailure() async throws {
        try await TestDatabase.withFreshDatabase("model_enum") { client in
            try await createTables(client)
            let good = try await client.insert(Specimen.make(1))
            let bad = try await client.insert(Specimen.make(2))
            try await client.execute("UPDATE public.specimens SET mood = 'sleepy' WHERE id = \(bad.id)")

            let error = await #expect(throws: PhylacteryError.self) { try await client.find(Specimen.self, id: bad.id) }
            #expect(error?.code == .decodingFailed)
            #expect(error?.description.contains("sleepy") == true)
            #expect(error?.description.contains("mood") == true)
            let fetchError = await #expect(throws: PhylacteryError.self) { try await client.fetch(Specimen.self) }
            #expect(fetchError?.code == .decodingFailed)

            // A decoding failure is not the server's: the transaction can go on and commit.
            try await client.transaction { tx in
                await #expect(throws: PhylacteryError.self) { try await tx.fetch(Specimen.self, orderBy: "mood DESC") }
                #expect(try await tx.find(Specimen.self, id: good.id) == good)
                try await tx.delete(bad)
            }
            #expect(try await client.fetch(Specimen.self) == [good])
        }
    }
}
