import Foundation
import NIOCore
import Phylactery
import PhylacteryTestSupport
import PostgresNIO
import Testing

/// `rows.decodeJSON(T.self)`: every row decoded from the received bytes with one tape for the loop.
@Suite struct JSONBRowSequenceTests {
    @Test func rowsOfEverySizeDecodeToTheirValuesWhateverCameBefore() async throws {
        try await TestDatabase.withFreshDatabase("jsonb_rows") { client in
            try await client.execute("CREATE TABLE public.snapshots (id int PRIMARY KEY, doc jsonb NOT NULL, plain json NOT NULL)")
            // A large row, then smaller ones, then a large one again: a reused tape must not carry
            // anything from the row before (a tail of a larger one, an index past the end).
            let sizes = [1 << 20, 2 << 10, 64 << 10, 300, 1 << 20, 2 << 10]
            let snapshots = sizes.map { Snapshot.make(bytes: $0) }
            for (id, snapshot) in snapshots.enumerated() {
                try await client.execute("INSERT INTO public.snapshots VALUES (\(id), \(jsonb: snapshot), \(snapshot, context: .phylactery))")
            }
            try await client.transaction { tx in
                var decoded: [Snapshot] = []
                for try await snapshot in try await tx.query("SELECT doc FROM public.snapshots ORDER BY id").decodeJSON(Snapshot.self) {
                    decoded.append(snapshot)
                }
                #expect(decoded == snapshots)
                // A `json` column (the text itself, no version byte), chosen by index.
                var plain: [Snapshot] = []
                for try await snapshot in try await tx.query("SELECT id, plain FROM public.snapshots ORDER BY id").decodeJSON(Snapshot.self, column: 1) {
                    plain.append(snapshot)
                }
                #expect(plain == snapshots)
            }
        }
    }

    @Test func aBadRowNamesItsRowAndColumnAndTheLoopGoesOn() async throws {
        try await TestDatabase.withFreshDatabase("jsonb_rows_bad") { client in
            try await client.execute("CREATE TABLE public.snapshots (id int PRIMARY KEY, doc jsonb)")
            let first = Snapshot.make(bytes: 64 << 10)
            let third = Snapshot.make(bytes: 4 << 10)
            try await client.execute("INSERT INTO public.snapshots VALUES (0, \(jsonb: first)), (1, '{\"id\": 5}'), (2, \(jsonb: third)), (3, NULL)")
            try await client.transaction { tx in
                var rows = try await tx.query("SELECT doc FROM public.snapshots ORDER BY id").decodeJSON(Snapshot.self).makeAsyncIterator()
                #expect(try await rows.next() == first)
                // Valid JSON of the wrong shape: typed, with the row and the column, and the codec's error beneath.
                let error = await #expect(throws: PhylacteryError.self) { try await rows.next() }
                #expect(error?.code == .decodingFailed)
                #expect(error?.message.contains("column doc of row 1") == true)
                #expect(error?.underlying is DecodingError)
                // The next row decodes as if the bad one had not been there.
                #expect(try await rows.next() == third)
                // SQL NULL into a non-optional: typed, with the fix.
                let null = await #expect(throws: PhylacteryError.self) { try await rows.next() }
                #expect(null?.code == .decodingFailed)
                #expect(null?.message.contains("row 3 is NULL") == true)
                #expect(try await rows.next() == nil)
            }
            // Optional values read NULL as nil.
            let optional = try await client.transaction { tx in
                var values: [Snapshot?] = []
                for try await value in try await tx.query("SELECT doc FROM public.snapshots WHERE id <> 1 ORDER BY id").decodeJSON(Snapshot?.self) {
                    values.append(value)
                }
                return values
            }
            #expect(optional == [first, third, nil])
        }
    }

    @Test func otherColumnTypesAndMissingColumnsAreTypedErrors() async throws {
        try await TestDatabase.withFreshDatabase("jsonb_rows_text") { client in
            try await client.transaction { tx in
                // A column that is not json/jsonb: the codec's JSONBError beneath, with the column.
                var rows = try await tx.query("SELECT '{}'::text AS doc").decodeJSON([String: Int].self).makeAsyncIterator()
                let mismatch = await #expect(throws: PhylacteryError.self) { try await rows.next() }
                #expect((mismatch?.underlying as? JSONBError)?.code == .typeMismatch)
                #expect(mismatch?.message.contains("column doc of row 0") == true)
                // A column index past the row's end.
                var missing = try await tx.query("SELECT '{}'::jsonb").decodeJSON([String: Int].self, column: 2).makeAsyncIterator()
                let error = await #expect(throws: PhylacteryError.self) { try await missing.next() }
                #expect(error?.message.contains("no column 2") == true)
            }
        }
    }
}
