import Foundation
import Phylactery
import PhylacteryTestSupport
import PostgresNIO
import Testing

/// A transaction whose server session is terminated fails at once, and the pool carries on.
@Suite struct DeadConnectionTests {
    @Test("a transaction whose backend is terminated fails promptly and the client keeps working")
    func terminatedBackend() async throws {
        try await TestDatabase.withFreshDatabase("dead_conn") { client in
            let started = ContinuousClock.now
            await #expect(throws: (any Error).self) {
                try await client.transaction { tx in
                    let pid = try await tx.query("SELECT pg_backend_pid()").collect().first!.decode(Int32.self)
                    let other = Task { try await client.execute("SELECT pg_terminate_backend(\(pid))") }
                    try await other.value
                    try await tx.execute("SELECT 1")
                }
            }
            #expect(ContinuousClock.now - started < .seconds(30), "it failed, rather than waiting forever")
            // Terminated in the middle of a running statement.
            let midQuery = ContinuousClock.now
            await #expect(throws: (any Error).self) {
                try await client.transaction { tx in
                    let pid = try await tx.query("SELECT pg_backend_pid()").collect().first!.decode(Int32.self)
                    let other = Task {
                        try await Task.sleep(for: .milliseconds(300))
                        try await client.execute("SELECT pg_terminate_backend(\(pid))")
                    }
                    try await tx.execute("SELECT pg_sleep(60)")
                    try await other.value
                }
            }
            // Ended by the termination, not by the 60 s sleep running out.
            #expect(ContinuousClock.now - midQuery < .seconds(30))
            for _ in 0..<10 {
                try await client.transaction { tx in try await tx.execute("SELECT 1") }
            }
        }
    }

    @Test("a transaction with a timeout that the server does not answer in time fails, commits nothing, and the pool carries on")
    func transactionTimeout() async throws {
        try await TestDatabase.withFreshDatabase("tx_timeout") { client in
            try await client.execute("CREATE TABLE public.marks (n int)")
            let started = ContinuousClock.now
            await #expect(throws: PhylacteryError.self) {
                try await client.transaction(options: TransactionOptions(timeout: .milliseconds(500))) { tx in
                    try await tx.execute("INSERT INTO public.marks VALUES (1)")
                    // A statement that does not answer (as a vanished server's would not).
                    try await tx.execute("SELECT pg_sleep(30)")
                }
            }
            #expect(ContinuousClock.now - started < .seconds(15), "ended by the timeout, not by the 30 s sleep")
            #expect(try await client.query("SELECT count(*) FROM public.marks").collect().first?.decode(Int64.self) == 0)
            // An attempt that finishes within its bound is untouched by it.
            try await client.transaction(options: TransactionOptions(timeout: .seconds(30))) { tx in
                try await tx.execute("INSERT INTO public.marks VALUES (2)")
            }
            #expect(try await client.query("SELECT count(*) FROM public.marks").collect().first?.decode(Int64.self) == 1)
        }
    }

    @Test("connections terminated while idle in the pool are skipped by the next transactions")
    func terminatedWhileIdle() async throws {
        try await TestDatabase.withFreshDatabase("dead_idle") { client in
            for round in 0..<5 {
                // Warm several pooled connections, then end every session but the one asking.
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<4 { group.addTask { try await client.transaction { tx in try await tx.execute("SELECT pg_sleep(0.05)") } } }
                    try await group.waitForAll()
                }
                try await client.execute("""
                    SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                    WHERE datname = current_database() AND pid <> pg_backend_pid()
                    """)
                // At once, before the pool has necessarily noticed: each transaction must still commit.
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for n in 0..<4 {
                        group.addTask {
                            let value = try await client.transaction { tx in
                                try await tx.query("SELECT \(n + round)::bigint").collect().first!.decode(Int.self)
                            }
                            #expect(value == n + round)
                        }
                    }
                    try await group.waitForAll()
                }
            }
        }
    }
}
