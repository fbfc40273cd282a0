import Foundation
import NIOCore
import Phylactery
import PhylacteryTestSupport
import PostgresNIO
import Testing

/// A nested document that can be grown to any size.
struct Snapshot: Codable, Equatable, Sendable {
    struct Event: Codable, Equatable, Sendable {
        var sequence: Int
        var kind: String
        var at: Date
        var payload: [String: String]
        var weights: [Double]
    }
    var id: UUID
    var owner: String
    var events: [Event]

    static func make(bytes target: Int) -> Snapshot {
        var snapshot = Snapshot(id: UUID(), owner: "ext.tests", events: [])
        let perEvent = 210
        for sequence in 0..<max(1, target / perEvent) {
            snapshot.events.append(Event(
                sequence: sequence, kind: ["claim", "résumé \"quoted\"", "tab\there", "漢字🦀"][sequence % 4],
                at: Date(timeIntervalSince1970: 1_700_000_000 + Double(sequence) / 1000),
                payload: ["path": "C:\\temp\\\(sequence)", "note": "line1\nline2"],
                weights: [Double(sequence) / 3, -0.0, 1e-300]))
        }
        return snapshot
    }
}

extension Snapshot: PostgresCodable {}

@Suite struct JSONBRoundTripTests {
    @Test(arguments: [2 << 10, 64 << 10, 1 << 20, 16 << 20])
    func documentsRoundTripThroughTheServer(bytes: Int) async throws {
        try await TestDatabase.withFreshDatabase("jsonb_\(bytes)") { client in
            try await client.execute("CREATE TABLE public.snapshots (id int PRIMARY KEY, doc jsonb NOT NULL, plain json)")
            let snapshot = Snapshot.make(bytes: bytes)
            try await client.transaction { tx in
                try await tx.execute("INSERT INTO public.snapshots VALUES (1, \(jsonb: snapshot), \(snapshot, context: .phylactery))")
            }
            // The server's own text, read with Foundation (with our date format), equals the value.
            let text = try await client.query("SELECT doc::text, length(doc::text) FROM public.snapshots").collect().first!.decode((String, Int).self)
            #expect(text.1 >= bytes / 2)
            let foundation = JSONDecoder()
            foundation.dateDecodingStrategy = .custom { decoder in
                let string = try decoder.singleValueContainer().decode(String.self)
                return try JSONBDecoder().decode(Date.self, from: Array("\"\(string)\"".utf8))
            }
            #expect(try foundation.decode(Snapshot.self, from: Data(text.0.utf8)) == snapshot)
            // Ours, from jsonb (binary, version byte) and from json.
            let row = try await client.query("SELECT doc, plain FROM public.snapshots").collect().first!
            #expect(try row.decode(JSONB<Snapshot>.self, context: .default).value == snapshot)
            let (fromJSONB, fromJSON) = try row.decode((Snapshot, Snapshot).self, context: .phylactery)
            #expect(fromJSONB == snapshot)
            #expect(fromJSON == snapshot)
            // Raw bytes come back unparsed and valid.
            let raw = try row.decode(RawJSONB.self, context: .default)
            #expect(try raw.decode(Snapshot.self) == snapshot)
        }
    }

    /// A plain Codable type (not PostgresCodable) binds through our codec by default.
    struct Note: Codable, Equatable, Sendable {
        var text: String
        var at: Date
    }

    @Test func plainCodableValuesUseTheCodecByDefault() async throws {
        try await TestDatabase.withFreshDatabase("plaincodable") { client in
            try await client.execute("CREATE TABLE public.notes (name text, doc jsonb)")
            let note = Note(text: "tab\there ✓", at: Date(timeIntervalSince1970: 1_764_174_540.5))
            try await client.execute("INSERT INTO public.notes VALUES (\("plain"), \(note))")
            let row = try await client.query("SELECT doc, doc->>'at' FROM public.notes").collect().first!
            #expect(try row.decodeJSON(Note.self) == note)
            // The date went through our encoder (ISO 8601 with milliseconds), not Foundation's default.
            #expect(try row.decode((RawJSONB, String).self, context: .default).1 == "2025-11-26T16:29:00.500Z")
        }
    }

    @Test func copyLoadsRowsWithTheCodecAndEscapesEverything() async throws {
        try await TestDatabase.withFreshDatabase("copy") { client in
            try await client.execute("CREATE TABLE verbatim.loaded (id int, label text, doc jsonb)")
            let tricky = "tab\there\nnew line \\ backslash \"quote\" \r é 🦀"
            let notes = (0..<500).map { Note(text: "\(tricky) #\($0)", at: Date(timeIntervalSince1970: 1_764_174_540 + Double($0))) }
            let written = try await client.transaction { tx in
                try await tx.copy(into: "loaded", schema: "verbatim", columns: ["id", "label", "doc"]) { rows in
                    for (id, note) in notes.enumerated() {
                        rows.field(id)
                        try rows.field(id % 2 == 0 ? note.text : nil)
                        try rows.field(json: note)
                        try await rows.endRow()
                    }
                }
            }
            #expect(written == notes.count)
            let back = try await client.query("SELECT id, label, doc FROM verbatim.loaded ORDER BY id").collect()
            #expect(back.count == notes.count)
            for row in back {
                let (id, label, doc) = try row.decode((Int, String?, JSONB<Note>).self)
                #expect(doc.value == notes[id])
                #expect(label == (id % 2 == 0 ? notes[id].text : nil))
            }
            // The search_path is back to what it was, and a failing load inserts nothing.
            let path = try await client.transaction { tx in
                try await tx.copy(into: "loaded", schema: "verbatim", columns: ["id"]) { rows in rows.field(1); try await rows.endRow() }
                return try await tx.query("SELECT current_setting('search_path')").collect().first!.decode(String.self)
            }
            #expect(!path.contains("verbatim"))
            await #expect(throws: Abandon.self) {
                try await client.transaction { tx in
                    try await tx.copy(into: "loaded", schema: "verbatim", columns: ["id"]) { rows in
                        rows.field(2)
                        try await rows.endRow()
                        throw Abandon()
                    }
                }
            }
            let count = try await client.query("SELECT count(*) FROM verbatim.loaded").collect().first!.decode(Int.self)
            #expect(count == notes.count + 1)
        }
    }

    @Test func rawJSONBIsStoredAsIsAndMalformedInputStoresNothing() async throws {
        try await TestDatabase.withFreshDatabase("rawjsonb") { client in
            try await client.execute("CREATE TABLE public.raw (id int PRIMARY KEY, doc jsonb NOT NULL)")
            let raw = try RawJSONB(validating: #"{"b": [1, 2.5, "x"], "a": null}"#)
            try await client.execute("INSERT INTO public.raw VALUES (1, \(raw))")
            let back = try await client.query("SELECT doc FROM public.raw").collect().first!.decode(RawJSONB.self)
            #expect(back.text == #"{"a": null, "b": [1, 2.5, "x"]}"#)

            for bad in [#"{"a": 1,}"#, "[1, 2", "{'a': 1}", "\"\\uD800\""] {
                let error = await #expect(throws: JSONBError.self) {
                    let invalid = try RawJSONB(validating: bad)
                    try await client.execute("INSERT INTO public.raw VALUES (2, \(invalid))")
                }
                #expect(error?.code == .malformed)
            }
            let count = try await client.query("SELECT count(*) FROM public.raw").collect().first!.decode(Int.self)
            #expect(count == 1)
        }
    }

    @Test func nonFiniteNumbersFailBeforeAnythingIsSent() async throws {
        try await TestDatabase.withFreshDatabase("nonfinite") { client in
            try await client.execute("CREATE TABLE public.numbers (doc jsonb)")
            await #expect(throws: EncodingError.self) {
                try await client.execute("INSERT INTO public.numbers VALUES (\(jsonb: ["x": Double.nan]))")
            }
            let count = try await client.query("SELECT count(*) FROM public.numbers").collect().first!.decode(Int.self)
            #expect(count == 0)
        }
    }
}
