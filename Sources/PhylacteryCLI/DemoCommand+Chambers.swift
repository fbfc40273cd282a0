import Foundation
import Phylactery

/// The demo's step for the vectors and verbatim chambers and recall.
extension DemoCommand {
    /// A toy embedder for the demo: words hashed into 384 buckets, normalised. Real daemons use a model;
    /// this one is deterministic and needs nothing, and texts sharing words land close together.
    static let demoSpace = EmbeddingSpace(model: "demo-word-hash", fingerprint: "fnv1a-384-v1", dimensions: 384)

    static func demoEmbedding(_ text: String) throws -> Vector {
        var buckets = [Float](repeating: 0, count: 384)
        for word in text.lowercased().split(whereSeparator: { !$0.isLetter && !$0.isNumber }) {
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for byte in word.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
            buckets[Int(hash % 384)] += 1
        }
        let norm = buckets.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return try Vector(norm > 0 ? buckets.map { $0 / norm } : buckets.map { _ in 1 / Float(384).squareRoot() })
    }

    func chambers(_ client: PhylacteryClient) async throws {
        let ip = "10.0.0.\(Int.random(in: 2...254))"
        let (fact, remembered, consecrated) = try await client.transaction { tx in
            // Facts are immutable: on a second run the key exists, so the demo records a new version.
            let fact: Fact
            if try await tx.facts.get("network", key: "gateway.ip") == nil {
                fact = try await tx.facts.put("network", key: "gateway.ip", value: ip, source: "demo")
            } else {
                fact = try await tx.facts.supersede("network", key: "gateway.ip", value: ip, source: "demo")
            }
            let memories = try [
                "the dns server for the lab is 192.168.1.53",
                "the gateway ip might be 10.0.0.254",
                "the printer lives on the second floor",
            ].map { text in try Memory(content: text, embedding: try Self.demoEmbedding(text), space: Self.demoSpace, owner: "demo", source: "demo chat") }
            try await tx.memory.remember(contentsOf: memories)
            try await tx.memory.consecrate(memories[0].id, by: "demo operator")
            return (fact, memories.count, memories[0].content)
        }
        let history = try await client.transaction { tx in try await tx.facts.history("network", key: "gateway.ip") }
        print("8. Verbatim: network/gateway.ip = \(fact.value?.text ?? "-") (version \(fact.version), \(history.count) kept in its history; UPDATE and DELETE are refused by the database). Vectors: remembered \(remembered) entries, consecrated \"\(consecrated)\"")

        let question = "what is the gateway ip"
        let byFact = try await client.transaction { tx in
            try await tx.recall("network", key: "gateway.ip", embedding: try Self.demoEmbedding(question), in: Self.demoSpace)
        }
        print("   recall(network/gateway.ip, \"\(question)\") → \(byFact.chamber?.schema ?? "nothing") [\(byFact.status.rawValue)\(byFact.isDeterministic ? ", deterministic" : "")]: \(byFact.fact?.value?.text ?? "-") — although a memory mentions a gateway ip too")
        let byWords = try await client.transaction { tx in
            try await tx.recall(question: question, embedding: try Self.demoEmbedding(question), in: Self.demoSpace)
        }
        let found = byWords.fact.map { "\($0.namespace)/\($0.key) = \($0.value?.text ?? "-")" } ?? "-"
        print("   recall(\"\(question)\") with no key → \(byWords.chamber?.schema ?? "nothing") [\(byWords.status.rawValue), \(byWords.reason)]: \(found) — the fact's words answer before any memory")
        let dnsQuestion = "which dns server does the lab use"
        let byMemory = try await client.transaction { tx in
            try await tx.recall("network", key: "dns.server", embedding: try Self.demoEmbedding(dnsQuestion), in: Self.demoSpace, k: 1)
        }
        let answer = byMemory.memories.first.map { "\"\($0.memory.content)\" (cosine distance \(String(format: "%.2f", $0.distance)))" } ?? "-"
        print("   recall(network/dns.server, \"\(dnsQuestion)\") → \(byMemory.chamber?.schema ?? "nothing") [\(byMemory.status.rawValue)]: \(answer)")
    }
}
