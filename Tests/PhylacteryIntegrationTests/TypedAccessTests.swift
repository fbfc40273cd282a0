import Foundation
import Phylactery
import PhylacteryTestSupport
import PostgresNIO
import Synchronization
import Testing

// A daemon's run ledger, the way a port onto Phylactery would write it: locking reads,
// compare-and-set transitions, a version column, joins decoded into models, keyset pages.

enum LedgerStatus: String, PersistentEnum { case queued, running, done, failed }

@Model(table: "ledger_workers")
struct LedgerWorker: Equatable {
    @Unique var name: String
}

@Model(table: "ledger_runs")
struct LedgerRun: Equatable {
    var name: String
    var status: LedgerStatus
    @References(LedgerWorker.self) var workerID: UUID?
    var priority: Int
    var attempts: Int = 0
    var notes: [String] = []
}

@Model(table: "ledger_accounts")
struct LedgerAccount: Equatable {
    var owner: String
    var balance: Int
    @Version var version: Int64 = 0
}

/// A hand-written model with a version column and no key paths: partial updates refuse it.
struct HandCounter: PersistentModel, Equatable {
    var id = UUID.v7()
    var createdAt = Date()
    var updatedAt = Date()
    var label: String
    var version: Int64 = 0

    static let schema = ModelSchema(modelName: "HandCounter", table: "hand_counters", columns: [
        ModelSchema.column("label", String.self),
        ModelSchema.versionColumn("version", Int64.self),
    ])

    func bindColumns(to row: inout ModelRowWriter) throws {
        try row.write(self.label)
        try row.write(self.version)
    }
}

extension HandCounter {
    init(row: inout ModelRowReader) throws {
        (self.id, self.createdAt, self.updatedAt) = try row.readBase()
        self.label = try row.read(String.self)
        self.version = try row.read(Int64.self)
    }
}

// The recipe of the DocC article TypedAccess.md; theArticleShowsTheCompiledRecipe checks the
// article's blocks are this text.

// MARK: ledger-claim
/// Moves the most urgent queued run to running for `worker`; `nil` when no run is free.
func claimRun(_ client: PhylacteryClient, worker: UUID) async throws -> LedgerRun? {
    try await client.transaction { tx in
        guard var run = try await tx.fetch(LedgerRun.self, where: "status = 'queued'", orderBy: "priority DESC, created_at, id",
                                           limit: 1, lock: .forUpdate(.skipLocked)).first else { return nil }
        run.status = .running
        run.workerID = worker
        run.attempts += 1
        return try await tx.update(run, where: "status = 'queued'")
    }
}
// MARK: end

// MARK: ledger-finish
/// Moves a run from running to done, unless someone else moved it first.
func finishRun(_ client: PhylacteryClient, _ run: LedgerRun) async throws -> Bool {
    var done = run
    done.status = .done
    return try await client.update(done, where: "status = 'running' AND worker_id = \(run.workerID)") != nil
}
// MARK: end

/// A one-shot signal between tasks: `wait()` returns once `fire()` was called (no sleeping).
final class Signal: Sendable {
    private let state = Mutex<(fired: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func fire() {
        let waiters = self.state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.fired = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func wait() async {
        await withCheckedContinuation { continuation in
            let resumeNow = self.state.withLock { state -> Bool in
                if state.fired { return true }
                state.waiters.append(continuation)
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }
}

@Suite struct TypedAccessTests {
    static func migrate(_ client: PhylacteryClient) async throws {
        let federation = try Federation(core: Federation.coreModels + [
            ModelRegistration(LedgerWorker.self), ModelRegistration(LedgerRun.self), ModelRegistration(LedgerAccount.self),
            ModelRegistration(HandCounter.self),
        ])
        _ = try await Migrator(client: client, federation: federation).auto()
    }

    /// Whether some other session waits for a lock (what a blocked statement looks like).
    static func someoneWaitsForALock(_ client: PhylacteryClient) async throws -> Bool {
        let rows = try await client.query("""
            SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'
            """).collect()
        return try rows.first!.decode(Int.self) > 0
    }

    @Test func theRecipeMovesARunAndTheArticleShowsIt() async throws {
        try await TestDatabase.withFreshDatabase("typed_recipe") { client in
            try await Self.migrate(client)
            let worker = try await client.insert(LedgerWorker(name: "w"))
            try await client.insert(LedgerRun(name: "low", status: .queued, priority: 1))
            try await client.insert(LedgerRun(name: "high", status: .queued, priority: 5))
            let claimed = try #require(try await claimRun(client, worker: worker.id))
            #expect(claimed.name == "high" && claimed.status == .running && claimed.workerID == worker.id && claimed.attempts == 1)
            #expect(try await finishRun(client, claimed))
            #expect(try await finishRun(client, claimed) == false, "a second finish finds the run already done")
            #expect(try await client.find(LedgerRun.self, id: claimed.id)?.status == .done)
            #expect(try await claimRun(client, worker: worker.id)?.name == "low")
            #expect(try await claimRun(client, worker: worker.id) == nil)
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let source = try String(contentsOfFile: #filePath, encoding: .utf8)
        let article = try String(contentsOfFile: root + "/Sources/Phylactery/Documentation.docc/TypedAccess.md", encoding: .utf8)
        let sections = CheckedSnippets.sections(of: source)
        #expect(Set(sections.keys) == ["ledger-claim", "ledger-finish"])
        for (name, text) in sections {
            #expect(article.contains("```swift\n" + text + "\n```"), "the article's \(name) block differs from TypedAccessTests.swift")
        }
    }

    @Test func skipLockedWorkersNeverClaimTheSameRow() async throws {
        try await TestDatabase.withFreshDatabase("typed_skip_locked") { client in
            try await Self.migrate(client)
            for round in 0..<8 {
                let runs = (0..<60).map { LedgerRun(name: "r\(round)-\($0)", status: .queued, priority: $0 % 5) }
                try await client.insert(contentsOf: runs)
                // Three workers, each on its own connection, claim until nothing is left.
                let claims = try await withThrowingTaskGroup(of: [UUID].self) { group in
                    for worker in 0..<3 {
                        group.addTask {
                            var mine: [UUID] = []
                            while true {
                                let claimed: UUID? = try await client.transaction { tx in
                                    guard var run = try await tx.fetch(
                                        LedgerRun.self, where: "status = 'queued'", orderBy: "priority DESC, created_at, id",
                                        limit: 1, lock: .forUpdate(.skipLocked)).first else { return nil }
                                    run.status = .running
                                    run.notes.append("worker \(worker)")
                                    try await tx.update(run)
                                    return run.id
                                }
                                guard let claimed else { return mine }
                                mine.append(claimed)
                            }
                        }
                    }
                    var all: [[UUID]] = []
                    for try await claimed in group { all.append(claimed) }
                    return all
                }
                let flat = claims.flatMap { $0 }
                #expect(flat.count == 60, "round \(round): \(flat.count) claims for 60 rows")
                #expect(Set(flat).count == flat.count, "round \(round): a row was claimed twice")
                #expect(Set(flat) == Set(runs.map(\.id)))
                // Each row was claimed by exactly one worker: one note, no lost update.
                let stored = try await client.fetch(LedgerRun.self, where: "name LIKE \("r\(round)-%")")
                #expect(stored.allSatisfy { $0.status == .running && $0.notes.count == 1 })
            }
        }
    }

    @Test func lockedRowsAreSkippedOrRefusedWithATypedError() async throws {
        try await TestDatabase.withFreshDatabase("typed_no_wait") { client in
            try await Self.migrate(client)
            let first = try await client.insert(LedgerRun(name: "first", status: .queued, priority: 2))
            let second = try await client.insert(LedgerRun(name: "second", status: .queued, priority: 1))
            let locked = Signal()
            let release = Signal()
            // Another transaction holds the first row FOR UPDATE until released.
            let holder = Task {
                try await client.transaction { tx in
                    let row = try await tx.find(LedgerRun.self, id: first.id, lock: .forUpdate)
                    #expect(row?.id == first.id)
                    locked.fire()
                    await release.wait()
                }
            }
            await locked.wait()
            try await client.transaction { tx in
                // SKIP LOCKED leaves the locked row out, for fetch and for find.
                let unlocked = try await tx.fetch(LedgerRun.self, orderBy: "priority DESC", lock: .forUpdate(.skipLocked))
                #expect(unlocked.map(\.id) == [second.id])
                #expect(try await tx.find(LedgerRun.self, id: first.id, lock: .forShare(.skipLocked)) == nil)
                #expect(try await tx.find(LedgerRun.self, id: first.id, lock: .forKeyShare(.skipLocked)) == nil)
                // NOWAIT fails with the typed error; inside a savepoint the transaction goes on.
                let refused = await #expect(throws: PhylacteryError.self) {
                    try await tx.transaction { inner in
                        try await inner.fetch(LedgerRun.self, where: "id = \(first.id)", lock: .forNoKeyUpdate(.noWait))
                    }
                }
                #expect(refused?.code == .lockNotAvailable)
                #expect(refused?.sqlState == "55P03")
                #expect(refused?.message.contains("savepoint") == true)
                #expect(try await tx.count(LedgerRun.self) == 2)
            }
            // Without a savepoint the error aborts the transaction, like any failed statement.
            let aborted = await #expect(throws: PhylacteryError.self) {
                try await client.transaction { tx in
                    _ = try await tx.find(LedgerRun.self, id: first.id, lock: .forUpdate(.noWait))
                }
            }
            #expect(aborted?.code == .lockNotAvailable)
            release.fire()
            try await holder.value
            // Once the holder committed, the row can be locked again at once.
            let relocked = try await client.transaction { tx in
                try await tx.find(LedgerRun.self, id: first.id, lock: .forUpdate(.noWait))
            }
            #expect(relocked?.id == first.id)
        }
    }

    @Test func compareAndSetLosesCleanlyUnderAConcurrentUpdate() async throws {
        try await TestDatabase.withFreshDatabase("typed_cas") { client in
            try await Self.migrate(client)
            let run = try await client.insert(LedgerRun(name: "contested", status: .running, priority: 1))
            let winnerWrote = Signal()
            let commitWinner = Signal()
            // The winner moves running → done and keeps its transaction open.
            let winner = Task {
                try await client.transaction { tx -> LedgerRun? in
                    var done = run
                    done.status = .done
                    done.notes = ["winner"]
                    let stored = try await tx.update(done, where: "status = \(LedgerStatus.running.rawValue)")
                    winnerWrote.fire()
                    await commitWinner.wait()
                    return stored
                }
            }
            await winnerWrote.wait()
            // The loser's compare-and-set waits for the winner's row lock, then re-checks and misses.
            let loser = Task {
                try await client.transaction { tx -> LedgerRun? in
                    var failed = run
                    failed.status = .failed
                    failed.notes = ["loser"]
                    return try await tx.update(failed, where: "status = \(LedgerStatus.running.rawValue)")
                }
            }
            try await eventually("the loser waits for the winner's lock", timeout: .seconds(30)) {
                try await Self.someoneWaitsForALock(client)
            }
            commitWinner.fire()
            let won = try await winner.value
            #expect(won?.status == .done)
            #expect(try await loser.value == nil)
            let stored = try #require(try await client.find(LedgerRun.self, id: run.id))
            #expect(stored.status == .done && stored.notes == ["winner"])
            #expect(stored == won)

            // A condition that no longer holds misses and writes nothing; one that holds matches.
            var stale = run
            stale.priority = 9
            #expect(try await client.update(stale, where: "status = \(LedgerStatus.running.rawValue)") == nil)
            #expect(try await client.find(LedgerRun.self, id: run.id) == stored)
            var fresh = stored
            fresh.priority = 9
            let moved = try #require(try await client.update(fresh, where: "status = \(LedgerStatus.done.rawValue) AND priority = \(stored.priority)"))
            #expect(moved.priority == 9 && moved.updatedAt > stored.updatedAt && moved.notes == ["winner"])
            // No row with that id: nil too.
            var ghost = fresh
            ghost.id = .v7()
            #expect(try await client.update(ghost, where: "true") == nil)
        }
    }

    @Test func versionColumnRefusesStaleWrites() async throws {
        try await TestDatabase.withFreshDatabase("typed_version") { client in
            try await Self.migrate(client)
            let account = try await client.insert(LedgerAccount(owner: "ada", balance: 100))
            #expect(account.version == 0)
            var mine = account
            mine.balance = 150
            let written = try await client.update(mine)
            #expect(written.version == 1 && written.balance == 150)
            // A copy read before that write is stale: nothing is written, the row keeps 150.
            var theirs = account
            theirs.balance = 10
            let stale = await #expect(throws: PhylacteryError.self) { try await client.update(theirs) }
            #expect(stale?.code == .staleRow)
            #expect(try await client.find(LedgerAccount.self, id: account.id) == written)
            // A missing row is still notFound.
            var ghost = written
            ghost.id = .v7()
            let missing = await #expect(throws: PhylacteryError.self) { try await client.update(ghost) }
            #expect(missing?.code == .notFound)

            // Two writers race from the same version, many times: exactly one wins each round and
            // the row holds the winner's value.
            var current = written
            for round in 0..<20 {
                let base = current
                let outcomes = try await withThrowingTaskGroup(of: (Int, LedgerAccount?).self) { group in
                    for writer in 0..<2 {
                        group.addTask {
                            var copy = base
                            copy.balance = round * 10 + writer
                            do {
                                return (writer, try await client.update(copy))
                            } catch let error as PhylacteryError where error.code == .staleRow {
                                return (writer, nil)
                            }
                        }
                    }
                    var all: [(Int, LedgerAccount?)] = []
                    for try await outcome in group { all.append(outcome) }
                    return all
                }
                let winners = outcomes.compactMap(\.1)
                #expect(winners.count == 1, "round \(round): \(winners.count) winners")
                let stored = try #require(try await client.find(LedgerAccount.self, id: account.id))
                #expect(stored == winners.first)
                #expect(stored.version == base.version + 1)
                current = stored
            }

            // Partial updates and upserts count the version up as well.
            let changed = try await client.update(LedgerAccount.self, set: { $0.set(\.balance, to: 7) }, where: "id = \(account.id)")
            #expect(changed == 1)
            let afterPartial = try #require(try await client.find(LedgerAccount.self, id: account.id))
            #expect(afterPartial.version == current.version + 1 && afterPartial.balance == 7)
            var upserted = afterPartial
            upserted.version = 0
            upserted.balance = 8
            let afterUpsert = try await client.upsert(upserted)
            #expect(afterUpsert.version == afterPartial.version + 1 && afterUpsert.balance == 8)

            // A hand-written versioned model works the same way.
            let counter = try await client.insert(HandCounter(label: "a"))
            var next = counter
            next.label = "b"
            #expect(try await client.update(next).version == 1)
            let handStale = await #expect(throws: PhylacteryError.self) { try await client.update(counter) }
            #expect(handStale?.code == .staleRow)
        }
    }

    @Test func partialUpdateWritesOnlyTheAssignedColumns() async throws {
        try await TestDatabase.withFreshDatabase("typed_partial") { client in
            try await Self.migrate(client)
            let worker = try await client.insert(LedgerWorker(name: "w1"))
            var runs: [LedgerRun] = []
            for index in 0..<5 {
                runs.append(try await client.insert(LedgerRun(
                    name: "run \(index)", status: index < 3 ? .running : .queued, workerID: worker.id,
                    priority: index, attempts: index, notes: ["n\(index)"])))
            }
            let changed = try await client.update(LedgerRun.self, set: {
                $0.set(\.status, to: .queued)
                $0.set(\.workerID, to: nil)
                $0.set(\.notes, to: ["released"])
            }, where: "status = 'running' AND priority < \(2)")
            #expect(changed == 2)
            let stored = try await client.fetch(LedgerRun.self, orderBy: "priority")
            for (before, after) in zip(runs, stored) {
                #expect(after.name == before.name && after.priority == before.priority && after.attempts == before.attempts)
                #expect(after.createdAt == before.createdAt)
                if before.priority < 2 {
                    #expect(after.status == .queued && after.workerID == nil && after.notes == ["released"])
                    #expect(after.updatedAt > before.updatedAt)
                } else {
                    #expect(after == before)
                }
            }
            // Nothing matches: nothing changes.
            #expect(try await client.update(LedgerRun.self, set: { $0.set(\.attempts, to: 9) }, where: "false") == 0)

            // Refused before anything is sent: no assignment, the version column, a model without key paths.
            let empty = await #expect(throws: PhylacteryError.self) {
                try await client.update(LedgerRun.self, set: { _ in }, where: "true")
            }
            #expect(empty?.code == .invalidArgument)
            let version = await #expect(throws: PhylacteryError.self) {
                try await client.update(LedgerAccount.self, set: { $0.set(\.version, to: 5) }, where: "true")
            }
            #expect(version?.code == .invalidArgument)
            #expect(version?.message.contains("version column") == true)
            let handWritten = await #expect(throws: PhylacteryError.self) {
                try await client.update(HandCounter.self, set: { $0.set(\.label, to: "x") }, where: "true")
            }
            #expect(handWritten?.code == .invalidArgument)
            #expect(handWritten?.message.contains("columnKeyPaths") == true)
            #expect(try await client.fetch(LedgerRun.self, orderBy: "priority") == stored)
        }
    }

    @Test func customJoinsDecodeModelsAndMismatchedColumnsAreNamed() async throws {
        try await TestDatabase.withFreshDatabase("typed_custom_sql") { client in
            try await Self.migrate(client)
            let ada = try await client.insert(LedgerWorker(name: "ada"))
            let bob = try await client.insert(LedgerWorker(name: "bob"))
            for index in 0..<6 {
                try await client.insert(LedgerRun(name: "run \(index)", status: .running, workerID: index % 2 == 0 ? ada.id : bob.id, priority: index))
            }
            try await client.transaction { tx in
                // A join: the runs of a worker named by a bound value.
                let joined = try await tx.models(LedgerRun.self, from: """
                    SELECT \(unescaped: LedgerRun.selectList(alias: "r"))
                    FROM \(unescaped: LedgerRun.qualifiedTableName) r
                    JOIN \(unescaped: LedgerWorker.qualifiedTableName) w ON w.id = r.worker_id
                    WHERE w.name = \("ada") ORDER BY r.priority
                    """)
                #expect(joined.map(\.priority) == [0, 2, 4])
                #expect(joined.allSatisfy { $0.workerID == ada.id })
                // A CTE feeding UPDATE … RETURNING.
                let bumped = try await tx.models(LedgerRun.self, from: """
                    WITH top AS (SELECT id FROM \(unescaped: LedgerRun.qualifiedTableName) ORDER BY priority DESC LIMIT 2)
                    UPDATE \(unescaped: LedgerRun.qualifiedTableName) r SET attempts = attempts + 1
                    FROM top WHERE r.id = top.id RETURNING \(unescaped: LedgerRun.selectList(alias: "r"))
                    """)
                #expect(Set(bumped.map(\.priority)) == [4, 5] && bumped.allSatisfy { $0.attempts == 1 })

                // Mismatched select lists fail before any row is read, naming the column; the
                // transaction stays usable.
                let missing = await #expect(throws: PhylacteryError.self) {
                    try await tx.models(LedgerRun.self, from: "SELECT id, created_at, updated_at, name, status, worker_id, priority, notes FROM public.ledger_runs")
                }
                #expect(missing?.code == .decodingFailed)
                #expect(missing?.message.contains("missing \"attempts\"") == true)
                let extra = await #expect(throws: PhylacteryError.self) {
                    try await tx.models(LedgerRun.self, from: "SELECT r.*, w.name AS worker_name FROM public.ledger_runs r JOIN public.ledger_workers w ON w.id = r.worker_id")
                }
                #expect(extra?.message.contains("extra \"worker_name\"") == true)
                let swapped = await #expect(throws: PhylacteryError.self) {
                    try await tx.models(LedgerRun.self, from: "SELECT id, created_at, updated_at, status, name, worker_id, priority, attempts, notes FROM public.ledger_runs")
                }
                #expect(swapped?.message.contains("out of order: result column 4 is \"status\" where LedgerRun reads \"name\"") == true)
                // An empty result is checked too (the columns come before the rows).
                await #expect(throws: PhylacteryError.self) {
                    try await tx.models(LedgerWorker.self, from: "SELECT id, created_at, updated_at FROM public.ledger_workers WHERE false")
                }
                #expect(try await tx.count(LedgerRun.self) == 6)
            }
            // The client runs it in a transaction of its own.
            #expect(try await client.models(LedgerWorker.self, from: "SELECT \(unescaped: LedgerWorker.selectList()) FROM public.ledger_workers ORDER BY name").map(\.name) == ["ada", "bob"])
            // A stream from custom SQL is checked the same way.
            try await client.transaction { tx in
                let stream = try await tx.stream(LedgerWorker.self, from: "SELECT \(unescaped: LedgerWorker.selectList(alias: "w")) FROM public.ledger_workers w WHERE w.name = \("bob")")
                var names: [String] = []
                for try await worker in stream { names.append(worker.name) }
                #expect(names == ["bob"])
            }
            _ = bob
        }
    }

    @Test func orderByTakesOnlyTheModelsColumns() async throws {
        try await TestDatabase.withFreshDatabase("typed_order_by") { client in
            try await Self.migrate(client)
            for index in 0..<4 {
                try await client.insert(LedgerRun(name: "run \(index)", status: .queued, priority: index % 2))
            }
            for bad in ["1; DROP TABLE public.ledger_runs", "random()", "nope", "priority DESC; SELECT 1", "1", "priority DESCENDING",
                        "priority, ", "lower(name)", "name COLLATE \"C\"", "\"priority\"\"x\"", "(priority)", ""] {
                let error = await #expect(throws: PhylacteryError.self, "\(bad)") {
                    try await client.fetch(LedgerRun.self, orderBy: bad)
                }
                #expect(error?.code == .invalidArgument, "\(bad)")
                #expect(error?.message.contains("created_at") == true, "the allowed columns are named for \(bad)")
            }
            let unknown = await #expect(throws: PhylacteryError.self) {
                try await client.fetch(LedgerRun.self, orderBy: [.descending("nope")])
            }
            #expect(unknown?.message.contains("'nope' is not a column of LedgerRun") == true)
            // The table is still there, and good orderings work, as text or typed.
            #expect(try await client.count(LedgerRun.self) == 4)
            let text = try await client.fetch(LedgerRun.self, orderBy: "priority DESC NULLS LAST, \"name\" asc, ID")
            let typed = try await client.fetch(LedgerRun.self, orderBy: [.descending("priority", nulls: .last), .ascending("name"), .ascending("id")])
            #expect(text.map(\.name) == ["run 1", "run 3", "run 0", "run 2"])
            #expect(typed == text)
            #expect(Ordering.parse("due DESC, id") == [.descending("due"), .ascending("id")])
            #expect(Ordering.parse("a; b") == nil)
        }
    }

    @Test func keysetPagesStayStableWhileRowsArrive() async throws {
        try await TestDatabase.withFreshDatabase("typed_pages") { client in
            try await Self.migrate(client)
            // Many ties on priority, so the id tie-breaker matters.
            let originals = (0..<95).map { LedgerRun(name: "run \($0)", status: .queued, priority: $0 % 4) }
            try await client.insert(contentsOf: originals)
            let ordering: [Ordering] = [.descending("priority"), .ascending("name")]
            var seen: [LedgerRun] = []
            var cursor: PageCursor?
            var pages = 0
            repeat {
                let page = try await client.page(LedgerRun.self, where: "status <> 'failed'", orderBy: ordering, after: cursor, limit: 10)
                seen += page.items
                pages += 1
                // Rows arrive between pages, on both sides of the cursor; neither shifts the pages.
                try await client.insert(LedgerRun(name: "early \(pages)", status: .queued, priority: 9))
                try await client.insert(LedgerRun(name: "zzz late \(pages)", status: .queued, priority: -1))
                // The token survives a round trip through text (a CLI's --after).
                cursor = try page.next.map { try #require(PageCursor($0.description)) }
                #expect(pages < 40)
            } while cursor != nil
            let seenOriginals = seen.filter { $0.name.hasPrefix("run ") }
            #expect(seenOriginals.count == 95)
            #expect(Set(seenOriginals.map(\.id)).count == 95)
            #expect(Set(seen.map(\.id)).count == seen.count, "no row is repeated")
            // The original rows come in the page order.
            let expected = originals.sorted { ($0.priority, $1.name) > ($1.priority, $0.name) }
            #expect(seenOriginals.map(\.name) == expected.map(\.name))
            // Rows inserted before the cursor are not seen; those after it are.
            #expect(!seen.contains { $0.name.hasPrefix("early") })
            #expect(seen.contains { $0.name.hasPrefix("zzz late") })

            // Refusals: a cursor from another ordering, a nullable key, a bad limit, a bad token.
            let firstPage = try await client.page(LedgerRun.self, limit: 5)
            let next = try #require(firstPage.next)
            let other = await #expect(throws: PhylacteryError.self) {
                try await client.page(LedgerRun.self, orderBy: [.ascending("name")], after: next, limit: 5)
            }
            #expect(other?.code == .invalidArgument)
            await #expect(throws: PhylacteryError.self) { try await client.page(LedgerRun.self, orderBy: [.ascending("worker_id")], limit: 5) }
            await #expect(throws: PhylacteryError.self) { try await client.page(LedgerRun.self, limit: 0) }
            #expect(PageCursor("not a token") == nil)
            // Paging by id alone visits every row once.
            var all: [UUID] = []
            var idCursor: PageCursor?
            repeat {
                let page = try await client.page(LedgerRun.self, after: idCursor, limit: 50)
                all += page.items.map(\.id)
                idCursor = page.next
            } while idCursor != nil
            // uuid order is byte order, which the lower-case text of equal-length UUIDs keeps.
            #expect(all == all.sorted { $0.uuidString.lowercased() < $1.uuidString.lowercased() })
            #expect(Set(all).count == all.count)
            #expect(all.count == (try await client.count(LedgerRun.self)))
        }
    }
}
