import Phylactery
import PhylacteryTestSupport
import PostgresNIO
import Synchronization
import Testing

/// Raised on purpose inside transaction bodies.
struct Abandon: Error {}

@Suite struct TransactionTests {
    /// Two tables in two chambers, written together.
    func makeTables(_ client: PhylacteryClient) async throws {
        try await client.execute("CREATE TABLE public.accounts (id int PRIMARY KEY, balance int NOT NULL)")
        try await client.execute("CREATE TABLE verbatim.ledger (id serial PRIMARY KEY, account int NOT NULL, note text NOT NULL)")
    }

    func counts(_ client: PhylacteryClient) async throws -> (Int, Int) {
        try await client.query("SELECT (SELECT count(*) FROM public.accounts), (SELECT count(*) FROM verbatim.ledger)")
            .collect().first!.decode((Int, Int).self)
    }

    @Test func commitWritesBothChambersAndRollbackWritesNeither() async throws {
        try await TestDatabase.withFreshDatabase("atomicity") { client in
            try await makeTables(client)
            try await client.transaction { tx in
                try await tx.execute("INSERT INTO public.accounts VALUES (1, 100)")
                try await tx.execute("INSERT INTO verbatim.ledger (account, note) VALUES (1, \("opened"))")
            }
            #expect(try await counts(client) == (1, 1))

            await #expect(throws: Abandon.self) {
                try await client.transaction { tx in
                    try await tx.execute("INSERT INTO public.accounts VALUES (2, 50)")
                    try await tx.execute("INSERT INTO verbatim.ledger (account, note) VALUES (2, 'opened')")
                    throw Abandon()
                }
            }
            #expect(try await counts(client) == (1, 1))

            // A failing statement in the second chamber undoes the first chamber's write too.
            let error = await #expect(throws: PhylacteryError.self) {
                try await client.transaction { tx in
                    try await tx.execute("INSERT INTO public.accounts VALUES (3, 10)")
                    try await tx.execute("INSERT INTO verbatim.ledger (account, note) VALUES (3, NULL)")
                }
            }
            #expect(error?.code == .queryFailed)
            #expect(error?.sqlState == "23502")
            #expect(try await counts(client) == (1, 1))
        }
    }

    @Test func rolledBackSavepointKeepsTheOuterTransaction() async throws {
        try await TestDatabase.withFreshDatabase("savepoint") { client in
            try await makeTables(client)
            try await client.transaction { tx in
                try await tx.execute("INSERT INTO public.accounts VALUES (1, 100)")
                await #expect(throws: Abandon.self) {
                    try await tx.transaction { inner in
                        try await inner.execute("INSERT INTO public.accounts VALUES (2, 200)")
                        try await inner.execute("INSERT INTO verbatim.ledger (account, note) VALUES (2, 'inner')")
                        throw Abandon()
                    }
                }
                // A nested client.transaction on the same task is a savepoint too; this one fails in SQL.
                await #expect(throws: PhylacteryError.self) {
                    try await client.transaction { inner in
                        try await inner.execute("INSERT INTO public.accounts VALUES (1, 1)")  // duplicate key
                    }
                }
                try await tx.transaction { inner in
                    try await inner.execute("INSERT INTO verbatim.ledger (account, note) VALUES (1, 'kept')")
                }
            }
            let ids = try await client.query("SELECT id FROM public.accounts ORDER BY id").collect().map { try $0.decode(Int.self) }
            let notes = try await client.query("SELECT note FROM verbatim.ledger").collect().map { try $0.decode(String.self) }
            #expect(ids == [1])
            #expect(notes == ["kept"])
        }
    }

    @Test func childTaskGetsItsOwnTransactionNotASavepoint() async throws {
        try await TestDatabase.withFreshDatabase("childtask") { client in
            try await makeTables(client)
            await #expect(throws: Abandon.self) {
                try await client.transaction { tx in
                    try await tx.execute("INSERT INTO public.accounts VALUES (1, 1)")
                    let outer = ObjectIdentifier(tx.connection)
                    // A child task inherits task-locals but must not share the connection.
                    let separate = try await Task {
                        try await client.transaction { inner in
                            try await inner.execute("INSERT INTO verbatim.ledger (account, note) VALUES (2, 'child')")
                            return ObjectIdentifier(inner.connection) != outer
                        }
                    }.value
                    #expect(separate)
                    throw Abandon()
                }
            }
            // The outer transaction rolled back; the child's own transaction had committed.
            #expect(try await counts(client) == (0, 1))
        }
    }

    @Test func swallowedStatementErrorIsNotCommitted() async throws {
        try await TestDatabase.withFreshDatabase("swallowed") { client in
            try await makeTables(client)
            let error = await #expect(throws: PhylacteryError.self) {
                try await client.transaction { tx in
                    try await tx.execute("INSERT INTO public.accounts VALUES (1, 100)")
                    _ = try? await tx.execute("SELECT 1/0")
                }
            }
            #expect(error?.code == .transactionFailed)
            #expect(error?.phase == .commit)
            #expect(try await counts(client) == (0, 0))
        }
    }

    @Test func serializationFailureIsRetriedAndSucceeds() async throws {
        try await TestDatabase.withFreshDatabase("serialization") { client in
            try await makeTables(client)
            try await client.execute("INSERT INTO public.accounts VALUES (1, 0)")
            let attempts = Mutex(0)
            try await client.transaction(options: .init(isolationLevel: .repeatableRead)) { tx in
                attempts.withLock { $0 += 1 }
                // The first read fixes the transaction's snapshot.
                _ = try await tx.query("SELECT balance FROM public.accounts WHERE id = 1").collect()
                if tx.attempt == 1 {
                    // Another session commits a change to the same row after our snapshot...
                    try await client.postgres.withConnection { other in
                        _ = try await other.query("UPDATE public.accounts SET balance = balance + 100 WHERE id = 1", logger: .init(label: "other")).collect()
                    }
                }
                // ...so updating it fails with 40001 on the first attempt only.
                try await tx.execute("UPDATE public.accounts SET balance = balance + 1 WHERE id = 1")
            }
            #expect(attempts.withLock { $0 } == 2)
            let balance = try await client.query("SELECT balance FROM public.accounts WHERE id = 1").collect().first!.decode(Int.self)
            #expect(balance == 101)
        }
    }

    @Test func persistentDeadlockExhaustsTheRetries() async throws {
        try await TestDatabase.withFreshDatabase("deadlock") { client in
            let attempts = Mutex(0)
            let policy = PhylacteryClient.RetryPolicy(maximumAttempts: 3, baseDelay: .milliseconds(1), maximumDelay: .milliseconds(5))
            let error = await #expect(throws: PhylacteryError.self) {
                try await client.transaction(options: .init(retry: policy)) { tx in
                    attempts.withLock { $0 += 1 }
                    try await tx.execute("DO $$ BEGIN RAISE EXCEPTION 'forced' USING ERRCODE = 'deadlock_detected'; END $$")
                }
            }
            #expect(error?.code == .retriesExhausted)
            #expect(error?.sqlState == "40P01")
            #expect(error?.attempts == 3)
            #expect(attempts.withLock { $0 } == 3)
            #expect(error?.description.contains("deadlock") == true)
        }
    }

    @Test func bodyErrorsAreNotRetried() async throws {
        try await TestDatabase.withFreshDatabase("noretry") { client in
            let attempts = Mutex(0)
            await #expect(throws: Abandon.self) {
                try await client.transaction { _ in
                    attempts.withLock { $0 += 1 }
                    throw Abandon()
                }
            }
            #expect(attempts.withLock { $0 } == 1)
        }
    }

    @Test func valuesAreBoundNotSpliced() async throws {
        try await TestDatabase.withFreshDatabase("binds") { client in
            try await makeTables(client)
            let hostile = "x'); DROP TABLE public.accounts; --"
            try await client.transaction { tx in
                try await tx.execute("INSERT INTO verbatim.ledger (account, note) VALUES (1, \(hostile))")
            }
            let note = try await client.query("SELECT note FROM verbatim.ledger").collect().first!.decode(String.self)
            #expect(note == hostile)
            #expect(try await counts(client) == (0, 1))
        }
    }
}
