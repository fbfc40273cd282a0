import Foundation
import Phylactery
import PhylacteryTestSupport
import PostgresNIO
import Synchronization
import Testing

/// The memory lifecycle against a real PostgreSQL: remember → embed (a real worker) → consecrate →
/// forget; spaces as data and switching them; the old layout's upgrade; labels; hybrid search.
@Suite struct MemoryLifecycleTests {
    static let spaceA = EmbeddingSpace(model: "words", fingerprint: "a", dimensions: 384)
    static let spaceB = EmbeddingSpace(model: "words", fingerprint: "b", dimensions: 384)

    typealias WordEmbedder = HashedWordEmbedder

    static func migrated<R: Sendable>(
        _ label: String, options: PhylacteryClient.Configuration.Options = TestDatabase.defaultOptions, _ body: (PhylacteryClient) async throws -> R
    ) async throws -> R {
        try await TestDatabase.withFreshDatabase(label, options: options) { client in
            let migrator = Migrator(client: client, federation: try Federation(core: Federation.coreModels))
            _ = try await migrator.auto()
            #expect(try await migrator.plan().isEmpty)
            return try await body(client)
        }
    }

    /// Runs a worker with `handlers` on the embedding queue while `body` runs.
    static func withWorker<R: Sendable>(_ client: PhylacteryClient, handlers: JobHandlers, _ body: () async throws -> R) async throws -> R {
        var configuration = GhoulsConfiguration(queues: [EmbedMemories.queue: QueueConfiguration(concurrency: 2)], pollInterval: .milliseconds(100))
        configuration.backoff = RetryBackoff(initial: .milliseconds(50), maximum: .milliseconds(200), jitter: 0.1)
        return try await PhylacteryTestSupport.withGhouls(client, handlers: handlers, configuration: configuration, body)
    }

    /// A distinct word per number (the embedder drops digits).
    static func word(_ number: Int) -> String {
        let letters = Array("abcdefghijklmnopqrstuvwxyz")
        return "k" + String(letters[number % 26]) + String(letters[(number / 26) % 26])
    }

    static func jobCount(_ client: PhylacteryClient) async throws -> Int64 {
        try await client.query("SELECT count(*) FROM queue.jobs WHERE kind = \(EmbedMemories.kind)").collect().first?.decode(Int64.self) ?? -1
    }

    // MARK: - Embed later

    @Test func aMemoryRememberedWithoutAnEmbeddingBecomesSearchableAfterItsJobRuns() async throws {
        try await Self.migrated("memory_embed_later") { client in
            let texts = ["the gateway drops packets at night", "the printer needs toner", "backups run at two",
                         "the cat sleeps on the router", "dns answers slowly on mondays"]
            let stored = try await client.transaction { tx in
                var stored: [Memory] = []
                for text in texts {
                    stored.append(try await tx.memory.remember(Memory(content: text, owner: "core", source: "chat"), embedLater: Self.spaceA))
                }
                return stored
            }
            // Five memories in one transaction: one job.
            #expect(try await Self.jobCount(client) == 1)
            let forgotten = try await client.transaction { tx in
                try await tx.memory.remember(Memory(content: "forget me before my job runs", owner: "core", source: "chat"), embedLater: Self.spaceA)
            }
            #expect(try await Self.jobCount(client) == 1, "a second transaction joins the waiting job")
            #expect(try await client.transaction { tx in try await tx.memory.forget(forgotten.id, by: "user", reason: "asked") })

            let embedder = WordEmbedder()
            let query = try embedder.vector("packets dropped by the gateway", dimensions: 384)
            try await client.transaction { tx async throws in
                #expect(try await tx.memory.search(query, in: Self.spaceA).isEmpty, "no vector yet: not found by vector")
                #expect(try await tx.memory.search(text: "gateway packets").map(\.memory.id) == [stored[0].id], "found by text meanwhile")
                #expect(try await tx.memory.coverage(of: Self.spaceA).missing == 5)
            }

            // The first batch's embedding fails once: its memories keep no vector, the queue retries.
            final class Calls: Sendable { let sizes = Mutex<[Int]>([]) }
            struct EmbedderDown: Error {}
            let calls = Calls()
            var handlers = JobHandlers()
            handlers.registerMemoryEmbedder(batchSize: 2) { texts, space in
                let first = calls.sizes.withLock { calls in calls.append(texts.count); return calls.count == 1 }
                if first { throw EmbedderDown() }
                return try await embedder.embed(texts, in: space)
            }
            try await Self.withWorker(client, handlers: handlers) {
                try await eventually("every memory to have a vector in space a") {
                    try await client.transaction { tx in try await tx.memory.coverage(of: Self.spaceA) }.isComplete
                }
            }
            let batches = calls.sizes.withLock { $0 }
            #expect(batches.allSatisfy { $0 <= 2 } && batches.dropFirst().reduce(0, +) == 5, "batches of at most 2 after one failure: \(batches)")
            let states = try await client.query("SELECT state, attempt FROM queue.jobs WHERE kind = \(EmbedMemories.kind)").collect()
                .map { try $0.decode((String, Int32).self) }
            #expect(states.allSatisfy { $0.0 == "completed" } && states.contains { $0.1 >= 2 }, "\(states)")
            #expect(try await client.query("SELECT count(*) FROM vectors.embedding_requests").collect().first?.decode(Int64.self) == 0)

            try await client.transaction { tx in
                let hits = try await tx.memory.search(query, in: Self.spaceA, options: .init(k: 3))
                #expect(hits.first?.memory.id == stored[0].id && hits.first?.memory.space == Self.spaceA && hits.first?.memory.embedding != nil)
                // The first space registered is the default: a search without a space uses it.
                #expect(try await tx.memory.search(query, options: .init(k: 1)).map(\.memory.id) == [stored[0].id])
                #expect(!(try await tx.memory.search(text: "forget").contains { $0.memory.id == forgotten.id }))
            }
        }
    }

    // MARK: - Spaces

    @Test func reEmbeddingIntoASecondSpaceAndSwitching() async throws {
        try await Self.migrated("memory_switch_space") { client in
            let oldModel = WordEmbedder(seed: 0), newModel = WordEmbedder(seed: 0x5eed)
            let texts = (0..<12).map { "note \(Self.word($0)) about " + ["dns", "tls", "disks", "printers"][$0 % 4] }
            try await client.transaction { tx in
                let memories = try texts.map { try Memory(content: $0, embedding: try oldModel.vector($0, dimensions: 384), space: Self.spaceA, owner: "core", source: "import") }
                #expect(try await tx.memory.remember(contentsOf: memories) == 12)
                #expect(try await tx.memory.register(Self.spaceB).isDefault == false)
                #expect(try await tx.memory.defaultSpace() == Self.spaceA)
            }
            // Plan: every memory lacks a vector in b; switching now is refused, naming how many.
            let plan = try await client.transaction { tx in try await tx.memory.coverage(of: Self.spaceB) }
            #expect(plan.memories == 12 && plan.embedded == 0 && plan.missing == 12 && !plan.isDefault)
            let refused = await #expect(throws: PhylacteryError.self) {
                try await client.transaction { tx in try await tx.memory.switchDefaultSpace(to: Self.spaceB) }
            }
            #expect(refused?.code == .incompleteCoverage && refused?.message.contains("12 of 12") == true, "\(String(describing: refused))")

            #expect(try await client.transaction { tx in try await tx.memory.requestEmbeddings(in: Self.spaceB) } == 12)
            #expect(try await client.transaction { tx in try await tx.memory.requestEmbeddings(in: Self.spaceB) } == 0, "asked once")
            var handlers = JobHandlers()
            handlers.registerMemoryEmbedder(newModel, batchSize: 5)
            try await Self.withWorker(client, handlers: handlers) {
                try await eventually("space b to cover every memory") {
                    try await client.transaction { tx in try await tx.memory.coverage(of: Self.spaceB) }.isComplete
                }
            }
            let switched = try await client.transaction { tx in try await tx.memory.switchDefaultSpace(to: Self.spaceB) }
            #expect(switched.isDefault && switched.embedded == 12)
            let query = try newModel.vector("note \(Self.word(5)) about tls", dimensions: 384)
            try await client.transaction { tx async throws in
                #expect(try await tx.memory.defaultSpace() == Self.spaceB)
                #expect(try await tx.memory.spaces().map(\.isDefault) == [false, true])
                #expect(try await tx.memory.search(query, options: .init(k: 1)).first?.memory.content == "note \(Self.word(5)) about tls")
                // The old space keeps its vectors until dropped; the default cannot be dropped.
                #expect(try await tx.memory.stats().map(\.count).reduce(0, +) == 24)
            }
            let dropDefault = await #expect(throws: PhylacteryError.self) { try await client.transaction { tx in try await tx.memory.dropSpace(Self.spaceB) } }
            #expect(dropDefault?.code == .invalidArgument)
            #expect(try await client.transaction { tx in try await tx.memory.dropSpace(Self.spaceA) } == 12)
            try await client.transaction { tx async throws in
                #expect(try await tx.memory.spaces().map(\.space) == [Self.spaceB])
                #expect(try await tx.memory.search(try oldModel.vector("note \(Self.word(5)) about tls", dimensions: 384), in: Self.spaceA).isEmpty)
                #expect(try await tx.memory.coverage(of: Self.spaceB).isComplete)
            }
        }
    }

    // MARK: - The old layout

    @Test func theOldLayoutIsUpgradedWithEveryVector() async throws {
        try await TestDatabase.withFreshDatabase("memory_old_layout") { client in
            // vectors.memories as the previous version's migrator created it: one embedding per row,
            // with its indexes, check and registry rows.
            _ = try await Migrator(client: client, federation: try Federation(core: [ModelRegistration(OldLayoutMemory.self), ModelRegistration(MemoryStatusChange.self)])).auto()
            #expect(try await client.query("SELECT count(*) FROM pg_indexes WHERE schemaname = 'vectors' AND indexname = 'memories_embedding_384_hnsw'").collect().first?.decode(Int64.self) == 1)
            let embedder = WordEmbedder()
            var expected: [UUID: (content: String, model: String, vector: Vector)] = [:]
            for i in 0..<40 {
                let id = UUID.v7(), content = "old memory \(Self.word(i)) about " + ["dns", "tls", "disks"][i % 3]
                let (model, dimensions) = i % 4 == 0 ? ("tiny", 3) : ("words", 384)
                let vector = dimensions == 3 ? try Vector([Float(i), 1, 2]) : try embedder.vector(content, dimensions: 384)
                try await client.execute("""
                    INSERT INTO vectors.memories (id, content, embedding, dimensions, embedding_model, space_fingerprint, status, owner, source)
                    VALUES (\(id), \(content), \(vector), \(Int32(dimensions)), \(model), 'v1', \(i % 5 == 0 ? "consecrated" : "speculative"), 'core', 'old')
                    """)
                if i % 5 == 0 {
                    try await client.execute("INSERT INTO vectors.status_changes (id, memory_id, from_status, to_status, changed_by) VALUES (\(UUID.v7()), \(id), 'speculative', 'consecrated', 'operator')")
                }
                expected[id] = (content, model, vector)
            }

            let migrator = Migrator(client: client, federation: try Federation(core: Federation.coreModels))
            #expect(try await migrator.auto() != nil)
            let after = try await migrator.plan()
            #expect(after.isEmpty, "\(after.steps.map(\.summary))")

            let oldColumns = try await client.query("""
                SELECT count(*) FROM information_schema.columns WHERE table_schema = 'vectors' AND table_name = 'memories'
                  AND column_name IN ('embedding', 'dimensions', 'embedding_model', 'space_fingerprint')
                """).collect().first?.decode(Int64.self)
            #expect(oldColumns == 0)
            #expect(try await client.query("SELECT to_regclass('public.phylactery_memory_vectors_upgrade') IS NULL").collect().first?.decode(Bool.self) == true)
            try await client.transaction { tx in
                let spaces = try await tx.memory.spaces()
                #expect(Set(spaces.map(\.space)) == [EmbeddingSpace(model: "tiny", fingerprint: "v1", dimensions: 3), EmbeddingSpace(model: "words", fingerprint: "v1", dimensions: 384)])
                #expect(spaces.filter(\.isDefault).map(\.model) == ["words"], "the space holding most vectors becomes the default")
                for (id, old) in expected {
                    let memory = try #require(try await tx.find(Memory.self, id: id))
                    #expect(memory.content == old.content && memory.sensitivity == .private)
                    let space = try #require(spaces.first { $0.model == old.model }).space
                    #expect(try await tx.memory.embedding(of: id, in: space) == old.vector, "vector of \(old.content)")
                }
                #expect(try await tx.count(MemoryEmbedding.self) == 40)
                #expect(try await tx.count(MemoryStatusChange.self) == 8)
                let words = EmbeddingSpace(model: "words", fingerprint: "v1", dimensions: 384)
                let hit = try await tx.memory.search(try embedder.vector("old memory \(Self.word(7)) about tls", dimensions: 384), in: words, options: .init(k: 1))
                #expect(hit.first?.memory.content == "old memory \(Self.word(7)) about tls")
            }
            #expect(try await migrator.auto() == nil, "nothing left to do")
        }
    }

    // MARK: - Forget

    @Test func forgetLeavesNoContentInAnyTableOfTheChamber() async throws {
        try await Self.migrated("memory_forget") { client in
            let marker = "zanzibar-\(UInt32.random(in: 0...UInt32.max))"
            let metadata = try RawJSONB(validating: #"{"secret_word":"\#(marker)"}"#)
            let embedder = WordEmbedder()
            let (memory, kept) = try await client.transaction { tx in
                let memory = try await tx.memory.remember(try Memory(content: "the vault code is \(marker)", embedding: try embedder.vector("vault code", dimensions: 384),
                                                                     space: Self.spaceA, metadata: metadata, owner: "user", source: "chat \(marker)"))
                try await tx.memory.consecrate(memory.id, by: "operator")
                try await tx.memory.reject(memory.id, by: "reviewer")
                try await tx.memory.requestEmbeddings(in: Self.spaceB)   // a request waiting in another space
                let kept = try await tx.memory.remember(Memory(content: "an unrelated memory", owner: "user", source: "chat"))
                return (memory, kept)
            }
            #expect(try await Self.leftovers(of: marker, client) > 0, "the marker is stored before forgetting")
            #expect(try await client.transaction { tx in try await tx.memory.forget(memory.id, by: "user", reason: "right to be forgotten") })
            #expect(try await client.transaction { tx in try await tx.memory.forget(memory.id, by: "user", reason: "again") } == false)

            #expect(try await Self.leftovers(of: marker, client) == 0, "nothing of the content is left in vectors.*")
            try await client.transaction { tx async throws in
                #expect(try await tx.find(Memory.self, id: memory.id) == nil)
                #expect(try await tx.memory.statusHistory(of: memory.id).isEmpty)
                #expect(try await tx.count(MemoryEmbedding.self, where: "memory_id = \(memory.id)") == 0)
                #expect(try await tx.count(EmbeddingRequest.self, where: "memory_id = \(memory.id)") == 0)
                let audit = try await tx.memory.forgotten()
                #expect(audit.count == 1 && audit[0].memoryID == memory.id && audit[0].forgottenBy == "user" && audit[0].reason == "right to be forgotten")
                #expect(try await tx.find(Memory.self, id: kept.id) != nil, "other memories stay")
            }
            let missing = await #expect(throws: PhylacteryError.self) { try await client.transaction { tx in try await tx.memory.forget(memory.id, by: "", reason: "") } }
            #expect(missing?.code == .invalidArgument)
        }
    }

    /// Rows of any table in the vectors chamber whose text holds `marker`.
    static func leftovers(of marker: String, _ client: PhylacteryClient) async throws -> Int64 {
        let tables = try await client.query("SELECT tablename FROM pg_tables WHERE schemaname = 'vectors' ORDER BY 1").collect().map { try $0.decode(String.self) }
        #expect(tables.contains("forgotten") && tables.contains("embeddings") && tables.contains("status_changes"))
        var total: Int64 = 0
        for table in tables {
            let rows = try await client.query(PostgresQuery(unsafeSQL: "SELECT count(*) FROM vectors.\(SQLIdentifier.quote(table)) AS t WHERE t::text LIKE '%' || $1 || '%'",
                                                            binds: { var b = PostgresBindings(); b.append(marker); return b }())).collect()
            total += try rows.first?.decode(Int64.self) ?? 0
        }
        return total
    }

    // MARK: - Labels

    @Test func labelsFilterSearchAndTheDefaultLabelComesFromTheClient() async throws {
        var options = TestDatabase.defaultOptions
        options.defaultSensitivity = .public
        try await Self.migrated("memory_labels", options: options) { client in
            let embedder = WordEmbedder()
            let vector = try embedder.vector("the wifi password", dimensions: 384)
            let ids = try await client.transaction { tx in
                var ids: [Sensitivity?: UUID] = [:]
                for label in [nil, Sensitivity.private, .secret] {
                    ids[label] = try await tx.memory.remember(try Memory(content: "the wifi password \(label?.rawValue ?? "default")", embedding: vector,
                                                                          space: Self.spaceA, owner: "user", source: "chat", sensitivity: label)).id
                }
                return ids
            }
            try await client.transaction { tx async throws in
                #expect(try await tx.find(Memory.self, id: ids[nil]!)?.sensitivity == .public, "the client's default label")
                let byDefault = try await tx.memory.search(vector, in: Self.spaceA)
                #expect(Set(byDefault.map(\.memory.id)) == [ids[nil]!, ids[.private]!], "secret is not shown unless asked for")
                let everything = try await tx.memory.search(vector, in: Self.spaceA, options: .init(sensitivities: Sensitivity.all))
                #expect(everything.count == 3)
                let publicOnly = try await tx.memory.search(vector, in: Self.spaceA, options: .init(sensitivities: [.public]))
                #expect(publicOnly.map(\.memory.id) == [ids[nil]!])
                let text = try await tx.memory.search(text: "wifi password", options: .init(sensitivities: Sensitivity.visible(upTo: .public)))
                #expect(text.map(\.memory.id) == [ids[nil]!])
                let hybrid = try await tx.memory.search(vector, in: Self.spaceA, options: .init(sensitivities: [.secret], mode: .hybrid, text: "wifi"))
                #expect(hybrid.map(\.memory.id) == [ids[.secret]!])
                await #expect(throws: PhylacteryError.self) { try await tx.memory.search(text: "wifi", options: .init(sensitivities: [])) }
            }
        }
    }

    // MARK: - Hybrid

    @Test func hybridSearchBeatsVectorOnlyOnAKeywordQuery() async throws {
        try await Self.migrated("memory_hybrid") { client in
            // A "semantic" embedder: it knows fault ≈ error and signifies ≈ means, but cannot see codes.
            let embedder = WordEmbedder(synonyms: ["fault": "error", "signifies": "means", "mean": "means"])
            var corpus = (0..<30).map { "fault E\(4100 + $0) signifies the request was throttled by gateway \($0 % 7)" }
            corpus.append("E4017: disk quota exhausted during the nightly backup")
            let memories = try corpus.map { try Memory(content: $0, embedding: try embedder.vector($0, dimensions: 384), space: Self.spaceA, owner: "core", source: "runbook") }
            try await client.transaction { tx in _ = try await tx.memory.remember(contentsOf: memories) }
            let right = memories.last!.id
            let question = "what does error E4017 mean"
            let vector = try embedder.vector(question, dimensions: 384)
            try await client.transaction { tx in
                let vectorOnly = try await tx.memory.search(vector, in: Self.spaceA, options: .init(k: 31, exact: true))
                let vectorRank = try #require(vectorOnly.firstIndex { $0.memory.id == right })
                #expect(vectorRank >= 10, "the code is invisible to the vector: rank \(vectorRank)")
                let indexed = try await tx.memory.search(vector, in: Self.spaceA, options: .init(k: 5))
                #expect(!indexed.contains { $0.memory.id == right })

                let hybrid = try await tx.memory.search(vector, in: Self.spaceA, options: .init(k: 5, mode: .hybrid, text: question))
                #expect(hybrid.first?.memory.id == right, "\(hybrid.map(\.memory.content))")
                #expect(hybrid.count == 5 && hybrid.map(\.score) == hybrid.map(\.score).sorted(by: >))
                #expect(hybrid.first.map { $0.distance.isFinite && $0.memory.embedding != nil } == true)

                let text = try await tx.memory.search(text: question, options: .init(k: 3))
                #expect(text.first?.memory.id == right && text.first?.distance == .infinity)
                await #expect(throws: PhylacteryError.self) { try await tx.memory.search(vector, in: Self.spaceA, options: .init(mode: .hybrid)) }
            }
            // The hybrid statement's vector part uses the HNSW index through the join.
            try await client.execute("ANALYZE vectors.embeddings")
            try await client.transaction { tx in
                try await tx.execute("SET LOCAL enable_seqscan = off")
                try await tx.execute("SET LOCAL enable_sort = off")
                let plan = try await tx.query(PostgresQuery(unsafeSQL: """
                    EXPLAIN SELECT m.id FROM vectors.embeddings AS e JOIN vectors.memories AS m ON m.id = e.memory_id
                    WHERE e.dimensions = 384 AND e.space_id = (SELECT id FROM vectors.spaces LIMIT 1) AND m.status = ANY('{speculative}'::text[])
                      AND m.sensitivity = ANY('{public,private}'::text[])
                    ORDER BY (e.embedding::vector(384)) <=> '[\(Array(repeating: "0.1", count: 384).joined(separator: ","))]'::vector(384) LIMIT 10
                    """)).collect().map { try $0.decode(String.self) }.joined(separator: "\n")
                #expect(plan.contains(MemoryEmbedding.hnswIndexName(dimensions: 384)), "\(plan)")
            }
        }
    }
}

/// `Memory` as the previous version declared it: content and embedding in one row.
struct OldLayoutMemory: PersistentModel {
    var id: UUID
    var createdAt: Date
    var updatedAt: Date

    static var tableLocation: (chamber: Chamber, table: String) { (.vectors, "memories") }

    static let schema = ModelSchema(
        modelName: "Memory",
        table: "memories",
        chamber: .vectors,
        columns: [
            ModelSchema.column("content", String.self),
            ModelSchema.column("metadata", RawJSONB.self, default: "'{}'::jsonb"),
            ModelSchema.column("embedding", Vector.self),
            ModelSchema.column("dimensions", Int32.self),
            ModelSchema.column("embeddingModel", String.self),
            ModelSchema.column("spaceFingerprint", String.self),
            ModelSchema.column("status", MemoryStatus.self, default: "'speculative'"),
            ModelSchema.column("owner", String.self),
            ModelSchema.column("source", String.self),
            ModelSchema.column("statusChangedBy", String?.self),
            ModelSchema.column("statusChangedAt", Date?.self),
        ],
        indexes: [IndexDescription(columns: ["embedding_model", "space_fingerprint", "status"])]
            + [384, 768, 1024, 1536].map { n in
                IndexDescription(name: "memories_embedding_\(n)_hnsw", columns: ["((embedding)::vector(\(n)))"], method: .hnsw,
                                 operatorClass: "vector_cosine_ops", predicate: "dimensions = \(n)", parameters: ["m": "16", "ef_construction": "64"])
            },
        checks: [CheckConstraint(name: "memories_dimensions_check", expression: "vector_dims(embedding) = dimensions")]
    )

    func bindColumns(to row: inout ModelRowWriter) throws {
        throw PhylacteryError(.invalidArgument, "the old layout is written with SQL in this test")
    }

    init(row: inout ModelRowReader) throws {
        (self.id, self.createdAt, self.updatedAt) = try row.readBase()
    }
}
