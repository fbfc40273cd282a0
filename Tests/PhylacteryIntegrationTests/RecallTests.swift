import Foundation
@testable import Phylactery
import PhylacteryTestSupport
import PostgresNIO
import Testing

/// Recall from a question, against a real PostgreSQL with pgvector and pg_trgm: the exact key, then
/// facts by their words, then consecrated and speculative memories; each answer says why.
@Suite struct RecallTests {
    static let space = EmbeddingSpace(model: "test-embedder", fingerprint: "v1", dimensions: 384)

    static func migrated<R: Sendable>(_ label: String, _ body: (PhylacteryClient) async throws -> R) async throws -> R {
        try await FactsForgettingTests.migrated(label, body)
    }

    /// A deterministic unit-length-ish vector from a seed.
    static func vector(_ seed: UInt64) throws -> Vector {
        var state = seed
        return try Vector((0..<384).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(Int64(bitPattern: state) >> 40) / Float(1 << 23)
        })
    }

    /// Facts of a small household, recorded once per test.
    static func seed(_ tx: Transaction) async throws {
        try await tx.facts.put("network", key: "gateway.ip", value: "10.0.0.1", source: "operator")
        try await tx.facts.put("network", key: "dns.server", value: "192.168.1.53", source: "operator")
        try await tx.facts.put("people", key: "alice.birthday", value: "1990-04-02", source: "alice")
        try await tx.facts.put("car", key: "tyre.pressure", value: ["front": 2.3, "rear": 2.5], source: "manual")
        try await tx.facts.put("home", key: "wifi.password", value: "correct horse battery staple", source: "t", sensitivity: .secret)
        try await tx.facts.put("garden", key: "roses.watering", value: "every second evening, never at noon", source: "gardener")
    }

    @Test func aFactFoundByItsWordsAnswersBeforeAMemoryAtDistanceZero() async throws {
        try await Self.migrated("recall_words") { client in
            let question = try Self.vector(1)
            try await client.transaction { tx async throws in
                try await Self.seed(tx)
                // A consecrated memory whose vector IS the question's: distance 0.
                let exact = try await tx.memory.remember(Memory(content: "the router sits in the hall", embedding: question, space: Self.space, owner: "core", source: "chat"))
                try await tx.memory.consecrate(exact.id, by: "operator")

                let answer = try await tx.recall(question: "What is the gateway's IP address?", embedding: question, in: Self.space)
                #expect(answer.chamber == .verbatim && answer.status == .fact && answer.isDeterministic)
                #expect(answer.fact?.key == "gateway.ip" && answer.memories.isEmpty)
                guard case .textMatch(let score) = answer.reason else { Issue.record("reason: \(answer.reason)"); return }
                #expect(score >= 0.3 && score == answer.facts.first?.score)
                #expect(answer.facts.map(\.fact.key) == ["gateway.ip"], "\(answer.facts.map { ($0.fact.key, $0.score) })")
                #expect(answer.reason.description.hasPrefix("text match, score "))

                // Words of the value count too; and a question about nothing recorded goes to memory.
                let byValue = try await tx.recall(question: "when should the roses get water?", embedding: question, in: Self.space)
                #expect(byValue.fact?.key == "roses.watering", "\(byValue.facts.map { ($0.fact.key, $0.score) })")
                let unrelated = try await tx.recall(question: "who painted the kitchen?", embedding: question, in: Self.space)
                #expect(unrelated.chamber == .vectors && unrelated.status == .consecrated && unrelated.memories.map(\.memory.id) == [exact.id])
                #expect(unrelated.reason == .vectorDistance(unrelated.memories[0].distance) && unrelated.memories[0].distance < 1e-6)

                // A typo in the fact's name still finds it (trigram similarity).
                let typo = try await tx.recall(question: "tyre presure", embedding: nil, in: nil)
                #expect(typo.fact?.key == "tyre.pressure", "\(typo.facts.map { ($0.fact.key, $0.wordCoverage, $0.trigramSimilarity) })")
            }
        }
    }

    @Test func theExactKeyComesFirstThenWordsThenConsecratedThenSpeculative() async throws {
        try await Self.migrated("recall_order") { client in
            let question = try Self.vector(2)
            try await client.transaction { tx async throws in
                try await Self.seed(tx)
                // The exact key wins over a better text match.
                let exact = try await tx.recall(question: "what is the gateway ip", key: FactKey("network", "dns.server"), embedding: question, in: Self.space)
                #expect(exact.reason == .exactKey && exact.fact?.key == "dns.server" && exact.facts.isEmpty)
                // A key that has no fact: the words answer.
                let missingKey = try await tx.recall(question: "what is the gateway ip", key: FactKey("network", "ntp"), embedding: question, in: Self.space)
                #expect(missingKey.fact?.key == "gateway.ip")

                // Memories: consecrated before speculative, even when the speculative one is closer.
                let speculative = try await tx.memory.remember(Memory(content: "maybe", embedding: question, space: Self.space, owner: "core", source: "chat"))
                let fromNothing = try await tx.recall(question: "who painted the kitchen?", embedding: question, in: Self.space)
                #expect(fromNothing.status == .speculative && fromNothing.memories.map(\.memory.id) == [speculative.id])
                let consecrated = try await tx.memory.remember(Memory(content: "sure", embedding: try Self.vector(3), space: Self.space, owner: "core", source: "chat"))
                try await tx.memory.consecrate(consecrated.id, by: "operator")
                let verified = try await tx.recall(question: "who painted the kitchen?", embedding: question, in: Self.space)
                #expect(verified.status == .consecrated && verified.memories.map(\.memory.id) == [consecrated.id])
                // A distance bound: the consecrated memory is too far, the speculative one (distance 0) is not.
                let far = try await tx.recall(question: "who painted the kitchen?", embedding: question, in: Self.space, options: RecallOptions(maxDistance: 1e-4))
                #expect(far.status == .speculative && far.memories.map(\.memory.id) == [speculative.id])
                try await tx.memory.reject(speculative.id, by: "operator")
                let none = try await tx.recall(question: "who painted the kitchen?", embedding: question, in: Self.space, options: RecallOptions(maxDistance: 1e-4))
                #expect(none.status == .none && none.chamber == nil && none.reason == .nothing)

                // The old exact recall still answers with its reason.
                let old = try await tx.recall("network", key: "gateway.ip", embedding: question, in: Self.space)
                #expect(old.reason == .exactKey && old.status == .fact)

                let empty = await #expect(throws: PhylacteryError.self) { try await tx.recall(question: "  ", embedding: nil, in: nil) }
                #expect(empty?.code == .invalidArgument)
            }
        }
    }

    @Test func theSameQuestionGetsTheSameAnswerAndTiesAreBrokenByName() async throws {
        try await Self.migrated("recall_stable") { client in
            try await client.transaction { tx async throws in
                // Four facts that match "printer toner" equally well but for their names' trigrams:
                // same words, so ties in coverage; distinct namespaces settle the order.
                for namespace in ["office.b", "office.a", "office.d", "office.c"] {
                    try await tx.facts.put(namespace, key: "printer", value: "toner level low", source: "t")
                }
                let options = RecallOptions(text: .init(minScore: 0.1, limit: 10))
                var answers: [[String]] = []
                for _ in 0..<5 {
                    let answer = try await tx.recall(question: "printer toner", embedding: nil, in: nil, options: options)
                    answers.append(answer.facts.map { "\($0.fact.namespace)/\($0.fact.key)" })
                }
                #expect(Set(answers).count == 1, "\(answers)")
                #expect(answers[0] == ["office.a/printer", "office.b/printer", "office.c/printer", "office.d/printer"], "\(answers[0])")
                // Thresholds are options: a score floor above every match leaves nothing.
                let strict = try await tx.recall(question: "printer toner", embedding: nil, in: nil, options: RecallOptions(text: .init(minScore: 0.99)))
                #expect(strict.status == .none)
                let bad = await #expect(throws: PhylacteryError.self) {
                    try await tx.facts.search(question: "printer", options: .init(minScore: 2))
                }
                #expect(bad?.code == .invalidArgument)
            }
        }
    }

    @Test func recallSkipsRetractedErasedAndHiddenFacts() async throws {
        try await Self.migrated("recall_hidden") { client in
            try await client.transaction { tx in try await Self.seed(tx) }
            try await client.transaction { tx async throws in
                // A secret fact reads as absent unless the caller may see secrets.
                let hidden = try await tx.recall(question: "wifi password", embedding: nil, in: nil)
                #expect(hidden.status == .none, "\(hidden.facts.map(\.fact.key))")
                let hiddenByKey = try await tx.recall(question: nil, key: FactKey("home", "wifi.password"), embedding: nil, in: nil)
                #expect(hiddenByKey.status == .none)
                let seen = try await tx.recall(question: "wifi password", embedding: nil, in: nil, options: RecallOptions(visible: Sensitivity.all))
                #expect(seen.fact?.key == "wifi.password")

                try await tx.facts.retract("network", key: "gateway.ip", reason: "moved to the cloud", source: "operator")
                #expect(try await tx.recall(question: "gateway ip", embedding: nil, in: nil).facts.map(\.fact.key).contains("gateway.ip") == false)
                try await tx.facts.erase("network", key: "dns.server", reason: "privacy", by: "operator")
                #expect(try await tx.recall(question: "dns server", embedding: nil, in: nil).facts.isEmpty)
                // An older version's words do not answer for the current one.
                try await tx.facts.supersede("garden", key: "roses.watering", value: "drip irrigation", source: "gardener")
                let roses = try await tx.facts.search(question: "evening noon")
                #expect(roses.isEmpty, "\(roses.map(\.fact.version))")
            }
        }
    }

    @Test func bothTextIndexesCanServeTheSearch() async throws {
        try await Self.migrated("recall_indexes") { client in
            try await client.transaction { tx async throws in
                try await Self.seed(tx)
                try await tx.execute("SET LOCAL enable_seqscan = off")
                let plan = try await tx.rows("""
                    EXPLAIN SELECT id FROM verbatim.facts
                    WHERE (\(unescaped: FactStore.wordsSQL)) @@ 'gateway'::tsquery OR (\(unescaped: FactStore.nameSQL)) % 'gatway'
                    """, doing: "explaining").map { try $0.decode(String.self) }.joined(separator: "\n")
                #expect(plan.contains("facts_words_idx") && plan.contains("facts_name_trgm_idx"), "\(plan)")
            }
        }
    }
    /// Memories answer recall only with a label the caller may see; a question without an embedding
    /// finds memories by their words; a question with one fuses both rankings, so the memory naming
    /// the question's rare word answers before a nearer one that does not.
    @Test func memoriesAnswerByLabelWordsAndFusedRanks() async throws {
        try await Self.migrated("recall_memory_modes") { client in
            let question = try Self.vector(3)
            try await client.transaction { tx async throws in
                let secret = try await tx.memory.remember(Memory(
                    content: "the safe's code is behind the painting", embedding: question, space: Self.space, owner: "core", source: "chat",
                    sensitivity: .secret))
                try await tx.memory.consecrate(secret.id, by: "operator")
                let hidden = try await tx.recall(question: nil, embedding: question, in: Self.space)
                #expect(hidden.status == .none && hidden.memories.isEmpty, "a secret memory is not recalled by default")
                let shown = try await tx.recall(question: nil, embedding: question, in: Self.space, options: RecallOptions(visible: Sensitivity.all))
                #expect(shown.memories.map(\.memory.id) == [secret.id])

                // Twenty memories nearer the question than the one that names its word.
                var near: [UUID] = []
                for seed in 100..<120 {
                    var floats = question.elements
                    floats[Int(seed) % 384] += 0.05
                    let memory = try await tx.memory.remember(Memory(
                        content: "an unrelated note number \(seed)", embedding: try Vector(floats), space: Self.space, owner: "core", source: "chat"))
                    near.append(memory.id)
                }
                let named = try await tx.memory.remember(Memory(
                    content: "the boiler shows error E4017 after a power cut", embedding: try Self.vector(4), space: Self.space, owner: "core", source: "chat"))
                let byWords = try await tx.recall(question: "what does E4017 mean", embedding: nil, in: nil)
                #expect(byWords.chamber == .vectors && byWords.memories.first?.memory.id == named.id)
                guard case .textMatch = byWords.reason else { Issue.record("reason: \(byWords.reason)"); return }

                let vectorOnly = try await tx.recall(question: "what does E4017 mean", embedding: question, in: Self.space,
                                                     options: RecallOptions(memorySearch: .vector))
                #expect(!vectorOnly.memories.prefix(5).contains { $0.memory.id == named.id }, "by vector alone the named memory is far")
                let fused = try await tx.recall(question: "what does E4017 mean", embedding: question, in: Self.space)
                #expect(fused.memories.prefix(2).contains { $0.memory.id == named.id }, "\(fused.memories.map(\.memory.content))")
                #expect(near.contains(fused.memories[0].memory.id) || fused.memories[0].memory.id == named.id)
            }
        }
    }
}
