import Foundation
import Phylactery
import Testing

/// The parts of typed access that need no database: ORDER BY text, row locks, page tokens.
@Suite struct TypedAccessUnitTests {
    @Test func orderByTextIsColumnsAndDirectionsOnly() {
        #expect(Ordering.parse("due DESC, id") == [.descending("due"), .ascending("id")])
        #expect(Ordering.parse("  Created_At  asc NULLS first ,\"Mixed\" desc nulls LAST") == [
            Ordering("created_at", .ascending, nulls: .first), Ordering("Mixed", .descending, nulls: .last),
        ])
        for refused in ["", " ", "a,", ",a", "a; b", "random()", "1", "a b", "a DESC DESC", "a NULLS", "a NULLS MIDDLE",
                        "a COLLATE \"C\"", "\"a\"\"b\"", "\"\"", "(a)", "a.b", "a-b", "é", "a -- comment"] {
            #expect(Ordering.parse(refused) == nil, "\(refused)")
        }
        // The SQL of a term quotes its column.
        #expect(Ordering.descending("due", nulls: .last).description == "\"due\" DESC NULLS LAST")
    }

    @Test func rowLocksSpellTheirClause() {
        #expect(RowLock.forUpdate.description == "FOR UPDATE")
        #expect(RowLock.forUpdate(.skipLocked).description == "FOR UPDATE SKIP LOCKED")
        #expect(RowLock.forNoKeyUpdate(.noWait).description == "FOR NO KEY UPDATE NOWAIT")
        #expect(RowLock.forShare.description == "FOR SHARE")
        #expect(RowLock.forKeyShare(.skipLocked).description == "FOR KEY SHARE SKIP LOCKED")
    }

    @Test func pageTokensReadBackOnlyWhatTheyWrote() {
        #expect(PageCursor("") == nil)
        #expect(PageCursor("!!!") == nil)
        #expect(PageCursor(Data("{\"o\":[],\"k\":[]}".utf8).base64EncodedString()) == nil, "an empty ordering is no cursor")
        #expect(PageCursor(Data("{\"o\":[\"\\\"id\\\" ASC\"],\"k\":[]}".utf8).base64EncodedString()) == nil, "keys and terms must pair up")
        let token = Data("{\"o\":[\"\\\"id\\\" ASC\"],\"k\":[{\"type\":2950,\"format\":1,\"bytes\":\"AAAAAAAAAAAAAAAAAAAAAA==\"}]}".utf8).base64EncodedString()
        let cursor = PageCursor(token)
        #expect(cursor != nil)
        #expect(cursor.flatMap { PageCursor($0.description) } == cursor)
    }
}
