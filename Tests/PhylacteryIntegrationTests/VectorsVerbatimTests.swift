import Foundation
import Phylactery
import PhylacteryTestSupport
import PostgresNIO
import Testing

/// The vectors and verbatim chambers and recall, against a real PostgreSQL with pgvector.
@Suite struct VectorsVerbatimTests {
    static let space = EmbeddingSpace(model: "test-embedder", fingerprint: "v1", dimensions: 384)

    /// Seeded vectors around a few centres, so neighbours are meaningful and runs repeat.
    struct Vectors {
        var state: UInt64
        var centres: [[Float]] = []
        init(seed: UInt64, dimensions: Int = 384, clusters: Int = 8) {
            self.state = seed
            self.centres = (0..<clusters).map { _ in (0..<dimensions).map { _ in Float(self.uniform() * 2 - 1) } }
        }
        mutating func uniform() -> Double {
            self.state &+= 0x9E37_79B9_7F4A_7C15
            var z = self.state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Double((z ^ (z >> 31)) >> 11) / Double(1 << 53)
        }
        mutating func next() throws -> Vector {
            let centre = self.centres[Int(self.uniform() * Double(self.centres.count))]
            return try Vector(centre.map { $0 + Float(self.uniform() - 0.5) * 0.6 })
        }
    }

    static func migrated<R: Sendable>(_ label: String, extra: [ModelRegistration] = [], _ body: (PhylacteryClient) async throws -> R) async throws -> R {
        try await TestDatabase.withFreshDatabase(label) { client in
            let migrator = Migrator(client: client, federation: try Federation(core: Federation.coreModels + extra))
            _ = try await migrator.auto()
            #expect(try await migrator.plan().isEmpty)
            return try await body(client)
        }
    }

    // MARK: - Verbatim

    @Test func rawUpdateDeleteAndTruncateOfAFactFail() async throws {
        try await Self.migrated("facts_immutable") { client in
            let fact = try await client.transaction { tx in try await tx.facts.put("network", key: "gateway.ip", value: "10.0.0.1", source: "operator") }
            #expect(fact.version == 1 && fact.supersedes == nil)
            for sql in [
                "UPDATE verbatim.facts SET value = '\"10.9.9.9\"'::jsonb",
                "DELETE FROM verbatim.facts",
                "TRUNCATE verbatim.facts",
                "UPDATE verbatim.facts SET version = 2 WHERE key = 'gateway.ip'",
            ] {
                let error = await #expect(throws: PhylacteryError.self) { try await client.execute(PostgresQuery(unsafeSQL: sql)) }
                #expect(error?.sqlState == FactStore.immutableSQLState, "\(sql)")
                #expect(error?.message.contains("immutable") == true)
            }
            let stored = try await client.transaction { tx in try await tx.facts.history("network", key: "gateway.ip") }
            #expect(try stored.map { try $0.decode(String.self) } == ["10.0.0.1"])
        }
    }

    @Test func supersedeKeepsHistoryInOrder() async throws {
        try await Self.migrated("facts_history") { client in
            try await client.transaction { tx in
                let first = try await tx.facts.put("network", key: "dns", value: ["1.1.1.1"], source: "dhcp")
                let second = try await tx.facts.supersede("network", key: "dns", value: ["9.9.9.9"], source: "operator")
                let third = try await tx.facts.supersede("network", key: "dns", value: ["9.9.9.9", "1.1.1.1"], source: "operator", expectedVersion: 2)
                #expect(second.version == 2 && second.supersedes == first.id)
                #expect(third.version == 3 && third.supersedes == second.id)

                let history = try await tx.facts.history("network", key: "dns")
                #expect(history.map(\.version) == [1, 2, 3])
                #expect(history.map(\.id) == [first.id, second.id, third.id])
                #expect(try history.map { try $0.decode([String].self) } == [["1.1.1.1"], ["9.9.9.9"], ["9.9.9.9", "1.1.1.1"]])
                #expect(history.map(\.source) == ["dhcp", "operator", "operator"])
                #expect(try await tx.facts.get("network", key: "dns")?.id == third.id)
            }
            // Refusals, each in its own transaction (they abort it) and none changing anything.
            let exists = await #expect(throws: PhylacteryError.self) {
                try await client.transaction { tx in try await tx.facts.put("network", key: "dns", value: 1, source: "x") }
            }
            #expect(exists?.code == .factExists)
            let stale = await #expect(throws: PhylacteryError.self) {
                try await client.transaction { tx in try await tx.facts.supersede("network", key: "dns", value: 2, source: "x", expectedVersion: 2) }
            }
            #expect(stale?.code == .staleFact)
            let missing = await #expect(throws: PhylacteryError.self) {
                try await client.transaction { tx in try await tx.facts.supersede("network", key: "nope", value: 2, source: "x") }
            }
            #expect(missing?.code == .notFound)
            #expect(try await client.transaction { tx in try await tx.facts.history("network", key: "dns") }.count == 3)
        }
    }

    @Test func concurrentWritersOfOneKeyRecordOneVersion() async throws {
        try await Self.migrated("facts_race") { client in
            try await client.transaction { tx in try await tx.facts.put("network", key: "ntp", value: "a", source: "x") }
            // A records version 2 and holds its transaction open; B supersedes meanwhile, waits on A's
            // row in the unique index, and is refused once A commits.
            let writers: [(String, @Sendable (Transaction) async throws -> Void)] = [
                ("supersede", { tx in _ = try await tx.facts.supersede("network", key: "ntp", value: "b", source: "x") }),
                ("put", { tx in _ = try await tx.facts.put("network", key: "fresh", value: "b", source: "x") }),
            ]
            for (label, write) in writers {
                let (written, signal) = AsyncStream<Void>.makeStream()
                let first = Task {
                    try await client.transaction { tx in
                        try await write(tx)
                        signal.yield()
                        // Commit only once the second writer is blocked behind this one.
                        let deadline = ContinuousClock.now + .seconds(60)
                        while try await client.query("""
                            SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'
                            """).collect().first!.decode(Int.self) == 0 {
                            guard ContinuousClock.now < deadline else { Issue.record("\(label): the second writer never waited"); break }
                            try await Task.sleep(for: .milliseconds(20))
                        }
                    }
                }
                for await _ in written { break }
                let second = await #expect(throws: PhylacteryError.self, "\(label)") {
                    try await client.transaction { tx in try await write(tx) }
                }
                try await first.value
                #expect(second?.code == (label == "put" ? .factExists : .staleFact), "\(label): \(String(describing: second))")
            }
            let versions = try await client.transaction { tx in
                (try await tx.facts.history("network", key: "ntp").map(\.version), try await tx.facts.history("network", key: "fresh").map(\.version))
            }
            #expect(versions.0 == [1, 2] && versions.1 == [1])
        }
    }

    @Test func getManyAndPrefixListing() async throws {
        try await Self.migrated("facts_list") { client in
            try await client.transaction { tx in
                for (key, value) in [("host.a", 1), ("host.b", 2), ("host_c", 3), ("hostile", 4), ("other", 5)] {
                    try await tx.facts.put("inventory", key: key, value: value, source: "scan")
                }
                try await tx.facts.put("elsewhere", key: "host.z", value: 0, source: "scan")
                try await tx.facts.supersede("inventory", key: "host.b", value: 20, source: "scan")
                let hosts = try await tx.facts.list("inventory", prefix: "host.")
                #expect(hosts.map(\.key) == ["host.a", "host.b"])
                #expect(try hosts.map { try $0.decode(Int.self) } == [1, 20])
                // `_` is literal, not a wildcard.
                #expect(try await tx.facts.list("inventory", prefix: "host_").map(\.key) == ["host_c"])
                #expect(try await tx.facts.list("inventory").count == 5)
                let many = try await tx.facts.get("inventory", keys: ["host.a", "host.b", "missing"])
                #expect(Set(many.keys) == ["host.a", "host.b"] && many["host.b"]?.version == 2)
            }
        }
    }

    // MARK: - Vectors

    @Test func memoriesRoundTripInBinaryAndRecordStatusChanges() async throws {
        try await Self.migrated("memory_round_trip") { client in
            var vectors = Vectors(seed: 1)
            let embedding = try vectors.next()
            let metadata = try RawJSONB(validating: #"{"topic":"network","tags":["dns"]}"#)
            let stored = try await client.transaction { tx in
                try await tx.memory.remember(Memory(content: "dns is slow on mondays", embedding: embedding, space: Self.space,
                                                    metadata: metadata, owner: "core", source: "chat"))
            }
            #expect(stored.embedding?.elements.map(\.bitPattern) == embedding.elements.map(\.bitPattern))
            let readBack = try await client.transaction { tx in try await tx.memory.embedding(of: stored.id, in: Self.space) }
            #expect(readBack?.elements.map(\.bitPattern) == embedding.elements.map(\.bitPattern))
            #expect(stored.status == .speculative && stored.statusChangedBy == nil && stored.space == Self.space && stored.sensitivity == .private)

            let consecrated = try await client.transaction { tx in try await tx.memory.consecrate(stored.id, by: "operator") }
            #expect(consecrated.status == .consecrated && consecrated.statusChangedBy == "operator" && consecrated.statusChangedAt != nil)
            let rejected = try await client.transaction { tx in try await tx.memory.reject(stored.id, by: "reviewer") }
            #expect(rejected.status == .rejected && rejected.statusChangedBy == "reviewer")
            // Every change is logged, in order, with the status it replaced.
            let history = try await client.transaction { tx in try await tx.memory.statusHistory(of: stored.id) }
            #expect(history.map { "\($0.fromStatus.rawValue)>\($0.toStatus.rawValue) \($0.changedBy)" }
                    == ["speculative>consecrated operator", "consecrated>rejected reviewer"])
            #expect(history.allSatisfy { $0.memoryID == stored.id } && history[0].changedAt <= history[1].changedAt)
            // A change rolled back with its transaction leaves no log entry.
            await #expect(throws: CancellationError.self) {
                try await client.transaction { tx in
                    try await tx.memory.consecrate(stored.id, by: "hasty")
                    throw CancellationError()
                }
            }
            #expect(try await client.transaction { tx in try await tx.memory.statusHistory(of: stored.id) }.count == 2)
            let anonymous = await #expect(throws: PhylacteryError.self) { try await client.transaction { tx in try await tx.memory.reject(stored.id, by: "") } }
            #expect(anonymous?.code == .invalidArgument)
            // The database checks the status itself.
            let bad = await #expect(throws: PhylacteryError.self) { try await client.execute("UPDATE vectors.memories SET status = 'believed'") }
            #expect(bad?.sqlState == "23514")

            try await client.transaction { tx in
                let hits = try await tx.memory.search(embedding, in: Self.space, options: .init(k: 3, statuses: [.rejected], metadata: try RawJSONB(validating: #"{"topic":"network"}"#)))
                #expect(hits.map(\.memory.id) == [stored.id] && hits[0].distance < 1e-6 && hits[0].status == .rejected)
                #expect(try await tx.memory.search(embedding, in: Self.space).isEmpty)   // rejected is not searched by default
                let otherTopic = try await tx.memory.search(embedding, in: Self.space, options: .init(statuses: [.rejected], metadata: try RawJSONB(validating: #"{"topic":"food"}"#)))
                #expect(otherTopic.isEmpty)
                // Another space with the same dimension never sees these vectors.
                let other = EmbeddingSpace(model: "test-embedder", fingerprint: "v2", dimensions: 384)
                #expect(try await tx.memory.search(embedding, in: other, options: .init(statuses: [.rejected])).isEmpty)
                #expect(try await tx.memory.stats().map(\.count) == [1])
                #expect(try await tx.memory.forget(stored.id, by: "operator", reason: "test"))
                #expect(try await tx.memory.forget(stored.id, by: "operator", reason: "test") == false)
                #expect(try await tx.memory.statusHistory(of: stored.id).isEmpty)   // forgotten with its log
            }
            let missing = await #expect(throws: PhylacteryError.self) { try await client.transaction { tx in try await tx.memory.consecrate(UUID(), by: "x") } }
            #expect(missing?.code == .notFound)
        }
    }

    @Test func aStatusFilterWithOnePercentSelectivityStillReturnsK() async throws {
        try await Self.migrated("memory_selective") { client in
            var vectors = Vectors(seed: 42)
            let rows = 3000
            var memories: [Memory] = []
            for i in 0..<rows {
                memories.append(try Memory(content: "thought \(i)", embedding: try vectors.next(), space: Self.space,
                                           status: i % 100 == 0 ? .consecrated : .speculative, owner: i % 2 == 0 ? "even" : "odd", source: "test"))
            }
            let inserted = try await client.transaction { tx in try await tx.memory.remember(contentsOf: memories) }
            #expect(inserted == rows)
            try await client.execute("ANALYZE vectors.memories")
            try await client.execute("ANALYZE vectors.embeddings")
            let query = try vectors.next()
            try await client.transaction { tx in
                // Make the planner take the HNSW index (it could scan 3000 rows outright); production
                // planners choose it for large tables on their own.
                try await tx.execute("SET LOCAL enable_seqscan = off")
                try await tx.execute("SET LOCAL enable_sort = off")
                let plan = try await tx.query(PostgresQuery(unsafeSQL: """
                    EXPLAIN SELECT m.id FROM vectors.embeddings AS e JOIN vectors.memories AS m ON m.id = e.memory_id
                    WHERE e.dimensions = 384 AND m.status = 'consecrated'
                    ORDER BY (e.embedding::vector(384)) <=> '[\(Array(repeating: "0.1", count: 384).joined(separator: ","))]'::vector(384) LIMIT 10
                    """)).collect().map { try $0.decode(String.self) }.joined(separator: "\n")
                #expect(plan.contains(MemoryEmbedding.hnswIndexName(dimensions: 384)), "\(plan)")

                // One pass of ef_search candidates leaves fewer than k consecrated rows: the index is in use …
                let onePass = try await tx.memory.search(query, in: Self.space, options: .init(k: 10, statuses: [.consecrated], efSearch: 40, iterativeScan: .off))
                #expect(onePass.count < 10)
                // … and iterative scans keep going until k rows pass the 1% filter.
                let relaxed = try await tx.memory.search(query, in: Self.space, options: .init(k: 10, statuses: [.consecrated], efSearch: 40))
                #expect(relaxed.count == 10 && relaxed.allSatisfy { $0.status == .consecrated })
                #expect(relaxed.map(\.distance) == relaxed.map(\.distance).sorted())
                let strict = try await tx.memory.search(query, in: Self.space, options: .init(k: 10, statuses: [.consecrated], efSearch: 40, iterativeScan: .strictOrder))
                #expect(strict.count == 10)
                let exact = try await tx.memory.search(query, in: Self.space, options: .init(k: 10, statuses: [.consecrated], exact: true))
                #expect(exact.count == 10)
                let overlap = Set(exact.map(\.memory.id)).intersection(relaxed.map(\.memory.id)).count
                #expect(overlap >= 8, "recall@10 of the filtered index search against exact: \(overlap)/10")
                // The search put the scan settings back for the rest of the transaction.
                let setting = try await tx.query("SELECT current_setting('hnsw.iterative_scan')").collect().first?.decode(String.self)
                #expect(setting == "off")
                // Owner filter and the other metrics.
                let even = try await tx.memory.search(query, in: Self.space, options: .init(k: 5, owner: "even"))
                #expect(even.count == 5 && even.allSatisfy { $0.memory.owner == "even" })
                for metric in VectorMemory.Metric.allCases {
                    let hits = try await tx.memory.search(query, in: Self.space, options: .init(k: 5, metric: metric))
                    #expect(hits.count == 5 && hits.map(\.distance) == hits.map(\.distance).sorted(), "\(metric)")
                }
            }
        }
    }

    @Model(table: "notes", chamber: .vectors)
    struct Note {
        var text: String
        @Index(.hnsw, operatorClass: "vector_l2_ops") @Column(type: .vector(3)) var embedding: Vector
    }

    @Test func dimensionMismatchAndNaNAreRefusedWithClearErrors() async throws {
        try await Self.migrated("memory_refusals", extra: [ModelRegistration(Note.self)]) { client in
            // NaN never becomes a Vector.
            let nan = #expect(throws: PhylacteryError.self) { try Vector([0.5, .nan, 1]) }
            #expect(nan?.code == .invalidVector && nan?.description.contains("element 1 of 3 is NaN") == true)
            // A memory's vector must have its space's dimension.
            let wrong = #expect(throws: PhylacteryError.self) {
                try Memory(content: "x", embedding: try Vector([1, 2, 3]), space: Self.space, owner: "core", source: "test")
            }
            #expect(wrong?.code == .dimensionMismatch)
            #expect(wrong?.message.contains("384 dimensions") == true && wrong?.message.contains("has 3") == true)
            // So must a query.
            let query = await #expect(throws: PhylacteryError.self) {
                try await client.transaction { tx in try await tx.memory.search(try Vector([1, 2]), in: Self.space) }
            }
            #expect(query?.code == .dimensionMismatch && query?.message.contains("has 2") == true)

            // A model's `vector(3)` column: checked at bind time, before anything is sent.
            let note = try await client.insert(Note(text: "ok", embedding: try Vector([1, 2, 3])))
            let three = try Vector([1, 2, 3])
            #expect(try await client.find(Note.self, id: note.id)?.embedding == three)
            let bind = await #expect(throws: PhylacteryError.self) { try await client.insert(Note(text: "bad", embedding: try Vector([1, 2, 3, 4]))) }
            #expect(bind?.code == .dimensionMismatch)
            #expect(bind?.message == "column embedding holds vectors of 3 dimensions; this vector has 4")
            #expect(bind?.sqlState == nil)
            #expect(try await client.count(Note.self) == 1)
            // The same vector through raw SQL is refused by the server too, in binary format.
            let four = try Vector([1, 2, 3, 4])
            let raw = await #expect(throws: PhylacteryError.self) {
                try await client.execute("INSERT INTO vectors.notes (id, text, embedding) VALUES (\(UUID()), 'raw', \(four))")
            }
            #expect(raw?.sqlState == "22000")
        }
    }

    @Model(table: "half_notes", chamber: .vectors)
    struct HalfNote {
        @Column(type: "halfvec(3)") var embedding: HalfVector
    }

    @Test func halfVectorsRoundTripInBinary() async throws {
        try await Self.migrated("halfvec", extra: [ModelRegistration(HalfNote.self)]) { client in
            let value = try HalfVector([1, -0.5, 0.1])
            #expect(value.elements[2] == Float(Float16(0.1)))
            let stored = try await client.insert(HalfNote(embedding: value))
            #expect(stored.embedding == value)
            let distance = try await client.query("SELECT (embedding <-> \(try HalfVector([1, -0.5, 1])))::float8 FROM vectors.half_notes").collect().first?.decode(Double.self)
            #expect(abs((distance ?? 0) - Double(1 - Float(Float16(0.1)))) < 1e-3)
            let wrong = await #expect(throws: PhylacteryError.self) { try await client.insert(HalfNote(embedding: try HalfVector([1, 2]))) }
            #expect(wrong?.code == .dimensionMismatch)
            #expect(throws: PhylacteryError.self) { try HalfVector([70_000]) }
        }
    }

    // MARK: - Recall

    @Test func recallReturnsTheFactEvenWhenACloserVectorExists() async throws {
        try await Self.migrated("recall") { client in
            var vectors = Vectors(seed: 7)
            let question = try vectors.next()
            try await client.transaction { tx in
                // A consecrated memory at distance 0 from the question.
                let exact = try await tx.memory.remember(Memory(content: "the gateway is 10.0.0.254", embedding: question, space: Self.space, owner: "core", source: "chat"))
                try await tx.memory.consecrate(exact.id, by: "operator")
                try await tx.facts.put("network", key: "gateway.ip", value: "10.0.0.1", source: "operator")

                let answer = try await tx.recall("network", key: "gateway.ip", embedding: question, in: Self.space)
                #expect(answer.chamber == .verbatim && answer.status == .fact && answer.isDeterministic)
                #expect(try answer.fact?.decode(String.self) == "10.0.0.1" && answer.memories.isEmpty)

                // No fact: memory answers, consecrated first even when a speculative entry is closer.
                let speculative = try await tx.memory.remember(Memory(content: "maybe the dns is 8.8.8.8", embedding: question, space: Self.space, owner: "core", source: "chat"))
                let fromMemory = try await tx.recall("network", key: "dns", embedding: question, in: Self.space)
                #expect(fromMemory.chamber == .vectors && fromMemory.status == .consecrated && !fromMemory.isDeterministic)
                #expect(fromMemory.memories.map(\.memory.id) == [exact.id])
                try await tx.memory.reject(exact.id, by: "operator")
                let guess = try await tx.recall("network", key: "dns", embedding: question, in: Self.space)
                #expect(guess.status == .speculative && guess.memories.map(\.memory.id) == [speculative.id])
                let far = try await tx.recall("network", key: "dns", embedding: try vectors.next(), in: Self.space, maxDistance: 1e-9)
                #expect(far.status == .none && far.chamber == nil)
            }
        }
    }

    // MARK: - One transaction

    /// The job enqueued with the decision.
    struct DecisionMade: Job {
        static let kind = "test.decision_made"
        var name: String
    }

    @Test func stateMemoryAndFactCommitAndRollBackTogether() async throws {
        struct Abandon: Error {}
        try await Self.migrated("chambers_one_transaction") { client in
            var vectors = Vectors(seed: 3)
            let embedding = try vectors.next()
            func write(_ tx: Transaction, _ name: String) async throws {
                try await tx.insert(Workspace(name: name))
                try await tx.memory.remember(Memory(content: "decided \(name)", embedding: embedding, space: Self.space, owner: "core", source: "test"))
                try await tx.facts.put("decisions", key: name, value: true, source: "test")
                try await tx.enqueue(DecisionMade(name: name))
            }
            await #expect(throws: Abandon.self) {
                try await client.transaction { tx in
                    try await write(tx, "rolled-back")
                    #expect(try await tx.count(Memory.self) == 1)
                    throw Abandon()
                }
            }
            #expect(try await client.count(Workspace.self) == 0)
            #expect(try await client.count(Memory.self) == 0)
            #expect(try await client.count(Fact.self) == 0)
            #expect(try await client.count(JobRecord.self) == 0)

            try await client.transaction { tx in try await write(tx, "kept") }
            #expect(try await client.count(Workspace.self) == 1)
            #expect(try await client.count(Memory.self) == 1)
            let jobs = try await client.fetch(JobRecord.self)
            #expect(jobs.map(\.kind) == [DecisionMade.kind])
            #expect(try jobs.first?.decodeArguments(as: DecisionMade.self).name == "kept")
            #expect(try await client.transaction { tx in try await tx.facts.get("decisions", key: "kept") }?.version == 1)
        }
    }

    // MARK: - Migrations

    @Test func theImmutabilityTriggerIsComparedAndRestored() async throws {
        try await Self.migrated("facts_trigger_drift") { client in
            let migrator = Migrator(client: client, federation: try Federation(core: Federation.coreModels))
            // Someone weakens the trigger function and drops the TRUNCATE trigger by hand.
            try await client.execute("""
                CREATE OR REPLACE FUNCTION verbatim.facts_facts_immutable_fn() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END; $$
                """)
            try await client.execute("DROP TRIGGER facts_immutable_truncate ON verbatim.facts")
            let plan = try await migrator.plan()
            #expect(plan.steps.map(\.summary).sorted() == [
                "create trigger facts_immutable_truncate on verbatim.facts",
                "replace changed trigger facts_immutable on verbatim.facts",
            ])
            _ = try await migrator.auto()
            #expect(try await migrator.plan().isEmpty)
            _ = try await client.transaction { tx in try await tx.facts.put("k", key: "v", value: 1, source: "s") }
            let error = await #expect(throws: PhylacteryError.self) { try await client.execute("DELETE FROM verbatim.facts") }
            #expect(error?.sqlState == FactStore.immutableSQLState)
        }
    }
}
